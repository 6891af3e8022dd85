'use strict';
// The shared endpoint-advert vectors (core/tests/vectors/adverts.json, docs/PROTOCOL.md §34)
// through the package's advert functions (issueAdvert, decodeAdvert, verifyAdvert): each
// valid advert re-issued byte for byte from its inputs, its fields, signing input and
// signature, verification at the vector's time; each invalid one refused with its code
// and reason, as core/tests/discovery_adverts.rs checks them.
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { ErrorCode, Snap2pError, issueAdvert, decodeAdvert, verifyAdvert } = require('..');

const v = JSON.parse(fs.readFileSync(path.join(__dirname, '../../core/tests/vectors/adverts.json'), 'utf8'));
const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (h) => Buffer.from(h, 'hex');

/** The Snap2pError `fn` throws (fails if it returns). */
function errorOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Snap2pError, `not a Snap2pError: ${e && e.stack}`);
    return e;
  }
  assert.fail('no error');
}

test('advert vectors: format_version 1, domain, counts', () => {
  assert.strictEqual(v.format_version, 1);
  assert.strictEqual(v.domain, 'snap2p-endpoint-advert-v1');
  assert.ok(v.valid.length >= 3);
  assert.ok(v.invalid.length >= 10);
});

test('advert vectors: re-issued byte for byte from their inputs', () => {
  for (const a of v.valid) {
    const wire = issueAdvert(bytes(a.node_seed), bytes(a.attestation), {
      locators: a.locators,
      seq: a.seq,
      issuedAt: a.issued_at,
      ttlSecs: a.ttl_secs,
    });
    assert.strictEqual(hex(wire), a.advert, a.name);
    assert.strictEqual(wire.length, a.encoded_len, a.name);
  }
});

test('advert vectors: decoded fields, signing input, signature; verified at verify_at', () => {
  for (const a of v.valid) {
    for (const d of [
      decodeAdvert(bytes(a.advert)),
      verifyAdvert(bytes(a.advert), a.verify_at, { nodeKey: bytes(a.node_key), principal: a.principal }),
    ]) {
      assert.strictEqual(d.principal, a.principal, a.name);
      assert.strictEqual(hex(d.nodeKey), a.node_key, a.name);
      assert.strictEqual(d.seq, a.seq, a.name);
      assert.strictEqual(d.issuedAt, a.issued_at, a.name);
      assert.strictEqual(d.expiresAt, a.expires_at, a.name);
      assert.deepStrictEqual(d.locators, a.locators, a.name);
      assert.strictEqual(hex(d.attestation), a.attestation, a.name);
      assert.strictEqual(hex(d.signature), a.signature, a.name);
      assert.strictEqual(hex(d.signingInput), a.signing_input, a.name);
      assert.strictEqual(hex(d.encoded), a.advert, a.name);
    }
    // Long after expiry the same bytes are refused.
    const e = errorOf(() => verifyAdvert(bytes(a.advert), a.expires_at + 100_000));
    assert.strictEqual(e.code, ErrorCode.ERR_AUTH_EXPIRED, a.name);
  }
});

test('advert vectors: every invalid advert is refused with its code and reason', () => {
  for (const n of v.invalid) {
    const e = errorOf(() =>
      verifyAdvert(bytes(n.advert), n.verify_at, {
        nodeKey: n.expected_node_key ? bytes(n.expected_node_key) : null,
        principal: n.expected_principal ?? null,
      }),
    );
    assert.ok(ErrorCode[n.error] > 0, n.error);
    assert.strictEqual(e.code, ErrorCode[n.error], `${n.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${n.reason}:`), `${n.name}: ${e.message}`);
  }
});
