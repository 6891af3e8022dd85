'use strict';
// The shared PermissionGrant vectors (core/tests/vectors/grants.json) through the
// package's public grant functions (decodeGrant, verifyGrant, nodeGrantDecision,
// Wallet#issueGrantWithNonce): every field, the derived bytes, re-encoding, verification at the
// vectors' own `now`, each negative wire form's error code and each node decision are the
// ones the core checks in core/tests/permissions.rs.

const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { ErrorCode, Snap2pError, Wallet, decodeGrant, verifyGrant, nodeGrantDecision } = require('..');

const v = JSON.parse(fs.readFileSync(path.join(__dirname, '../../core/tests/vectors/grants.json'), 'utf8'));
const FORMS = { digest: 'digest', stacks_message: 'message' };
const hex = (b) => Buffer.from(b).toString('hex');

// The name of the Snap2pError `fn` throws (null if it returns): the code is the core's.
function codeOf(fn) {
  try {
    fn();
    return null;
  } catch (e) {
    assert.ok(e instanceof Snap2pError, `not a Snap2pError: ${e && e.stack}`);
    const name = Object.keys(ErrorCode).find((k) => ErrorCode[k] === e.code);
    assert.ok(name, `unknown code ${e.code}`);
    return name;
  }
}

test('grant vectors: format_version 1, counts', () => {
  assert.strictEqual(v.format_version, 1);
  assert.strictEqual(v.grants.length, 4);
  assert.ok(v.negative.length >= 10);
  assert.ok(v.node.length >= 1);
});

test('grant vectors: decoded fields, id, signing bytes, message text, digest, re-encoded wire', () => {
  for (const g of v.grants) {
    const wire = Buffer.from(g.wire_hex, 'hex');
    const d = decodeGrant(wire);
    assert.strictEqual(d.id, g.id, g.name);
    assert.strictEqual(d.version, 1, g.name);
    assert.strictEqual(d.issuer, g.issuer, g.name);
    assert.strictEqual(d.holder, g.holder, g.name);
    assert.deepStrictEqual(d.labels, g.labels, g.name);
    assert.strictEqual(d.delegable, g.delegable, g.name);
    assert.strictEqual(d.parent == null ? '' : hex(d.parent), g.parent_hex, g.name);
    assert.strictEqual(d.issuedAt, g.issued_at, g.name);
    assert.strictEqual(d.expiresAt, g.expires_at, g.name);
    assert.strictEqual(hex(d.nonce), g.nonce_hex, g.name);
    assert.strictEqual(d.form, FORMS[g.form], g.name);
    assert.strictEqual(d.signature.length, 65, g.name);
    assert.strictEqual(hex(d.signingBytes), g.signing_bytes_hex, g.name);
    assert.strictEqual(d.messageText, g.message_text, g.name);
    assert.strictEqual(hex(d.signedDigest), g.signed_digest_hex, g.name);
    assert.strictEqual(hex(d.wire), g.wire_hex, g.name);
  }
});

test('grant vectors: each verifies at verify_now; a delegated one names its parent', () => {
  for (const g of v.grants) {
    const wire = Buffer.from(g.wire_hex, 'hex');
    const parent = verifyGrant(wire, g.verify_now);
    if (g.parent_hex === '') assert.strictEqual(parent, null, g.name);
    else assert.strictEqual(parent, decodeGrant(Buffer.from(g.parent_hex, 'hex')).id, g.name);
    // Long after expiry the same bytes are refused with ERR_AUTH_EXPIRED.
    assert.strictEqual(codeOf(() => verifyGrant(wire, g.expires_at + 100_000)), 'ERR_AUTH_EXPIRED', g.name);
  }
});

test('grant vectors: every negative wire form fails with its code', () => {
  for (const n of v.negative) {
    const wire = Buffer.from(n.wire_hex, 'hex');
    assert.ok(ErrorCode[n.error] > 0, n.error);
    assert.strictEqual(codeOf(() => verifyGrant(wire, n.now)), n.error, n.name);
  }
  assert.strictEqual(codeOf(() => decodeGrant(Buffer.from('a0', 'hex'))), 'ERR_AUTH_INVALID');
  assert.strictEqual(codeOf(() => decodeGrant(Buffer.alloc(0))), 'ERR_AUTH_INVALID');
});

test('grant vectors: node decisions (owners, revoked, presenter, now)', () => {
  for (const n of v.node) {
    const g = v.grants.find((x) => x.name === n.grant);
    assert.ok(g, n.grant);
    const wire = Buffer.from(g.wire_hex, 'hex');
    const node = { owners: n.owners, revoked: n.revoked, presenter: n.presenter, now: n.now };
    const got = codeOf(() => nodeGrantDecision(wire, node));
    assert.strictEqual(got, n.error, n.name);
    if (n.error === null) {
      const ids = nodeGrantDecision(wire, node);
      assert.strictEqual(ids[ids.length - 1], g.id, n.name);
    }
  }
});

test('grant vectors: re-issued by the mnemonic wallets with their nonce and time, byte for byte', async () => {
  for (const g of v.grants) {
    const w = Wallet.fromMnemonic(v.mnemonic, { accountIndex: g.issuer_account });
    assert.strictEqual(w.principal, g.issuer, g.name);
    const wire = await w.issueGrantWithNonce(g.holder, g.labels, {
      issuedAt: g.issued_at,
      ttlSecs: g.expires_at - g.issued_at,
      nonce: Buffer.from(g.nonce_hex, 'hex'),
      delegable: g.delegable,
      parent: g.parent_hex === '' ? undefined : Buffer.from(g.parent_hex, 'hex'),
      form: FORMS[g.form],
    });
    assert.strictEqual(hex(wire), g.wire_hex, g.name);
  }
});
