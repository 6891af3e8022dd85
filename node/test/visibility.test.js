'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, listener, serveEcho, rejectsWithCode } = require('./helpers');
const { Peer, ErrorCode } = snap2p;

const T = { timeout: 30_000 };

async function roundTrip(conn, text) {
  const s = conn.openStream('check');
  await s.writeAll(text);
  s.end();
  return (await s.readAll()).toString();
}

test('stealth: valid invite connects; invalid → 5; missing → 18; revoked → 5', T, async () => {
  const { peer: server, addr } = await listener({ visibility: 'stealth' });
  assert.strictEqual(server.visibility, 'stealth');
  serveEcho(server);
  const invite = server.createInvite({ ttlSecs: 600 });
  assert.match(invite.token, /^[0-9a-f]{32,64}$/);
  assert.strictEqual(server.listInvites().length, 1);
  assert.strictEqual(server.listInvites()[0].id, invite.id);

  // Stealth nodes admit by invite; the allowlist gate is switched off for this test's
  // unknown client principals through `allow`.
  const client = await Peer.create();
  server.allow(client.principal);
  const conn = await client.dial(addr, { invite: invite.token });
  assert.strictEqual(await roundTrip(conn, 'in'), 'in');

  const other = await Peer.create();
  server.allow(other.principal);
  await rejectsWithCode(assert, other.dial(addr, { invite: 'ab'.repeat(16) }), ErrorCode.ERR_INVITE_INVALID);
  await rejectsWithCode(assert, other.dial(addr), ErrorCode.ERR_INVITE_REQUIRED);

  assert.strictEqual(server.revokeInvite(invite.id), true);
  assert.strictEqual(server.revokeInvite(invite.id), false);
  await rejectsWithCode(assert, other.dial(addr, { invite: invite.token }), ErrorCode.ERR_INVITE_INVALID);

  // A malformed token is the caller's mistake, found before any network traffic.
  await rejectsWithCode(assert, other.dial(addr, { invite: 'not hex' }), ErrorCode.ERR_INVALID_ARGUMENT);
  await Promise.all([client.close(), other.close(), server.close()]);
});

test('one-time invites are used up', T, async () => {
  const { peer: server, addr } = await listener({ visibility: 'stealth', allowlistGate: false });
  const invite = server.createInvite({ oneTime: true });
  const a = await Peer.create();
  await a.dial(addr, { invite: invite.token });
  const b = await Peer.create();
  await rejectsWithCode(assert, b.dial(addr, { invite: invite.token }), ErrorCode.ERR_INVITE_INVALID);
  await Promise.all([a.close(), b.close(), server.close()]);
});

test('private: allowlisted principals connect, others get ERR_NOT_ALLOWED (4)', T, async () => {
  const friend = await Peer.create();
  const { peer: server, addr } = await listener({
    visibility: 'private',
    allowlist: [friend.principal],
  });
  serveEcho(server);
  assert.deepStrictEqual(server.allowlist, [friend.principal]);
  const conn = await friend.dial(addr);
  assert.strictEqual(await roundTrip(conn, 'friend'), 'friend');

  const stranger = await Peer.create();
  await rejectsWithCode(assert, stranger.dial(addr), ErrorCode.ERR_NOT_ALLOWED);
  server.allow(stranger.principal);
  const later = await stranger.dial(addr);
  assert.strictEqual(later.remotePrincipal, server.principal);
  server.disallow(friend.principal);
  await rejectsWithCode(assert, friend.dial(addr), ErrorCode.ERR_NOT_ALLOWED);
  await Promise.all([friend.close(), stranger.close(), server.close()]);
});

test('public: anyone connects; dial expect= checks the principal (23)', T, async () => {
  const { peer: server, addr } = await listener({ visibility: 'public' });
  const client = await Peer.create();
  const ok = await client.dial(addr, { expect: server.principal });
  assert.strictEqual(ok.remotePrincipal, server.principal);
  await rejectsWithCode(
    assert,
    client.dial(addr, { expect: client.principal }),
    ErrorCode.ERR_PRINCIPAL_MISMATCH,
  );
  await Promise.all([client.close(), server.close()]);
});
