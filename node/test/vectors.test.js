'use strict';
// The shared identity vectors (core/tests/vectors/identity.json) through the exported
// functions, so Node produces the same bytes as every other binding.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { snap2p } = require('./helpers');

const file = path.join(__dirname, '../../core/tests/vectors/identity.json');
const vectors = JSON.parse(fs.readFileSync(file, 'utf8'));

test('address vectors: parts <-> stacks:<address>', () => {
  assert.ok(vectors.addresses.length > 0);
  for (const v of vectors.addresses) {
    const p = snap2p.principalFromParts(v.version, Buffer.from(v.hash160, 'hex'));
    assert.strictEqual(p.address, v.address);
    assert.strictEqual(p.principal, `stacks:${v.address}`);
    const back = snap2p.parsePrincipal(`stacks:${v.address}`);
    assert.strictEqual(back.version, v.version);
    assert.strictEqual(back.hash160.toString('hex'), v.hash160);
    assert.strictEqual(snap2p.formatPrincipal(v.address), `stacks:${v.address}`);
  }
});

test('c32 vectors', () => {
  for (const v of vectors.c32_encode) {
    assert.strictEqual(snap2p.c32Encode(Buffer.from(v.hex, 'hex')), v.c32);
    assert.strictEqual(snap2p.c32Decode(v.c32).toString('hex'), v.hex);
  }
});

test('message hash vectors', () => {
  for (const v of vectors.message_hashes) {
    assert.strictEqual(snap2p.stacksMessageHash(v.message).toString('hex'), v.hash);
  }
});

test('mnemonic vectors: accounts and networks', () => {
  for (const m of vectors.mnemonics) {
    for (const a of m.accounts) {
      const main = snap2p.Wallet.fromMnemonic(m.mnemonic, { accountIndex: a.index });
      assert.strictEqual(main.address, a.mainnet);
      assert.strictEqual(main.publicKey.toString('hex'), a.public_key);
      const test_ = snap2p.Wallet.fromMnemonic(m.mnemonic, { accountIndex: a.index, network: 'testnet' });
      assert.strictEqual(test_.address, a.testnet);
    }
  }
});

test('attestation and alias-card signatures are byte-identical (RFC 6979)', () => {
  for (const v of [...vectors.attestations, ...vectors.alias_cards]) {
    const w = snap2p.Wallet.fromMnemonic(v.mnemonic, { accountIndex: v.account, network: v.network });
    assert.strictEqual(w.principal, v.principal);
    const sig =
      v.form === 'digest'
        ? w.signDigest(Buffer.from(v.signed_hash, 'hex'))
        : w.signMessage(v.message_text);
    assert.strictEqual(sig.toString('hex'), v.sig, v.name);
  }
});

test('alias normalization vectors', () => {
  for (const v of vectors.alias_normalization) {
    if (typeof v.output === 'string') {
      assert.strictEqual(snap2p.normalizeAlias(v.input), v.output);
    } else {
      assert.throws(
        () => snap2p.normalizeAlias(v.input),
        (e) => e instanceof snap2p.Snap2pError && e.name === v.error,
        JSON.stringify(v.input),
      );
    }
  }
});

test('negative principal vectors fail with the named code', () => {
  const principals = vectors.negative.filter((n) => n.type === 'principal');
  assert.ok(principals.length > 0);
  for (const n of principals) {
    assert.throws(
      () => snap2p.parsePrincipal(n.input),
      (e) => e instanceof snap2p.Snap2pError && e.name === n.error,
      n.name,
    );
  }
});
