'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, listener, serveEcho } = require('./helpers');
const { Peer, formatPrincipal } = snap2p;

const T = { timeout: 30_000 };

test('the README example works as written (listen, connection, stream events, dial)', T, async () => {
  const peer = await Peer.create();
  assert.match(formatPrincipal(peer.principal), /^stacks:SP[0-9A-Z]+$/);
  const addr = await peer.listen(0);
  const port = Number(addr.split(':').pop());
  assert.ok(port > 0);
  const serverSaw = new Promise((resolve) => {
    peer.on('connection', (conn) => {
      conn.multiplexer.on('stream', (stream) => {
        stream.on('data', (data) => {
          stream.write(data); // Echo back
        });
        stream.on('end', () => {
          stream.end();
          resolve(conn.remotePrincipal);
        });
      });
    });
  });

  const client = await Peer.create();
  const conn = await client.dial(`127.0.0.1:${port}`);
  assert.strictEqual(conn.remotePrincipal, peer.principal);
  const stream = conn.multiplexer.openStream('my-protocol');
  assert.strictEqual(stream.label, 'my-protocol');
  stream.write(Buffer.from('Hello!'));
  stream.end();
  const echoed = await stream.readAll();
  assert.strictEqual(echoed.toString(), 'Hello!');
  assert.strictEqual(await serverSaw, client.principal);
  await client.close();
  await peer.close();
});

test('promise and async-iterator forms: accept(), acceptStream(), for await', T, async () => {
  const { peer: server, addr } = await listener();
  const client = await Peer.create();
  const dialed = client.dial(addr);
  const inbound = await server.accept();
  const conn = await dialed;
  assert.strictEqual(inbound.remotePrincipal, client.principal);
  assert.strictEqual(inbound.sessionId, conn.sessionId);

  const labels = [];
  const served = (async () => {
    for await (const s of inbound.multiplexer) {
      labels.push(s.label);
      const body = await s.readAll();
      await s.writeAll(Buffer.concat([Buffer.from(`${s.label}:`), body]));
      s.end();
      if (labels.length === 2) break;
    }
  })();
  for (const label of ['a', 'b']) {
    const s = conn.openStream(label);
    await s.writeAll(`payload-${label}`);
    s.end();
    const chunks = [];
    for await (const c of s) chunks.push(c);
    assert.strictEqual(Buffer.concat(chunks).toString(), `${label}:payload-${label}`);
  }
  await served;
  assert.deepStrictEqual(labels, ['a', 'b']);

  // for await over the peer yields connections until close().
  const got = [];
  const seen = (async () => {
    for await (const c of server) got.push(c.remotePrincipal);
    return got;
  })();
  const third = await Peer.create();
  await third.dial(addr);
  // The listener's side is established a moment after dial() returns: wait for it.
  const until = Date.now() + 10_000;
  while (got.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  await server.close();
  assert.deepStrictEqual(await seen, [third.principal]);
  assert.strictEqual(await server.accept(), null);
  await client.close();
  await third.close();
});

test('pipe() through an echo peer, many concurrent streams', T, async () => {
  const { peer: server, addr } = await listener();
  serveEcho(server);
  const client = await Peer.create();
  const conn = await client.dial(addr);
  const results = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => {
      const s = conn.multiplexer.openStream(`s${i}`);
      const { Readable } = require('node:stream');
      Readable.from([Buffer.from(`stream ${i} `), Buffer.from('x'.repeat(1000 * i))]).pipe(s);
      return (await s.readAll()).toString();
    }),
  );
  results.forEach((r, i) => assert.strictEqual(r, `stream ${i} ${'x'.repeat(1000 * i)}`));
  assert.strictEqual(client.connections().length, 1);
  assert.strictEqual(client.connections()[0], conn);
  await client.close();
  await server.close();
});

test('a lone write goes out by itself: no end(), no later write, the event loop otherwise idle', T, async () => {
  // Writes are queued corked and sent when the event-loop turn ends: this checks nothing
  // waits for more data (or for end()) before sending.
  const { peer: server, addr } = await listener();
  serveEcho(server);
  const client = await Peer.create();
  const conn = await client.dial(addr);
  const s = conn.openStream('ping');
  for (const msg of ['ping', 'a second one, after the echo of the first']) {
    const echoed = new Promise((resolve) => s.once('data', resolve));
    s.write(msg);
    assert.strictEqual((await echoed).toString(), msg);
  }
  const ended = new Promise((resolve) => s.once('end', resolve));
  s.end();
  s.resume();
  await ended; // the echo peer finishes after us
  await client.close();
  await server.close();
});

test("connection 'close' event and closeReason carry the code", T, async () => {
  const { peer: server, addr } = await listener();
  const client = await Peer.create();
  const conn = await client.dial(addr);
  const inbound = await server.accept();
  const closed = new Promise((resolve) => inbound.once('close', resolve));
  conn.close(snap2p.ErrorCode.ERR_RESOURCE_EXHAUSTED, 'test says bye');
  const info = await closed;
  assert.strictEqual(info.code, snap2p.ErrorCode.ERR_RESOURCE_EXHAUSTED);
  assert.strictEqual(info.name, 'ERR_RESOURCE_EXHAUSTED');
  assert.strictEqual(inbound.closed, true);
  assert.strictEqual(inbound.closeReason.code, 16);
  // A stream on a closed connection fails with ERR_CONNECTION_CLOSED-class errors.
  assert.throws(() => inbound.openStream('late'), (e) => e instanceof snap2p.Snap2pError && e.code > 0);
  assert.strictEqual(await inbound.acceptStream(), null);
  await client.close();
  await server.close();
});

test('aliases: setAlias and conn.remoteAlias', T, async () => {
  const { peer: server, addr } = await listener({ alias: 'Server ', displayName: 'The Server' });
  assert.strictEqual(server.alias.alias, 'server');
  const client = await Peer.create();
  const card = await client.setAlias('Alice', 'Alice Liddell');
  assert.strictEqual(card.alias, 'alice');
  assert.strictEqual(card.principal, client.principal);
  assert.ok(Buffer.isBuffer(card.wire) && card.wire.length > 0);
  const conn = await client.dial(addr);
  const inbound = await server.accept();
  // Cards are sent right after authentication; give them a moment to arrive.
  const deadline = Date.now() + 5000;
  while ((!conn.remoteAlias || !inbound.remoteAlias) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.strictEqual(conn.remoteAlias.alias, 'server');
  assert.strictEqual(conn.remoteAlias.displayName, 'The Server');
  assert.strictEqual(conn.remoteAlias.principal, server.principal);
  assert.strictEqual(inbound.remoteAlias.alias, 'alice');
  await client.close();
  await server.close();
});
