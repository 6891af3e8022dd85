'use strict';
// Relays and NAT traversal (issue 28, docs/PROTOCOL.md §32) over loopback: a serving relay
// peer, B reserved on it, A reaching B through it and then directly by hole punching;
// admission and refusals with their documented codes.
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, pattern, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode, Wallet } = snap2p;

const T = { timeout: 90_000 };

/** Echoes every stream of every inbound connection; records each connection's transport. */
function serveEchoRecording(peer) {
  const seen = [];
  peer.on('connection', (conn) => {
    seen.push({ principal: conn.remotePrincipal, transport: conn.stats().transport });
    conn.multiplexer.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.pipe(stream);
    });
  });
  return seen;
}

/** Sends `data` on a new stream of `conn` and resolves to what came back. */
async function echo(conn, data) {
  const stream = conn.openStream('echo');
  const back = stream.readAll();
  await stream.writeAll(data);
  stream.end();
  return back;
}

async function until(what, cond) {
  for (let i = 0; i < 250; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function relayPeer(relay) {
  const peer = await Peer.create({ relay });
  const addr = await peer.listen('127.0.0.1:0');
  return { peer, addr };
}

test('a peer reserved on a relay is dialed through it, then reached directly by a hole punch', T, async () => {
  const { peer: relay, addr } = await relayPeer({});
  const b = await Peer.create();
  const bSeen = serveEchoRecording(b);
  await b.listen(`relay://${addr}`);
  const bLoc = `relay://${addr}/${snap2p.parsePrincipal(b.principal).address}`;
  assert.ok(b.listenLocators.includes(bLoc), `${b.listenLocators}`);

  const res = b.relayReservations();
  assert.strictEqual(res.length, 1);
  assert.strictEqual(res[0].relay, `relay://${addr}`);
  assert.strictEqual(res[0].active, true);
  assert.match(res[0].observed, /^127\.0\.0\.1:\d+$/, 'the relay tells B its address');
  assert.strictEqual(relay.relayStats().reservations, 1);

  const a = await Peer.create();
  assert.deepStrictEqual(a.relayStats(), {
    reservations: 0,
    circuits: 0,
    circuitsTotal: 0,
    splicedTotal: 0,
    bytesForwarded: 0,
    refused: 0,
  });
  assert.deepStrictEqual(a.relayReservations(), []);
  const relayed = await a.dial(bLoc);
  assert.strictEqual(relayed.remotePrincipal, b.principal);
  assert.strictEqual(relayed.stats().transport, 'relay');
  await until('B accepting the relayed session', () => bSeen.length === 1);
  assert.deepStrictEqual(bSeen[0], { principal: a.principal, transport: 'relay' });

  const data = pattern(256 * 1024, 11);
  const back = await echo(relayed, data);
  assert.strictEqual(back.length, data.length);
  assert.ok(back.equals(data), 'the relayed stream changed the data');
  const st = relay.relayStats();
  assert.strictEqual(st.circuits, 1);
  assert.strictEqual(st.circuitsTotal, 1);
  assert.strictEqual(st.splicedTotal, 1, 'spliced by default (PROTOCOL.md §32.3)');
  assert.ok(st.bytesForwarded >= 2 * data.length, `bytesForwarded ${st.bytesForwarded}`);
  assert.strictEqual(st.refused, 0);
  // The relay's own sessions are with A and B, not one between them.
  for (const c of relay.connections()) assert.ok([a.principal, b.principal].includes(c.remotePrincipal));

  const direct = await a.holePunch(relayed);
  assert.strictEqual(direct.stats().transport, 'punch');
  assert.strictEqual(direct.remotePrincipal, b.principal);
  assert.notStrictEqual(direct.sessionId, relayed.sessionId);
  assert.strictEqual(relayed.closed, false, 'the relayed session stays open');
  const data2 = pattern(256 * 1024, 12);
  const back2 = await echo(direct, data2);
  assert.ok(back2.equals(data2), 'the hole-punched stream changed the data');
  await until('B accepting the direct session', () => bSeen.length === 2);
  assert.deepStrictEqual(bSeen[1], { principal: a.principal, transport: 'punch' });
  // The relayed one still carries data; the punch opened no new circuit.
  const back3 = await echo(relayed, Buffer.from('still relayed'));
  assert.strictEqual(back3.toString(), 'still relayed');
  assert.strictEqual(relay.relayStats().circuitsTotal, 1);

  await Promise.all([a.close(), b.close(), relay.close()]);
});

test('refusals: allowlisted relay, no reservation, a peer that does not serve', T, async () => {
  const ok = await Peer.create();
  const { peer: relay, addr } = await relayPeer({ allowlist: [ok.principal] });
  await ok.listen(`relay://${addr}`);
  assert.strictEqual(ok.relayReservations()[0].active, true);
  const other = await Peer.create();
  await rejectsWithCode(assert, other.listen(`relay://${addr}`), ErrorCode.ERR_NOT_ALLOWED);
  assert.strictEqual(relay.relayStats().reservations, 1);
  assert.ok(relay.relayStats().refused >= 1);

  // A principal with no reservation on the relay: ERR_STREAM_REFUSED (20).
  const nobody = snap2p.parsePrincipal(Wallet.generate().principal).address;
  await rejectsWithCode(assert, other.dial(`relay://${addr}/${nobody}`), ErrorCode.ERR_STREAM_REFUSED);
  // A relay locator without a principal is not dialable.
  await rejectsWithCode(assert, other.dial(`relay://${addr}`), ErrorCode.ERR_INVALID_ARGUMENT);
  // A peer created without `relay` does not serve: RESERVE is refused with 20.
  const plain = await Peer.create();
  const plainAddr = await plain.listen('127.0.0.1:0');
  await rejectsWithCode(assert, other.listen(`relay://${plainAddr}`), ErrorCode.ERR_STREAM_REFUSED);
  // A direct session has no relayed one to punch through.
  const tcp = await other.dial(plainAddr);
  assert.strictEqual(tcp.stats().transport, 'tcp');
  await rejectsWithCode(assert, other.holePunch(tcp), ErrorCode.ERR_NOT_FOUND);
  await rejectsWithCode(assert, other.holePunch('not a connection'), ErrorCode.ERR_INVALID_ARGUMENT);

  await Promise.all([ok.close(), other.close(), plain.close(), relay.close()]);
});

test('relay options: limits are applied, bad values are ERR_INVALID_ARGUMENT', T, async () => {
  // maxReservations: 1, so the second reservation is ERR_RESOURCE_EXHAUSTED.
  const { peer: relay, addr } = await relayPeer({
    maxReservations: 1,
    maxCircuits: 4,
    maxCircuitsPerPeer: 2,
    circuitMaxBytes: 0,
    circuitMaxDurationSecs: 30.5,
    requestsPerMin: 0,
  });
  const first = await Peer.create();
  await first.listen(`relay://${addr}`);
  const second = await Peer.create();
  await rejectsWithCode(assert, second.listen(`relay://${addr}`), ErrorCode.ERR_RESOURCE_EXHAUSTED);
  const open = await Peer.create({ relay: true });
  const openAddr = await open.listen('127.0.0.1:0');
  await second.listen(`relay://${openAddr}`);
  assert.strictEqual(open.relayStats().reservations, 1);

  const bad = [
    'yes',
    1,
    [1],
    { maxReservations: -1 },
    { maxCircuits: 1.5 },
    { maxCircuitsPerPeer: '2' },
    { requestsPerMin: 2 ** 32 },
    { circuitMaxBytes: -5 },
    { circuitMaxDurationSecs: 0 },
    { circuitMaxDurationSecs: Infinity },
    { allowlist: ['stacks:nope'] },
    { allowlist: 'stacks:SP000000000000000000002Q6VF78' },
    { maxReservation: 1 },
  ];
  for (const relayOption of bad) {
    await rejectsWithCode(assert, Peer.create({ relay: relayOption }), ErrorCode.ERR_INVALID_ARGUMENT);
  }
  await Promise.all([first.close(), second.close(), open.close(), relay.close()]);
});
