'use strict';
// WebSocket locators pass through the Node package to the core unchanged: a peer listens on
// ws:// beside TCP, another dials it, and a stream's bytes come back intact.
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, listener, serveEcho, pattern, sha256, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode } = snap2p;

const T = { timeout: 60_000 };

test('listen on ws:// beside TCP, dial it, echo 4 MiB', T, async () => {
  const { peer: server } = await listener();
  // listen() resolves to the bound 'ip:port'; the locator is the listen locator with it.
  const bound = await server.listen('ws://127.0.0.1:0/snap2p');
  assert.match(bound, /^127\.0\.0\.1:\d+$/);
  assert.strictEqual(server.listenAddrs.length, 2);
  assert.ok(server.listenAddrs.includes(bound));
  serveEcho(server);

  const client = await Peer.create();
  const conn = await client.dial(`ws://${bound}/snap2p`);
  assert.strictEqual(conn.remotePrincipal, server.principal);
  const data = pattern(4 << 20, 27);
  const stream = conn.multiplexer.openStream('ws');
  const echoed = stream.readAll();
  await stream.writeAll(data);
  stream.end();
  assert.strictEqual(sha256(await echoed), sha256(data));

  // Another path: the listener answers HTTP 404; an unknown scheme is refused locally.
  await rejectsWithCode(assert, client.dial(`ws://${bound}/elsewhere`), ErrorCode.ERR_CONNECTION_CLOSED);
  await rejectsWithCode(assert, client.dial('quic://127.0.0.1:4433'), ErrorCode.ERR_INVALID_ARGUMENT);
  await client.close();
  await server.close();
});
