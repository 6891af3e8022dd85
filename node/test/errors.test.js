'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { snap2p, listener, serveEcho, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode, Snap2pError } = snap2p;

const T = { timeout: 30_000 };

function throwsCode(fn, code) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Snap2pError, `expected Snap2pError, got ${e && e.stack}`);
    assert.strictEqual(e.code, code, `${e.name}: ${e.message}`);
    return true;
  });
}

test('ErrorCode is the core taxonomy: numbers and names', () => {
  assert.strictEqual(ErrorCode.ERR_NOT_ALLOWED, 4);
  assert.strictEqual(ErrorCode.ERR_INVITE_INVALID, 5);
  assert.strictEqual(ErrorCode.ERR_INVITE_REQUIRED, 18);
  assert.strictEqual(ErrorCode.ERR_STREAM_REFUSED, 20);
  assert.strictEqual(snap2p.errorName(4), 'ERR_NOT_ALLOWED');
  assert.strictEqual(snap2p.errorName(999), 'ERR_UNKNOWN_CODE');
  const e = new Snap2pError(4, 'nope');
  assert.strictEqual(e.name, 'ERR_NOT_ALLOWED');
  assert.match(String(e), /^ERR_NOT_ALLOWED: nope$/);
});

test('bad arguments throw ERR_INVALID_ARGUMENT (25), synchronously or as rejections', T, async () => {
  throwsCode(() => snap2p.formatPrincipal(42), 25);
  throwsCode(() => snap2p.formatPrincipal('stacks:SP000000000000000000002Q6VF79'), 25);
  throwsCode(() => snap2p.parsePrincipal('SP000000000000000000002Q6VF78'), 25);
  throwsCode(() => snap2p.c32Encode('text'), 25);
  throwsCode(() => snap2p.Wallet.fromMnemonic('not a mnemonic'), 25);
  await rejectsWithCode(assert, Peer.create({ visibility: 'secret' }), 25);
  await rejectsWithCode(assert, Peer.create({ visibilty: 'public' }), 25);
  await rejectsWithCode(assert, Peer.create({ allowlist: 'stacks:SP' }), 25);
  await rejectsWithCode(assert, Peer.create({ allowlist: ['nope'] }), 25);
  await rejectsWithCode(assert, Peer.create('public'), 25);
  await rejectsWithCode(assert, Peer.create({ wallet: {} }), 25);
  await rejectsWithCode(assert, Peer.create({ alias: 'a\nb' }), 25);

  const peer = await Peer.create();
  await rejectsWithCode(assert, peer.listen({ port: 1 }), 25);
  await rejectsWithCode(assert, peer.listen(70000), 25);
  await rejectsWithCode(assert, peer.listen('not an address'), 25);
  await rejectsWithCode(assert, peer.dial(1234), 25);
  await rejectsWithCode(assert, peer.dial('nowhere'), 25);
  await rejectsWithCode(assert, peer.dial('127.0.0.1:1', { invte: 'x' }), 25);
  await rejectsWithCode(assert, peer.dial('stacks:SPbad'), 25);
  throwsCode(() => peer.createInvite({ ttlSecs: 'soon' }), 25);
  throwsCode(() => peer.createInvite({ ttlSecs: -5 }), 25);
  throwsCode(() => peer.allow(null), 25);
  await rejectsWithCode(assert, peer.setAlias(''), 25);
  assert.throws(() => new Peer({}), Snap2pError);
  await peer.close();
});

test('network failures carry codes: refused connect, non-snap2p server, closed peer', T, async () => {
  const peer = await Peer.create({ connectTimeoutMs: 2000 });
  // A port nobody listens on.
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const freePort = probe.address().port;
  await new Promise((r) => probe.close(r));
  await rejectsWithCode(assert, peer.dial(`127.0.0.1:${freePort}`), ErrorCode.ERR_CONNECTION_CLOSED);

  // A server that speaks garbage, then hangs up.
  const junk = net.createServer((sock) => sock.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')));
  await new Promise((r) => junk.listen(0, '127.0.0.1', r));
  await assert.rejects(peer.dial(`127.0.0.1:${junk.address().port}`), (e) => {
    assert.ok(e instanceof Snap2pError);
    assert.ok(e.code > 0 && e.code !== 25, `${e.name}: ${e.message}`);
    return true;
  });
  junk.close();

  await peer.close();
  await rejectsWithCode(assert, peer.dial('127.0.0.1:1'), ErrorCode.ERR_CONNECTION_CLOSED);
  await rejectsWithCode(assert, peer.listen(0), ErrorCode.ERR_CONNECTION_CLOSED);
});

test('writing to finished or reset streams errors cleanly, the process survives', T, async () => {
  const { peer: server, addr } = await listener();
  const resetByServer = new Promise((resolve) => {
    server.on('connection', (conn) => {
      conn.multiplexer.on('stream', (s) => {
        s.on('error', () => {});
        if (s.label === 'reset-me') s.reset(ErrorCode.ERR_STREAM_REFUSED);
        else s.pipe(s);
        resolve();
      });
    });
  });
  const client = await Peer.create();
  const conn = await client.dial(addr);

  // Write after end(): Node's own stream error, delivered to the callback and 'error'.
  const s1 = conn.openStream('echo');
  s1.end('bye');
  const errs = [];
  s1.on('error', (e) => errs.push(e));
  await new Promise((resolve) => s1.write('late', (e) => { errs.push(e); resolve(); }));
  assert.ok(errs.length >= 1 && errs[0].code === 'ERR_STREAM_WRITE_AFTER_END');
  // Wrong chunk types are rejected by Node before reaching the core.
  const s2 = conn.openStream('echo');
  s2.on('error', () => {});
  assert.throws(() => s2.write(12345), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(s2.writeAll(12345), (e) => e.code === 25);
  s2.destroy();

  // The peer resets the stream: reads and writes fail with the protocol's code.
  const s3 = conn.openStream('reset-me');
  s3.write('hello');
  await resetByServer;
  const err = await new Promise((resolve) => {
    s3.on('error', resolve);
    s3.resume();
    const tick = () => s3.write(Buffer.alloc(1024), () => {});
    const timer = setInterval(tick, 20);
    s3.once('close', () => clearInterval(timer));
  });
  assert.ok(err instanceof Snap2pError, String(err));
  assert.ok([ErrorCode.ERR_STREAM_REFUSED, ErrorCode.ERR_STREAM_CLOSED].includes(err.code), `${err.name}`);

  // Writes on a stream of a closed connection fail with a code too.
  const s4 = conn.openStream('echo');
  conn.close();
  await conn.waitClosed();
  const e4 = await new Promise((resolve) => {
    s4.on('error', resolve);
    s4.write(Buffer.alloc(10));
  });
  assert.ok(e4 instanceof Snap2pError && e4.code > 0, String(e4));
  assert.throws(() => conn.openStream('x'), Snap2pError);
  await client.close();
  await server.close();
});

test('a write waiting for send room ends with a code when the peer resets, or when the session closes (after the close linger: the peer never reads)', { timeout: 60_000 }, async () => {
  const { peer: server, addr } = await listener();
  const inbound = [];
  const arrived = [];
  server.on('connection', (conn) => {
    conn.multiplexer.on('stream', (s) => {
      s.on('error', () => {});
      inbound.push(s); // never read: the writer runs out of credit
      arrived.splice(0).forEach((r) => r());
    });
  });
  const nextInbound = (n) => new Promise((r) => (inbound.length >= n ? r() : arrived.push(r)));
  const client = await Peer.create();
  const conn = await client.dial(addr);

  // Writes until one is left waiting (parked in the core for send room); returns it
  // boxed (an async function would otherwise wait for it).
  async function stall(stream) {
    stream.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 4096; i++) {
      const done = stream.writeAll(chunk);
      const waiting = await Promise.race([done.then(() => false), new Promise((r) => setTimeout(() => r(true), 200))]);
      if (waiting) return { done };
    }
    throw new Error('flow control never stopped the writer');
  }
  const settle = (p) => p.then(() => null, (e) => e);

  const s1 = conn.openStream('stall-then-reset');
  const { done: waiting1 } = await stall(s1);
  await nextInbound(1);
  inbound[0].reset(ErrorCode.ERR_STREAM_REFUSED);
  const e1 = await settle(waiting1);
  assert.ok(e1 instanceof Snap2pError, `the waiting write failed (${e1})`);
  assert.ok([ErrorCode.ERR_STREAM_REFUSED, ErrorCode.ERR_STREAM_CLOSED].includes(e1.code), `${e1.name}`);

  const s2 = conn.openStream('stall-then-close');
  const { done: waiting2 } = await stall(s2);
  conn.close();
  const e2 = await settle(waiting2);
  assert.ok(e2 instanceof Snap2pError && e2.code > 0, `the waiting write failed with a code (${e2})`);
  await client.close();
  await server.close();
});
