#!/usr/bin/env node
// Independent check of the recorded sessions in handshake.json and rekey.json: Noise XX (v1
// and hs2), the transport ciphers, rekeys and the switch to AES-256-GCM, re-implemented from
// the Noise spec (rev. 34) and docs/PROTOCOL.md §5.3, §5.8, §7.1, §7.2 with node:crypto
// (SHA-256, HMAC, ChaCha20-Poly1305, AES-256-GCM) and @noble/curves (X25519); nothing here
// reuses snap2p code.
//
//   node transcript.mjs <handshake.json> <rekey.json>
//
// From the initiator's listed Noise secrets alone it replays each handshake, checks that the
// responder's static key is the Montgomery form of its listed node key, derives the Split()
// keys, then opens every transport frame of both directions in order. In v1 (message 1 is
// 32 bytes) each HELLO is its direction's frame 0 under ChaChaPoly, then, when both HELLOs
// list `aes-gcm`, AES-256-GCM under REKEY(k) with the big-endian nonce; in hs2 (message 1 is
// 33 bytes, the offer 0x02) the HELLOs are the payloads of Noise messages 2 and 3, and with
// `aes-gcm` every transport frame is AES-256-GCM from counter 0. Each REKEY frame switches
// its direction to REKEY(k) of its cipher. Every tag must verify, each HELLO must carry what
// the file lists, each AUTH must carry binding 2 (`sn`, and an `hs` that verifies with
// @noble/curves' strict Ed25519 under its sender's node key, for its role only) exactly when
// both HELLOs list `transcript-binding`, and the initiator's stream must read "hello" (and
// " again" where the session writes it).
// Prints one line per check and finally exactly "N passed, N failed"; exits 1 on failure.

import { readFileSync } from 'node:fs';
import { check, finish } from './check.mjs';
import crypto from 'node:crypto';
import * as cborg from 'cborg';
import { ed25519, x25519, edwardsToMontgomeryPub } from '@noble/curves/ed25519';


const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (h) => Buffer.from(h, 'hex');
const sha256 = (...parts) => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key, ...parts) => {
  const h = crypto.createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};
// Noise HKDF with two outputs.
function hkdf2(ck, ikm) {
  const temp = hmac(ck, ikm);
  const o1 = hmac(temp, Buffer.from([1]));
  const o2 = hmac(temp, o1, Buffer.from([2]));
  return [o1, o2];
}

const MAXNONCE = 0xffffffffffffffffn;
function nonce(cipher, n) {
  const b = Buffer.alloc(12);
  if (cipher === 'chacha') b.writeBigUInt64LE(n, 4);
  else b.writeBigUInt64BE(n, 4);
  return b;
}
const ALG = { chacha: 'chacha20-poly1305', aes: 'aes-256-gcm' };
function seal(cipher, key, n, ad, plain) {
  const c = crypto.createCipheriv(ALG[cipher], key, nonce(cipher, n), { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: plain.length });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}
// Returns the plaintext, or null when the tag does not verify.
function open(cipher, key, n, ad, ct) {
  if (ct.length < 16) return null;
  const d = crypto.createDecipheriv(ALG[cipher], key, nonce(cipher, n), { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: ct.length - 16 });
  d.setAuthTag(ct.subarray(ct.length - 16));
  try {
    return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
  } catch {
    return null;
  }
}
// Noise REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
const rekey = (cipher, key) => seal(cipher, key, MAXNONCE, Buffer.alloc(0), Buffer.alloc(32)).subarray(0, 32);

// CBOR messages of one frame's plaintext (several when batched).
function messages(plain) {
  const out = [];
  let rest = new Uint8Array(plain);
  while (rest.length > 0) {
    const [m, tail] = cborg.decodeFirst(rest, { useMaps: false });
    out.push(m);
    rest = tail;
  }
  return out;
}

// Replays the initiator's side of Noise_XX_25519_ChaChaPoly_SHA256 (empty prologue) over
// the recorded messages; returns the Split() keys [k_i2r, k_r2i], the handshake hash h and
// the HELLOs messages 2 and 3 carry (null when one does not open), or null. The payloads are
// empty in v1; with `offer` message 1's is the hs2 offer 0x02, and with `hellos` messages 2
// and 3 carry the HELLOs (an offer the responder declined has neither, §5.8).
function noise(name, session, [msg1, msg2, msg3], offer, hellos) {
  const ini = session.initiator;
  const res = session.responder;
  const s_i = unhex(ini.noise_static_secret_hex);
  const e_i = unhex(ini.noise_ephemeral_secret_hex);
  let h = Buffer.from('Noise_XX_25519_ChaChaPoly_SHA256');
  check(`${name}: protocol name is 32 bytes`, h.length === 32);
  let ck = h;
  h = sha256(h); // MixHash(prologue = "")
  let k = null;
  let n = 0n;
  const mixKey = (ikm) => {
    [ck, k] = hkdf2(ck, ikm);
    n = 0n;
  };
  const encryptAndHash = (p) => {
    const c = k ? seal('chacha', k, n++, h, p) : p;
    h = sha256(h, c);
    return c;
  };
  const decryptAndHash = (c) => {
    const p = k ? open('chacha', k, n++, h, c) : c;
    if (p) h = sha256(h, c);
    return p;
  };
  // Message 1: e, then the payload, in clear (no key yet) but mixed into h: stripping the
  // hs2 offer changes every key after it.
  const ePub = Buffer.from(x25519.getPublicKey(e_i));
  const p1 = Buffer.from(offer ? [0x02] : []);
  check(`${name}: message 1 is the initiator's ephemeral${offer ? ' and the hs2 offer 0x02' : ''}`,
    hex(msg1) === hex(Buffer.concat([ePub, p1])));
  h = sha256(h, ePub);
  encryptAndHash(p1);
  // Message 2: e, ee, s, es, payload (empty, or HELLO_R in hs2).
  const re = msg2.subarray(0, 32);
  h = sha256(h, re);
  mixKey(Buffer.from(x25519.getSharedSecret(e_i, re)));
  const rs = decryptAndHash(msg2.subarray(32, 80));
  check(`${name}: message 2's static key opens`, rs !== null);
  if (!rs) return null;
  const expectRs = Buffer.from(edwardsToMontgomeryPub(unhex(res.node_pubkey_hex)));
  check(`${name}: responder's static key is the X25519 form of its node key`, hex(rs) === hex(expectRs));
  mixKey(Buffer.from(x25519.getSharedSecret(e_i, rs)));
  const p2 = decryptAndHash(msg2.subarray(80));
  if (hellos) check(`${name}: message 2's payload (HELLO_R) opens`, p2 !== null);
  else check(`${name}: message 2's payload is empty and opens`, p2 !== null && p2.length === 0);
  // Message 3: s, se, payload (empty, or HELLO_I in hs2).
  const sPub = Buffer.from(x25519.getPublicKey(s_i));
  check(`${name}: initiator's static key is the X25519 form of its node key`,
    hex(sPub) === hex(Buffer.from(edwardsToMontgomeryPub(unhex(ini.node_pubkey_hex)))));
  const c3 = encryptAndHash(sPub);
  mixKey(Buffer.from(x25519.getSharedSecret(s_i, re)));
  // HELLO_I's bytes are not in the file (only its fields), so they are read from the
  // recording with the replayed key; an empty payload is sealed instead when that fails, so
  // the byte-for-byte check below fails with it.
  const p3 = hellos ? open('chacha', k, n, h, msg3.subarray(48)) : Buffer.alloc(0);
  const c3p = encryptAndHash(p3 ?? Buffer.alloc(0));
  check(`${name}: message 3 is byte for byte the replayed one`, hex(Buffer.concat([c3, c3p])) === hex(msg3));
  return { keys: hkdf2(ck, Buffer.alloc(0)), h, hellos: { responder: p2, initiator: p3 } }; // Split()
}

// PROTOCOL.md §5.4: a HELLO is one CBOR map carrying what the file lists for its sender;
// `plain` is null when its frame did not open.
function checkHello(name, session, from, where, plain) {
  const ms = plain ? messages(plain) : [];
  const hello = ms[0] ?? {};
  const want = session[from].hello;
  check(`${name}: ${from} ${where} is its HELLO as listed`,
    ms.length === 1 && hello.t === 1 && hello.v === want.v && hex(hello.pk ?? []) === want.pk_hex &&
    hex(hello.n ?? []) === want.n_hex && hello.ts === want.ts && (hello.vis ?? null) === want.vis &&
    JSON.stringify(hello.cap) === JSON.stringify(want.cap),
    JSON.stringify(hello));
}

// PROTOCOL.md §5.5: each AUTH carries binding 2 (`sn` = n_I || n_R, and `hs` verifying,
// strict RFC 8032, under its sender's node key over the session-binding input) exactly
// when both HELLOs list `transcript-binding`; otherwise neither key.
function checkAuth(name, session, from, auth, h) {
  const both = ['initiator', 'responder'].every((p) => session[p].hello.cap.includes('transcript-binding'));
  const nonces = Buffer.concat([unhex(session.initiator.hello.n_hex), unhex(session.responder.hello.n_hex)]);
  if (!both) {
    check(`${name}: ${from} AUTH carries no binding 2 (not listed by both)`, auth.sn === undefined && auth.hs === undefined);
    return;
  }
  check(`${name}: ${from} AUTH echoes n_I || n_R`, auth.sn !== undefined && hex(auth.sn) === hex(nonces));
  // Whether `hs` verifies for `role` ('I' or 'R'); a missing or malformed one does not.
  const verifiesAs = (role) => {
    const input = Buffer.concat([Buffer.from('snap2p-session-binding-v1'), Buffer.from(role), h, nonces]);
    try {
      return auth.hs !== undefined &&
        ed25519.verify(auth.hs, input, unhex(session[from].node_pubkey_hex), { zip215: false });
    } catch {
      return false;
    }
  };
  const [own, other] = from === 'initiator' ? ['I', 'R'] : ['R', 'I'];
  check(`${name}: ${from} AUTH's transcript signature verifies under its node key`, verifiesAs(own));
  // And not under the other role's input (the role byte is bound).
  check(`${name}: ${from} AUTH's signature does not verify for the other role`, !verifiesAs(other));
}

// Checks one recorded session; returns whether it was hs2 with the HELLOs in the handshake
// (undefined when the handshake does not replay).
function checkSession(name, session, expectAgain) {
  const frames = { initiator: [], responder: [] };
  for (const f of session.flights) for (const p of f.frame_payloads_hex) frames[f.from].push(unhex(p));
  // Stealth: KNOCK and KNOCK_RESPONSE come first, in plaintext.
  const skip = session.stealth ? 1 : 0;
  const [msg1, msg3] = [frames.initiator[skip], frames.initiator[skip + 1]];
  const msg2 = frames.responder[skip];
  // §5.8: a 33-byte message 1 offers hs2; the responder accepts with HELLO_R in message 2
  // (longer than 96 bytes) or declines with an empty payload, and v1 goes on.
  const offer = msg1.length === 33;
  const hellos = offer && msg2.length > 96;
  if (hellos) {
    check(`${name}: Noise message sizes 33, 96+len(HELLO_R), 64+len(HELLO_I)`, msg3.length > 64);
  } else {
    check(`${name}: Noise message sizes ${offer ? 33 : 32}, 96, 64`,
      msg1.length === (offer ? 33 : 32) && msg2.length === 96 && msg3.length === 64);
  }
  // The dialer offers hs2 after a KNOCK only when the KNOCK_RESPONSE said it may (§5.2).
  if (offer && session.stealth) {
    let kr = [];
    try {
      kr = messages(frames.responder[0]); // plaintext, so it may not even be CBOR
    } catch {}
    check(`${name}: KNOCK_RESPONSE accepts, with h2: true`,
      kr.length === 1 && kr[0].t === 0x31 && kr[0].a === true && kr[0].h2 === true, JSON.stringify(kr));
  }
  const replayed = noise(name, session, [msg1, msg2, msg3], offer, hellos);
  if (!replayed) return undefined;
  const { keys, h } = replayed;
  if (hellos) {
    checkHello(name, session, 'responder', "message 2's payload", replayed.hellos.responder);
    checkHello(name, session, 'initiator', "message 3's payload", replayed.hellos.initiator);
  }
  const auths = { initiator: 0, responder: 0 };
  const caps = (p) => session[p].hello.cap;
  const aes = caps('initiator').includes('aes-gcm') && caps('responder').includes('aes-gcm');
  const streamData = [];
  for (const [from, key0, transport] of [
    ['initiator', keys[0], frames.initiator.slice(skip + 2)],
    ['responder', keys[1], frames.responder.slice(skip + 1)],
  ]) {
    let key = key0;
    let cipher = 'chacha';
    // §7.2: a direction switches to AES-256-GCM once both HELLOs are read: after its
    // transport HELLO (counter 0) in v1, before its first transport frame in hs2.
    const switchCipher = () => {
      if (aes) {
        key = rekey('chacha', key);
        cipher = 'aes';
      }
    };
    if (hellos) switchCipher();
    let opened = 0;
    let rekeys = 0;
    transport.forEach((ct, i) => {
      const n = BigInt(i);
      const plain = open(cipher, key, n, Buffer.alloc(0), ct);
      if (plain === null) {
        check(`${name}: ${from} frame ${i} opens under ${cipher}`, false);
        return;
      }
      opened++;
      if (i === 0 && !hellos) {
        checkHello(name, session, from, 'frame 0', plain);
        switchCipher();
        return;
      }
      const ms = messages(plain);
      for (const m of ms) if (m.t === 0x12 && from === 'initiator') streamData.push(Buffer.from(m.d ?? []));
      for (const m of ms.filter((m) => m.t === 0x02)) {
        auths[from]++;
        checkAuth(name, session, from, m, h);
      }
      if (ms.some((m) => m.t === 0x22)) {
        rekeys++;
        check(`${name}: ${from} REKEY ${rekeys} is alone in its frame with n = ${rekeys}`,
          ms.length === 1 && ms[0].n === rekeys);
        key = rekey(cipher, key);
      }
    });
    const ciphers = !aes ? 'ChaChaPoly' : hellos ? 'AES-256-GCM from counter 0' : 'AES-256-GCM after the HELLO';
    // Something must follow the HELLO, in transport (v1) or in the handshake (hs2).
    check(`${name}: all ${transport.length} ${from} transport frames open (${ciphers}, ${rekeys} rekeys)`,
      opened === transport.length && transport.length > (hellos ? 0 : 1));
  }
  check(`${name}: one AUTH each way`, auths.initiator === 1 && auths.responder === 1, JSON.stringify(auths));
  const text = Buffer.concat(streamData).toString();
  check(`${name}: the initiator's stream reads "${expectAgain ? 'hello again' : 'hello'}"`,
    text === (expectAgain ? 'hello again' : 'hello'), JSON.stringify(text));
  return hellos;
}

const [hsPath, rekeyPath] = process.argv.slice(2);
if (!hsPath || !rekeyPath) {
  console.error('usage: node transcript.mjs <handshake.json> <rekey.json>');
  process.exit(2);
}
const hs = JSON.parse(readFileSync(hsPath, 'utf8'));
const rk = JSON.parse(readFileSync(rekeyPath, 'utf8'));
// A self-check first: the AES REKEY and nonce rules against one hand-computed property
// (nonce 2^64-1 has the same bytes in both encodings).
check('max nonce encodes the same in both ciphers', hex(nonce('chacha', MAXNONCE)) === hex(nonce('aes', MAXNONCE)));
checkSession('handshake.json public', hs.public, false);
checkSession('handshake.json stealth', hs.stealth, false);
checkSession('handshake.json public_aes_gcm', hs.public_aes_gcm, false);
checkSession('handshake.json public_transcript_binding', hs.public_transcript_binding, false);
check('public_transcript_binding lists transcript-binding on both sides, public on neither',
  ['initiator', 'responder'].every((p) => hs.public_transcript_binding[p].hello.cap.includes('transcript-binding') &&
    !hs.public[p].hello.cap.includes('transcript-binding')));
check('public_aes_gcm lists aes-gcm on both sides',
  hs.public_aes_gcm.initiator.hello.cap.includes('aes-gcm') && hs.public_aes_gcm.responder.hello.cap.includes('aes-gcm'));
check('public lists aes-gcm on neither side',
  !hs.public.initiator.hello.cap.includes('aes-gcm') && !hs.public.responder.hello.cap.includes('aes-gcm'));
// hs2 (§5.8): each must be replayed as hs2, not pass as v1 because the recorder regressed.
const hs2 = ['public_hs2', 'stealth_hs2_aes_gcm'].map((k) => checkSession(`handshake.json ${k}`, hs[k], false));
check('public_hs2 and stealth_hs2_aes_gcm carry their HELLOs in Noise messages 2 and 3', hs2.every((x) => x === true));
check('stealth_hs2_aes_gcm is stealth and lists aes-gcm on both sides',
  hs.stealth_hs2_aes_gcm.stealth && ['initiator', 'responder'].every((p) => hs.stealth_hs2_aes_gcm[p].hello.cap.includes('aes-gcm')));
checkSession('rekey.json session', rk.session, true);
checkSession('rekey.json aes_gcm_session', rk.aes_gcm_session, true);
for (const k of rk.keys) {
  for (const [i, step] of k.chain.entries()) {
    check(`rekey.json ${k.name} step ${i}: REKEY(key) under ChaChaPoly`,
      hex(rekey('chacha', unhex(step.key_hex))) === step.rekeyed_key_hex);
  }
}
finish();
