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

// Every shared vector file against its schema (core/tests/vectors/schema/*.schema.json),
// the subset of JSON Schema they use, as every language's suite checks them.
const vectorDir = path.join(__dirname, '../../core/tests/vectors');
const schemaDir = path.join(vectorDir, 'schema');

function typeOk(v, t) {
  switch (t) {
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    default: throw new Error(`unknown type ${t}`);
  }
}

/**
 * The schema with every `{"$ref": "#/$defs/NAME"}` replaced by that definition of its
 * `$defs` (dropped); a reference to anything else is an error.
 */
function resolve(s, defs = s.$defs || {}, depth = 0) {
  if (depth > 64) throw new Error('$ref nested too deep (a cycle?)');
  if (Array.isArray(s)) return s.map((x) => resolve(x, defs, depth + 1));
  if (s === null || typeof s !== 'object') return s;
  if (s.$ref !== undefined) {
    const name = String(s.$ref).startsWith('#/$defs/') ? s.$ref.slice('#/$defs/'.length) : undefined;
    if (name === undefined || !Object.hasOwn(defs, name)) throw new Error(`unresolved $ref ${s.$ref}`);
    return resolve(defs[name], defs, depth + 1);
  }
  return Object.fromEntries(
    Object.entries(s)
      .filter(([k]) => k !== '$defs')
      .map(([k, x]) => [k, resolve(x, defs, depth + 1)]),
  );
}

function validate(v, s, at = '$') {
  const errs = [];
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => typeOk(v, t))) return [`${at}: not ${s.type}`];
  }
  if (s.enum && !s.enum.some((e) => e === v)) errs.push(`${at}: ${JSON.stringify(v)} not in enum`);
  if (s.pattern && typeof v === 'string' && !new RegExp(s.pattern).test(v)) errs.push(`${at}: ${v.slice(0, 60)} !~ ${s.pattern}`);
  if (Number.isInteger(v)) {
    if (s.minimum !== undefined && v < s.minimum) errs.push(`${at}: < ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errs.push(`${at}: > ${s.maximum}`);
  }
  if (typeOk(v, 'object')) {
    const props = s.properties || {};
    for (const k of s.required || []) if (!(k in v)) errs.push(`${at}: missing ${k}`);
    for (const [k, x] of Object.entries(v)) {
      if (k in props) errs.push(...validate(x, props[k], `${at}.${k}`));
      else if (s.additionalProperties === false) errs.push(`${at}: unexpected key ${k}`);
      else if (typeof s.additionalProperties === 'object') errs.push(...validate(x, s.additionalProperties, `${at}.${k}`));
    }
  }
  if (Array.isArray(v)) {
    if (v.length < (s.minItems || 0)) errs.push(`${at}: fewer than ${s.minItems} items`);
    if (s.items) v.forEach((x, i) => errs.push(...validate(x, s.items, `${at}[${i}]`)));
  }
  return errs;
}

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const readSchema = (name) => resolve(readJson(path.join(schemaDir, name)));

test('every vector file has a schema and matches it', () => {
  const files = fs.readdirSync(vectorDir).filter((f) => f.endsWith('.json')).sort();
  const schemas = fs.readdirSync(schemaDir).map((f) => f.replace('.schema.json', '.json')).sort();
  assert.deepStrictEqual(files, schemas);
  for (const f of files) {
    const problems = validate(readJson(path.join(vectorDir, f)), readSchema(f.replace('.json', '.schema.json')));
    assert.deepStrictEqual(problems.slice(0, 10), [], f);
  }
});

test('the schema validator rejects what it should', () => {
  const bad = readJson(path.join(vectorDir, 'messages.json'));
  delete bad.messages[0].t;
  bad.messages[1].types.att = 'blob';
  bad.messages[2].cbor_hex = 'A3';
  bad.extra = 1;
  assert.strictEqual(validate(bad, readSchema('messages.schema.json')).length, 4);
});

test('the schema validator follows $defs references', () => {
  const bad = readJson(path.join(vectorDir, 'handshake.json'));
  delete bad.stealth_hs2_aes_gcm.responder.principal;
  bad.public.initiator.hello.extra = 1;
  assert.deepStrictEqual(validate(bad, readSchema('handshake.schema.json')).sort(), [
    '$.public.initiator.hello: unexpected key extra',
    '$.stealth_hs2_aes_gcm.responder: missing principal',
  ]);
  assert.throws(() => resolve({ $defs: {}, items: { $ref: '#/$defs/nowhere' } }), /unresolved/);
});

test('messages.json: frames are varint(len) || cbor; types name every field', () => {
  const varint = (n) => {
    const out = [];
    do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
    return Buffer.from(out);
  };
  for (const m of readJson(path.join(vectorDir, 'messages.json')).messages) {
    const cbor = Buffer.from(m.cbor_hex, 'hex');
    assert.strictEqual(m.frame_hex, Buffer.concat([varint(cbor.length), cbor]).toString('hex'), m.name);
    assert.deepStrictEqual(Object.keys(m.types).sort(), Object.keys(m.fields).sort(), m.name);
  }
});

test('px1.json: wire keys are the descriptive message; ttl clamped only when stored', () => {
  const names = { type: 't', principal: 'p', max_results: 'n', locators: 'l', ttl_seconds: 'ttl' };
  const codes = { PX_RESOLVE_REQ: 1, PX_RESOLVE_RESP: 2, PX_PUSH: 3 };
  const v = readJson(path.join(vectorDir, 'px1.json'));
  for (const c of [...v.valid, ...v.decode_only]) {
    const w = {};
    for (const [k, x] of Object.entries(c.message)) w[names[k]] = k === 'type' ? codes[x] : x;
    assert.deepStrictEqual(w, c.wire, c.name);
    if ('ttl' in c.wire) assert.strictEqual(c.ttl_stored, Math.min(Math.max(c.wire.ttl, 60), 604800));
  }
});
