// The Node.js runner of the interop matrix (contract: docs/INTEROP.md).
// Its wallet signer is JavaScript: a secp256k1 key held by @noble/curves signs the digests
// the core asks for, so the attestation and AliasCard are signed outside Rust.
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { secp256k1 } from '@noble/curves/secp256k1';

const require = createRequire(import.meta.url);
const snap2p = require(process.env.SNAP2P_NODE_PACKAGE || '../../../node/index.js');

class JsSigner {
  constructor(form) {
    this.key = secp256k1.utils.randomPrivateKey();
    this.form = form;
    // The principal of our key: sign a probe digest and let the core recover it.
    const probe = createHash('sha256').update('principal probe').digest();
    this.principal = snap2p.recoverPrincipal(probe, this.signDigest(probe));
  }
  signDigest(digest) {
    const sig = secp256k1.sign(digest, this.key, { lowS: true });
    const out = Buffer.alloc(65);
    out.set(sig.toCompactRawBytes(), 0);
    out[64] = sig.recovery;
    return out;
  }
  async sign(request) {
    const digest = request.kind === 'digest' ? request.digest : snap2p.stacksMessageHash(request.message);
    return this.signDigest(digest);
  }
}

function parseArgs(argv) {
  const args = { mode: argv[0], allow: [] };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--visibility': args.visibility = next(); break;
      case '--allow': args.allow.push(next()); break;
      case '--alias': args.alias = next(); break;
      case '--invite':
        if (args.mode === 'listen') args.invite = true; else args.invite = next();
        break;
      case '--bootstrap': args.bootstrap = next(); break;
      case '--ws': args.ws = true; break;
      case '--wss': args.wss = true; break;
      case '--tls-cert': args.tlsCert = next(); break;
      case '--tls-key': args.tlsKey = next(); break;
      case '--tls-root': args.tlsRoot = next(); break;
      case '--sign-form': args.signForm = next(); break;
      case '--target': args.target = next(); break;
      case '--via': args.via = next(); break;
      case '--streams': args.streams = Number(next()); break;
      case '--bytes': args.bytes = Number(next()); break;
      case '--expect-alias': args.expectAlias = next(); break;
      case '--expect-code': args.expectCode = Number(next()); break;
      case '--expect-principal': args.expectPrincipal = next(); break;
      case '--permit': args.permit = next(); break;
      case '--grant-owner-mnemonic': args.grantOwnerMnemonic = next(); break;
      case '--grant-label': args.grantLabel = next(); break;
      case '--relay': args.relay = next(); break;
      case '--expect-transport': args.expectTransport = next(); break;
      case '--v1': args.v1 = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return args;
}

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

async function makePeer(args) {
  const visibility = args.visibility || 'public';
  const peer = await snap2p.Peer.create({
    signer: new JsSigner(args.signForm === 'message' ? 'message' : 'digest'),
    visibility,
    allowlist: args.allow,
    allowlistGate: visibility === 'private' || args.allow.length > 0,
    // wss: the listener's certificate and key, the dialer's extra trusted root.
    tlsCertFile: args.tlsCert,
    tlsKeyFile: args.tlsKey,
    tlsRootFile: args.tlsRoot,
    // --v1: the handshake of three round trips only (PROTOCOL.md §5.8).
    hs2: !args.v1,
  });
  if (args.alias) await peer.setAlias(args.alias, `${args.alias} (node)`);
  if (args.mode === 'listen') {
    // grant: rules in their text form, and the owner wallet whose grants this node honours.
    if (args.permit !== undefined) peer.setPermissions(args.permit);
    if (args.grantOwnerMnemonic) peer.addGrantOwner(snap2p.Wallet.fromMnemonic(args.grantOwnerMnemonic).principal);
  }
  return peer;
}

async function serveStream(stream) {
  const h = createHash('sha256');
  let n = 0;
  await new Promise((resolve, reject) => {
    stream.on('data', (chunk) => {
      h.update(chunk);
      n += chunk.length;
    });
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const digest = h.digest('hex');
  await stream.writeAll(digest);
  stream.end();
  emit({ event: 'stream', label: stream.label, bytes: n, sha256: digest });
}

async function listen(args) {
  const peer = await makePeer(args);
  let locator;
  if (args.wss) {
    // The listener's full locator, named as its certificate is (localhost).
    await peer.listen('wss://127.0.0.1:0/interop');
    locator = peer.listenLocators
      .find((l) => l.startsWith('wss://'))
      .replace('wss://127.0.0.1:', 'wss://localhost:');
  } else if (args.ws) {
    // listen() resolves to the bound 'ip:port'; the locator is the listen locator with it.
    locator = `ws://${await peer.listen('ws://127.0.0.1:0/interop')}/interop`;
  } else {
    locator = await peer.listen('127.0.0.1:0');
  }
  if (args.relay) {
    // relay: also reserve on the relay at ADDR; the printed locator is the relayed one.
    await peer.listen(`relay://${args.relay}`);
    locator = peer.listenLocators.find((l) => l.startsWith('relay://'));
  }
  const invite = args.invite ? peer.createInvite({ ttlSecs: 3600 }).token : null;
  if (args.bootstrap) await peer.dial(args.bootstrap);
  peer.on('connection', (conn) => {
    const failed = Object.values(peer.stats().handshakesFailed).reduce((a, b) => a + b, 0);
    const { transport, hs2 } = conn.stats();
    emit({ event: 'connection', principal: conn.remotePrincipal, transport, hs2, handshakes_failed: failed });
    conn.multiplexer.on('stream', (stream) => {
      serveStream(stream).catch((e) => process.stderr.write(`stream: ${e}\n`));
    });
  });
  emit({ event: 'ready', principal: peer.principal, locator, invite });
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  await peer.close();
  return 0;
}

/** Opens `label`, writes a few bytes, reads the answer: 0 when served, else the error code. */
async function probe(conn, label) {
  const s = conn.openStream(label);
  s.on('error', () => {});
  try {
    await Promise.all([s.readAll(128), s.writeAll(Buffer.from('probe')).then(() => s.end())]);
    return 0;
  } catch (e) {
    return e.code ?? -1;
  }
}

async function sendOne(conn, i, nbytes, label) {
  const s = conn.multiplexer.openStream(label ?? `interop-${i}`);
  const h = createHash('sha256');
  let left = nbytes;
  while (left > 0) {
    const buf = randomBytes(Math.min(left, 65536));
    h.update(buf);
    await s.writeAll(buf);
    left -= buf.length;
  }
  s.end();
  const reply = await s.readAll(128);
  const mine = h.digest('hex');
  return { sha256: mine, match: reply.toString() === mine };
}

async function dial(args) {
  const peer = await makePeer(args);
  const started = Date.now();
  if (args.via) await peer.dial(args.via);
  let conn;
  try {
    conn = await peer.dial(args.target, args.invite ? { invite: args.invite } : {});
  } catch (e) {
    const ok = args.expectCode !== undefined && e.code === args.expectCode;
    emit({ event: 'result', ok, code: e.code ?? null, error: String(e.message || e) });
    await peer.close();
    return ok ? 0 : 1;
  }
  if (args.expectCode !== undefined) {
    emit({ event: 'result', ok: false, code: null, error: 'connected but an error was expected' });
    await peer.close();
    return 1;
  }
  // grant: opening the label must be refused (20); then the owner wallet (account 0 of the
  // mnemonic) grants it to our principal, we present the grant and label the streams with it.
  let refusedCode = null;
  if (args.grantLabel) {
    refusedCode = await probe(conn, args.grantLabel);
    let error = refusedCode === 20 ? null : `refusal code ${refusedCode} (want 20)`;
    if (!error) {
      try {
        // The owner's key held by JavaScript, as a phone or browser wallet bridge would
        // (a host signer asked for the grant's Stacks message text).
        const owner = snap2p.Wallet.fromMnemonic(args.grantOwnerMnemonic);
        const signer = {
          principal: owner.principal,
          form: 'message',
          sign: (r) => (r.kind === 'digest' ? owner.signDigest(r.digest) : owner.signMessage(r.message)),
        };
        const grant = await snap2p.issueGrantWithSigner(signer, peer.principal, [args.grantLabel], { ttlSecs: 3600 });
        await conn.presentGrant(grant);
      } catch (e) {
        error = `present: ${e.code ?? ''} ${e.message || e}`;
      }
    }
    if (error) {
      emit({ event: 'result', ok: false, refused_code: refusedCode, error });
      await peer.close();
      return 1;
    }
  }
  const results = await Promise.allSettled(
    Array.from({ length: args.streams || 1 }, (_, i) => sendOne(conn, i, args.bytes ?? 1024, args.grantLabel)),
  );
  const streams = results.map((r) => (r.status === 'fulfilled' ? r.value : { error: String(r.reason) }));
  let ok = streams.every((r) => r.match);
  let alias = conn.remoteAlias ? conn.remoteAlias.alias : null;
  if (args.expectAlias !== undefined) {
    for (let i = 0; i < 50 && alias !== args.expectAlias; i++) {
      await new Promise((r) => setTimeout(r, 20));
      alias = conn.remoteAlias ? conn.remoteAlias.alias : null;
    }
    ok = ok && alias === args.expectAlias;
  }
  if (args.expectPrincipal) ok = ok && conn.remotePrincipal === args.expectPrincipal;
  const { transport, hs2 } = conn.stats();
  if (args.expectTransport) ok = ok && transport === args.expectTransport;
  emit({ event: 'result', ok, principal: conn.remotePrincipal, alias, streams, refused_code: refusedCode, transport, hs2, ms: Date.now() - started });
  conn.close(0, 'done');
  await peer.close();
  return ok ? 0 : 1;
}

const args = parseArgs(process.argv.slice(2));
const run = args.mode === 'listen' ? listen : args.mode === 'dial' ? dial : null;
if (!run) {
  process.stderr.write('usage: runner.mjs listen|dial [options] (see docs/INTEROP.md)\n');
  process.exit(2);
}
run(args).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e.stack || e}\n`);
    process.exit(1);
  },
);
