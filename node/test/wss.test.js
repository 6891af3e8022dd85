'use strict';
// wss:// through the Node package: a listener with a certificate made here by openssl
// (tlsCertFile/tlsKeyFile), a dialer trusting its CA (tlsRootFile), and the failures a
// misconfiguration gives: immediate errors with the protocol's code, never a hang.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { snap2p, serveEcho, pattern, sha256, rejectsWithCode, makeTlsFiles } = require('./helpers');
const { Peer, ErrorCode } = snap2p;

const T = { timeout: 60_000 };

test('wss listener and dialer: 4 MiB echoed, locators, events and stats say wss', T, async (t) => {
  const tls = makeTlsFiles();
  t.after(() => fs.rmSync(tls.dir, { recursive: true, force: true }));
  const server = await Peer.create({ tlsCertFile: tls.cert, tlsKeyFile: tls.key });
  const bound = await server.listen('wss://127.0.0.1:0/snap2p');
  assert.match(bound, /^127\.0\.0\.1:\d+$/);
  assert.deepStrictEqual(server.listenLocators, [`wss://${bound}/snap2p`]);
  assert.deepStrictEqual(server.listenAddrs, [bound]);
  serveEcho(server);
  const events = server.events();

  const client = await Peer.create({ tlsRootFile: tls.ca });
  const port = bound.split(':')[1];
  const conn = await client.dial(`wss://localhost:${port}/snap2p`);
  assert.strictEqual(conn.remotePrincipal, server.principal);
  const data = pattern(4 << 20, 31);
  const stream = conn.openStream('wss');
  const echoed = stream.readAll();
  await stream.writeAll(data);
  stream.end();
  assert.strictEqual(sha256(await echoed), sha256(data));
  assert.strictEqual(conn.stats().transport, 'wss');
  assert.ok(conn.stats().bytesSent > data.length);
  for (;;) {
    const { value } = await events.next();
    if (value.kind !== 'session_established') continue;
    assert.strictEqual(value.transport, 'wss');
    assert.strictEqual(value.connection, conn.id);
    break;
  }
  events.close();
  await client.close();
  await server.close();
});

test('a dialer without the root fails with ERR_HANDSHAKE_FAILED at once; bad options are refused', T, async (t) => {
  const tls = makeTlsFiles();
  t.after(() => fs.rmSync(tls.dir, { recursive: true, force: true }));
  const server = await Peer.create({ tlsCertFile: tls.cert, tlsKeyFile: tls.key });
  const port = (await server.listen('wss://127.0.0.1:0/snap2p')).split(':')[1];

  // Mozilla's roots only: the test CA is unknown.
  const stranger = await Peer.create();
  const started = Date.now();
  await assert.rejects(stranger.dial(`wss://localhost:${port}/snap2p`), (e) => {
    assert.strictEqual(e.code, ErrorCode.ERR_HANDSHAKE_FAILED, `${e.name}: ${e.message}`);
    assert.match(e.message, /TLS.*UnknownIssuer/);
    return true;
  });
  assert.ok(Date.now() - started < 5000, 'a refused certificate fails fast');
  assert.strictEqual(server.connections().length, 0);

  // A wss listener needs a certificate; the certificate needs its key; files must exist.
  await rejectsWithCode(assert, stranger.listen('wss://127.0.0.1:0/x'), ErrorCode.ERR_INVALID_ARGUMENT);
  await rejectsWithCode(assert, Peer.create({ tlsCertFile: tls.cert }), ErrorCode.ERR_INVALID_ARGUMENT);
  await rejectsWithCode(
    assert,
    Peer.create({ tlsRootFile: path.join(tls.dir, 'missing.pem') }),
    ErrorCode.ERR_INVALID_ARGUMENT,
  );
  await rejectsWithCode(assert, Peer.create({ tlsRootFile: 7 }), ErrorCode.ERR_INVALID_ARGUMENT);
  await stranger.close();
  await server.close();
});
