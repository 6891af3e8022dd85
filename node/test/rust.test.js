'use strict';
// Node <-> Rust: the peer on the other side is the plain Rust core (core/examples/echo_peer.rs).
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, sha256, pattern, startRustEcho, rejectsWithCode } = require('./helpers');

const T = { timeout: 90_000 };

test('Node dials a Rust peer: authentication and an 8 MiB echo', T, async (t) => {
  const rust = await startRustEcho('public');
  t.after(() => rust.stop());
  const client = await snap2p.Peer.create();
  const conn = await client.dial(rust.addr, { expect: rust.principal });
  assert.strictEqual(conn.remotePrincipal, rust.principal);
  const data = pattern(8 * 1024 * 1024, 3);
  const s = conn.openStream('echo');
  const [, back] = await Promise.all([
    s.writeAll(data).then(() => s.end()),
    s.readAll(),
  ]);
  assert.strictEqual(back.length, data.length);
  assert.strictEqual(sha256(back), sha256(data));
  await client.close();
});

test('Node dials a stealth Rust peer with and without its invite', T, async (t) => {
  const rust = await startRustEcho('stealth');
  t.after(() => rust.stop());
  assert.match(rust.invite, /^[0-9a-f]+$/);
  const client = await snap2p.Peer.create();
  await rejectsWithCode(assert, client.dial(rust.addr), snap2p.ErrorCode.ERR_INVITE_REQUIRED);
  await rejectsWithCode(
    assert,
    client.dial(rust.addr, { invite: '00'.repeat(16) }),
    snap2p.ErrorCode.ERR_INVITE_INVALID,
  );
  // The Rust stealth node also enforces its (empty) allowlist: a valid invite gets past
  // KNOCK, then the allowlist says no.
  await rejectsWithCode(assert, client.dial(rust.addr, { invite: rust.invite }), snap2p.ErrorCode.ERR_NOT_ALLOWED);
  await client.close();
});

test('Node dials an invite-only Rust peer: the invite is accepted by the Rust core', T, async (t) => {
  const rust = await startRustEcho('stealth-open');
  t.after(() => rust.stop());
  const client = await snap2p.Peer.create();
  await rejectsWithCode(assert, client.dial(rust.addr), snap2p.ErrorCode.ERR_INVITE_REQUIRED);
  const conn = await client.dial(rust.addr, { invite: rust.invite });
  assert.strictEqual(conn.remotePrincipal, rust.principal);
  const s = conn.openStream('echo');
  await s.writeAll('knock knock');
  s.end();
  assert.strictEqual((await s.readAll()).toString(), 'knock knock');
  await client.close();
});
