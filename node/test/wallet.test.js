'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { snap2p, listener, rejectsWithCode } = require('./helpers');
const { WalletStore, Peer, ErrorCode } = snap2p;

test('wallet store: create, list, find, unlock, rename, export, delete; peers sign with it', { timeout: 60_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2p-wallets-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Low scrypt cost: this tests the store's behaviour, not the KDF's strength.
  const store = WalletStore.open(dir, { scryptLogN: 10 });
  assert.strictEqual(store.dir, dir);
  assert.deepStrictEqual(await store.list(), []);

  const created = await store.create('Main', 'correct horse battery', { network: 'testnet' });
  assert.match(created.principal, /^stacks:ST/);
  const words = created.mnemonic().split(' ');
  assert.strictEqual(words.length, 24);

  const list = await store.list();
  assert.strictEqual(list.length, 1);
  assert.strictEqual(list[0].name, 'Main');
  assert.strictEqual(list[0].principal, created.principal);
  assert.strictEqual(list[0].network, 'testnet');
  assert.strictEqual((await store.find('Main')).id, list[0].id);

  const unlocked = await store.unlock('Main', 'correct horse battery');
  assert.strictEqual(unlocked.principal, created.principal);
  await rejectsWithCode(assert, store.unlock('Main', 'wrong password!'), ErrorCode.ERR_WALLET);
  await rejectsWithCode(assert, store.unlock('Nobody', 'correct horse battery'), ErrorCode.ERR_WALLET);
  await rejectsWithCode(assert, store.create('Short', 'pw'), ErrorCode.ERR_INVALID_ARGUMENT);

  assert.strictEqual(await store.exportMnemonic(list[0].id, 'correct horse battery'), created.mnemonic());
  const renamed = await store.rename('Main', 'Daily');
  assert.strictEqual(renamed.name, 'Daily');

  const restored = await store.restore('Copy', created.mnemonic(), 'another password', { network: 'testnet' });
  assert.strictEqual(restored.principal, created.principal);
  assert.strictEqual((await store.list()).length, 2);

  // A peer signing with the unlocked wallet is that principal to others.
  const { peer: server, addr } = await listener({ wallet: unlocked });
  assert.strictEqual(server.principal, created.principal);
  const client = await Peer.create();
  const conn = await client.dial(addr);
  assert.strictEqual(conn.remotePrincipal, created.principal);
  await Promise.all([client.close(), server.close()]);

  await store.delete('Copy');
  assert.deepStrictEqual((await store.list()).map((w) => w.name), ['Daily']);
});
