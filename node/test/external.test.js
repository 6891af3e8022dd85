'use strict';
// externalLocators (issue 27): a node reachable at an address that is not its listener's
// own (here a port forwarder, as a router's forwarded port or a reverse proxy would be)
// advertises it first, and a stranger dialing it by principal through PX-1 arrives
// through that address.
const { test } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const { snap2p, serveEcho, pattern, sha256, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode } = snap2p;

const T = { timeout: 60_000 };

/** A TCP forwarder on a loopback port to `target()` (known later); counts connections. */
async function forwarder(target) {
  const state = { connections: 0, sockets: new Set() };
  const server = net.createServer((inbound) => {
    state.connections += 1;
    const outbound = net.connect(target());
    for (const s of [inbound, outbound]) {
      state.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => state.sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = server.address().port;
  state.close = () => {
    for (const s of state.sockets) s.destroy();
    server.close();
  };
  return state;
}

test('a stranger dials by principal through the advertised external locator', T, async (t) => {
  let targetPort;
  const fwd = await forwarder(() => ({ host: '127.0.0.1', port: targetPort }));
  t.after(() => fwd.close());
  const external = `127.0.0.1:${fwd.port}`;

  const hub = await Peer.create();
  const hubAddr = await hub.listen('127.0.0.1:0');
  const target = await Peer.create({ externalLocators: [external] });
  const bound = await target.listen('127.0.0.1:0');
  targetPort = Number(bound.split(':')[1]);
  assert.deepStrictEqual(target.reachableLocators, [external, bound]);
  serveEcho(target);
  await target.dial(hubAddr);

  const stranger = await Peer.create();
  await stranger.dial(hubAddr);
  let conn;
  for (let i = 0; !conn; i++) {
    try {
      conn = await stranger.dial(target.principal);
    } catch (e) {
      // The hub learns the target's locators just after the target's AUTH_OK.
      if (i === 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  assert.strictEqual(conn.remotePrincipal, target.principal);
  assert.strictEqual(fwd.connections, 1, 'the dial did not go through the external locator');
  const data = pattern(1 << 20, 7);
  const stream = conn.openStream('echo');
  const echoed = stream.readAll();
  await stream.writeAll(data);
  stream.end();
  assert.strictEqual(sha256(await echoed), sha256(data));
  for (const p of [stranger, target, hub]) await p.close();
});

test('a malformed external locator is refused with ERR_INVALID_ARGUMENT', T, async () => {
  await rejectsWithCode(assert, Peer.create({ externalLocators: ['01.2.3.4:9000'] }), ErrorCode.ERR_INVALID_ARGUMENT);
  await rejectsWithCode(assert, Peer.create({ externalLocators: ['wss://node.example.org'] }), ErrorCode.ERR_INVALID_ARGUMENT);
  await assert.rejects(
    async () => Peer.create({ externalLocators: 'wss://node.example.org:443' }),
    (e) => e.code === ErrorCode.ERR_INVALID_ARGUMENT,
  );
  const ok = await Peer.create({ externalLocators: ['wss://Node.Example.org:443/snap2p', 'tcp://203.0.113.5:9000'] });
  // Written canonically: host lower-cased, the tcp:// form bare (PROTOCOL.md §14).
  assert.deepStrictEqual(ok.reachableLocators, ['wss://node.example.org:443/snap2p', '203.0.113.5:9000']);
  await ok.close();
});
