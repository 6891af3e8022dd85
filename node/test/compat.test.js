'use strict';
// The TypeScript wire profile (docs/PROTOCOL.md §12): Node talks `compat: 'ts'` to a Rust
// echo peer listening in that profile (core/examples/echo_peer.rs --compat ts), and a
// standard dialer is told which profile the listener speaks.
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, startRustEcho, rejectsWithCode } = require('./helpers');

const T = { timeout: 90_000 };

test('Node dials a Rust peer in the TypeScript profile: auth and an echo', T, async (t) => {
  const rust = await startRustEcho('public', ['--compat', 'ts']);
  t.after(() => rust.stop());
  const client = await snap2p.Peer.create({ compat: 'ts' });
  for (let i = 0; i < 3; i++) {
    const conn = await client.dial(rust.addr, { expect: rust.principal });
    assert.strictEqual(conn.remotePrincipal, rust.principal);
    const s = conn.openStream('echo');
    const msg = `compat hello ${i}`;
    const [, back] = await Promise.all([s.writeAll(msg).then(() => s.end()), s.readAll()]);
    assert.strictEqual(back.toString(), msg);
    conn.close();
  }
  await client.close();
});

test('Node in the standard profile is told the listener speaks the TypeScript profile', T, async (t) => {
  const rust = await startRustEcho('public', ['--compat', 'ts']);
  t.after(() => rust.stop());
  const client = await snap2p.Peer.create();
  await rejectsWithCode(assert, client.dial(rust.addr), snap2p.ErrorCode.ERR_HANDSHAKE_FAILED);
  await assert.rejects(client.dial(rust.addr), /this peer speaks the TypeScript profile/);
  await client.close();
});

test('compat accepts only ts or standard', () => {
  return assert.rejects(snap2p.Peer.create({ compat: 'tls' }), /wire profile/);
});
