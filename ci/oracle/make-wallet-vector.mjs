#!/usr/bin/env node
// Writes a wallet directory in the TS reference's format (packages/snap2p/src/identity/
// wallet-manager.ts at e09e1e8) as a JSON vector for core/tests/identity_store.rs:
//
//   node make-wallet-vector.mjs > ../../core/tests/vectors/wallet-ts-format.json
//
// Same algorithm as the reference: wallet-sdk account 0 for the address, 16-byte salt,
// scrypt(N=2^17, r=8, p=1, 32 bytes), AES-256-GCM with a 12-byte IV, base64 fields,
// JSON.stringify(…, null, 2). One deviation is forced: the reference calls scryptSync
// without `maxmem`, and Node's default limit (32 MiB) rejects N=2^17, r=8 (128 MiB).

import crypto from 'node:crypto';
import * as wsdk from '@stacks/wallet-sdk';
import * as tx from '@stacks/transactions';

const SCRYPT = { N: 131072, r: 8, p: 1, maxmem: 256 * 1024 * 1024 };

async function makeWallet(seedPhrase, password, displayName, network) {
  const w = await wsdk.generateWallet({ secretKey: seedPhrase, password: seedPhrase });
  const address = tx.getAddressFromPrivateKey(w.accounts[0].stxPrivateKey, network);
  const id = crypto.randomBytes(16).toString('hex');
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(12);
  const key = crypto.scryptSync(password, salt, 32, SCRYPT);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const encrypted = Buffer.concat([cipher.update(seedPhrase, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  const createdAt = new Date().toISOString();
  const file = {
    version: 1,
    network,
    address,
    displayName,
    createdAt,
    crypto: {
      salt: salt.toString('base64'),
      iv: iv.toString('base64'),
      tag: tag.toString('base64'),
      ciphertext: encrypted.toString('base64'),
      kdf: 'scrypt',
    },
  };
  return {
    id,
    password,
    mnemonic: seedPhrase,
    network,
    address,
    display_name: displayName,
    file_name: `${id}.wallet.json`,
    file_text: JSON.stringify(file, null, 2),
    account: { id, address, displayName, createdAt, lastUsed: createdAt },
  };
}

const fixed24 =
  'seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink lyrics panel flat journey grit target scrap history dove emerge custom';
const wallets = [
  await makeWallet(fixed24, 'correct horse battery staple', 'main wallet', 'mainnet'),
  await makeWallet(wsdk.generateSecretKey(256), 'pässwörd ünïcode 🔑', 'Test 🧪', 'testnet'),
];
const registry = {
  version: 1,
  accounts: wallets.map((w) => w.account),
  currentAccountId: wallets[1].id,
};
const out = {
  description:
    'Wallet directory in the TS reference format, written by ci/oracle/make-wallet-vector.mjs (node:crypto + stacks.js). Each wallet: write file_text to <dir>/<file_name>; registry_text to <dir>/registry.json.',
  wallets: wallets.map(({ account, ...w }) => w),
  registry_text: JSON.stringify(registry, null, 2),
};
console.log(JSON.stringify(out, null, 2));
