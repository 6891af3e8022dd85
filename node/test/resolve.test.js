'use strict';
// The resolver chain on a Peer (issue 30, docs/PROTOCOL.md §35.5) through `resolver` and
// `peer.resolve`: a real resolve through the px-1 step over loopback (a hub both peers are
// connected to), a BNS name through two local Stacks API servers answering with the
// recorded response shapes of core/tests/fixtures/bns (see its README; the Rust side's
// core/tests/bns_http.rs serves the same documents), and the error paths with the
// core's codes.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { snap2p, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode } = snap2p;

const T = { timeout: 60_000 };
const FIXTURES = path.join(__dirname, '../../core/tests/fixtures/bns');
const RECORDED = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'get-name-info.response.example.json'), 'utf8'));
const NO_SUCH_NAME = fs.readFileSync(path.join(FIXTURES, 'bns-no-such-name.example.json'), 'utf8');

/** The recorded 200 document for a name owned by `principal`, `locators` in its zonefile. */
function nameDocument(principal, locators) {
  const doc = { ...RECORDED, address: principal.replace(/^stacks:/, ''), blockchain: 'stacks' };
  if (locators.length) doc.zonefile += `_snap2p IN TXT ${locators.map((l) => `"${l}"`).join(' ')}\n`;
  return JSON.stringify(doc);
}

/** A Stacks API server on loopback answering `GET /v1/names/{name}` with `body` (null: 404). */
async function stacksApi(t, body) {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/v1/names/') && body !== null) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(NO_SUCH_NAME);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  return `http://127.0.0.1:${server.address().port}`;
}

test('px-1 answers a resolve over loopback: hints, each step reported', T, async () => {
  const hub = await Peer.create();
  const hubAddr = await hub.listen('127.0.0.1:0');
  const target = await Peer.create();
  const bound = await target.listen('127.0.0.1:0');
  await target.dial(hubAddr);
  const stranger = await Peer.create({
    resolver: { steps: ['cache', 'px-1'], timeoutsMs: { 'px-1': 3000 } },
  });
  await stranger.dial(hubAddr);
  let r;
  for (let i = 0; !r; i++) {
    try {
      r = await stranger.resolve(target.principal);
    } catch (e) {
      // The hub learns the target's locators just after the target's AUTH_OK.
      if (i === 100 || e.code !== ErrorCode.ERR_NOT_FOUND) throw e;
      await new Promise((res) => setTimeout(res, 20));
    }
  }
  assert.strictEqual(r.principal, target.principal);
  assert.strictEqual(r.name, null);
  assert.strictEqual(r.answeredBy, 'px-1');
  assert.deepStrictEqual(r.locators, [{ locator: bound, verified: false }]);
  assert.deepStrictEqual(
    r.steps.map((s) => [s.name, s.outcome, s.count, s.error]),
    [
      ['cache', 'not_found', 0, null],
      ['px-1', 'found', 1, null],
    ],
  );
  for (const s of r.steps) assert.ok(s.durationMs >= 0 && s.durationMs <= r.durationMs + 1e-6, JSON.stringify(s));
  // The hint is dialed with the principal expected: AUTH proves who is there.
  const conn = await stranger.dial(r.locators[0].locator, { expect: target.principal });
  assert.strictEqual(conn.remotePrincipal, target.principal);
  for (const p of [stranger, target, hub]) await p.close();
});

test('nothing found: ERR_NOT_FOUND naming the steps asked (not the skipped ones)', T, async () => {
  const lonely = await Peer.create({ resolver: { steps: ['cache', 'px-1', 'mdns', 'bns'] } });
  const nobody = await Peer.create();
  await rejectsWithCode(assert, lonely.resolve(nobody.principal), ErrorCode.ERR_NOT_FOUND);
  await assert.rejects(lonely.resolve(nobody.principal), (e) => e.message.endsWith('(asked: cache, px-1)'));
  // A bare address is a principal too; garbage is not.
  await rejectsWithCode(assert, lonely.resolve(nobody.principal.replace(/^stacks:/, '')), ErrorCode.ERR_NOT_FOUND);
  await assert.rejects(lonely.resolve('not a principal'), (e) => e instanceof snap2p.Snap2pError && e.code > 0);
  // A name without providers: ERR_INVALID_ARGUMENT.
  await rejectsWithCode(assert, lonely.resolve('alice.btc'), ErrorCode.ERR_INVALID_ARGUMENT);
  for (const p of [lonely, nobody]) await p.close();
});

test('bad resolver options are refused with ERR_INVALID_ARGUMENT', T, async () => {
  for (const resolver of [
    { steps: ['cache', 'nope'] },
    { steps: ['cache', 'cache'] },
    { steps: ['cache'], timeoutsMs: { dht: 1000 } },
    { timeoutsMs: { 'px-1': 0 } },
    { bnsProviders: ['not a url'] },
    { unknown: true },
    { steps: 'cache' },
  ]) {
    await rejectsWithCode(assert, Peer.create({ resolver }), ErrorCode.ERR_INVALID_ARGUMENT);
  }
});

test('a BNS name through two agreeing providers; disagreeing ones: ERR_PROVIDERS_DISAGREE', T, async (t) => {
  const owner = await Peer.create();
  const bound = await owner.listen('127.0.0.1:0');
  const doc = nameDocument(owner.principal, [bound]);
  const agree = [await stacksApi(t, doc), await stacksApi(t, doc)];
  const peer = await Peer.create({ resolver: { bnsProviders: agree, steps: ['cache', 'px-1'] } });
  const r = await peer.resolve('Alice.BTC');
  assert.strictEqual(r.name, 'alice.btc');
  assert.strictEqual(r.principal, owner.principal);
  assert.strictEqual(r.answeredBy, 'bns-name');
  // A zonefile is a hint: only AUTH proves the owner is there.
  assert.deepStrictEqual(r.locators, [{ locator: bound, verified: false }]);
  assert.deepStrictEqual(r.steps.map((s) => [s.name, s.outcome, s.count]), [['bns-name', 'found', 1]]);
  const conn = await peer.dial(r.locators[0].locator, { expect: r.principal });
  assert.strictEqual(conn.remotePrincipal, owner.principal);

  // One provider knows another locator: the cross-check refuses.
  const other = nameDocument(owner.principal, ['203.0.113.9:4000']);
  const disagree = [agree[0], await stacksApi(t, other)];
  const wary = await Peer.create({ resolver: { bnsProviders: disagree } });
  await rejectsWithCode(assert, wary.resolve('alice.btc'), ErrorCode.ERR_PROVIDERS_DISAGREE);
  assert.strictEqual(ErrorCode.ERR_PROVIDERS_DISAGREE, 26);
  // Found against "no such name" (the recorded 404) disagrees too; all 404: not found.
  const missing = [await stacksApi(t, null), await stacksApi(t, null)];
  const half = await Peer.create({ resolver: { bnsProviders: [agree[0], missing[0]] } });
  await rejectsWithCode(assert, half.resolve('alice.btc'), ErrorCode.ERR_PROVIDERS_DISAGREE);
  const none = await Peer.create({ resolver: { bnsProviders: missing } });
  await rejectsWithCode(assert, none.resolve('alice.btc'), ErrorCode.ERR_NOT_FOUND);
  for (const p of [peer, wary, half, none, owner]) await p.close();
});
