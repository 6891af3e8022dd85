'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, listener, serveEcho, rejectsWithCode } = require('./helpers');
const { Peer, Wallet, ErrorCode, recoverPrincipal, stacksMessageHash } = snap2p;

const T = { timeout: 30_000 };

/**
 * A signer as a browser-extension bridge would be: the key lives elsewhere (here, a
 * Wallet standing in for the extension), signing is asynchronous.
 */
function bridgeSigner(wallet, form) {
  const requests = [];
  return {
    requests,
    principal: wallet.principal,
    form,
    async sign(request) {
      requests.push(request);
      await new Promise((r) => setTimeout(r, 5));
      if (request.kind === 'digest') {
        assert.ok(Buffer.isBuffer(request.digest) && request.digest.length === 32);
        return wallet.signDigest(request.digest);
      }
      assert.strictEqual(typeof request.message, 'string');
      return wallet.signMessage(request.message);
    },
  };
}

for (const form of ['digest', 'message']) {
  test(`a JavaScript host signer (${form} form) authenticates a peer`, T, async () => {
    const wallet = Wallet.generate();
    const signer = bridgeSigner(wallet, form);
    const { peer: server, addr } = await listener({ signer, alias: 'bridge' });
    assert.strictEqual(server.principal, wallet.principal);
    assert.ok(signer.requests.length >= 2, 'attestation and alias card were signed');
    assert.ok(signer.requests.every((r) => r.kind === form));
    if (form === 'message') {
      assert.match(signer.requests[0].message, /^snap2p node key attestation\n/);
    }
    serveEcho(server);
    const client = await Peer.create();
    const conn = await client.dial(addr);
    assert.strictEqual(conn.remotePrincipal, wallet.principal);
    const s = conn.openStream();
    await s.writeAll('signed');
    s.end();
    assert.strictEqual((await s.readAll()).toString(), 'signed');
    await Promise.all([client.close(), server.close()]);
  });
}

test('host signer failures are errors with codes, never crashes', T, async () => {
  const wallet = Wallet.generate();
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, form: 'sms', sign: async () => Buffer.alloc(65) } }),
    ErrorCode.ERR_INVALID_ARGUMENT,
  );
  await rejectsWithCode(assert, wallet.issueGrant(wallet.principal, ['files'], { form: 'sms' }), ErrorCode.ERR_INVALID_ARGUMENT);
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, sign: async () => { throw new Error('user rejected'); } } }),
    ErrorCode.ERR_WALLET,
  );
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, sign: () => { throw new Error('sync throw'); } } }),
    ErrorCode.ERR_WALLET,
  );
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, sign: async () => Buffer.alloc(64) } }),
    ErrorCode.ERR_AUTH_INVALID,
  );
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, sign: async () => 'not bytes' } }),
    ErrorCode.ERR_WALLET,
  );
  // A signature by another key for the claimed principal is caught when attesting.
  const other = Wallet.generate();
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, sign: async (r) => other.signDigest(r.digest) } }),
    ErrorCode.ERR_AUTH_INVALID,
  );
  await rejectsWithCode(assert, Peer.create({ signer: { principal: 'SPnope', sign: async () => null } }), 25);
  await rejectsWithCode(assert, Peer.create({ signer: { principal: wallet.principal } }), 25);
  await rejectsWithCode(
    assert,
    Peer.create({ signer: { principal: wallet.principal, form: 'weird', sign: async () => null } }),
    25,
  );
});

test('wallet signatures recover to the principal', () => {
  const w = Wallet.generate('testnet');
  assert.match(w.principal, /^stacks:ST/);
  const digest = Buffer.alloc(32, 7);
  assert.strictEqual(recoverPrincipal(digest, w.signDigest(digest), 'testnet'), w.principal);
  const sig = w.signMessage('hello');
  assert.strictEqual(recoverPrincipal(stacksMessageHash('hello'), sig, 'testnet'), w.principal);
});
