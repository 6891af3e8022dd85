'use strict';
// Shared test helpers: real peers over loopback, the Rust echo server, hashing.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const readline = require('node:readline');

const snap2p = require('..');

/** A loopback listener: resolves to `{peer, addr}`. */
async function listener(options) {
  const peer = await snap2p.Peer.create(options);
  const addr = await peer.listen('127.0.0.1:0');
  return { peer, addr };
}

/** Echoes every stream of every inbound connection back (ends when the peer finishes). */
function serveEcho(peer) {
  peer.on('connection', (conn) => {
    conn.multiplexer.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.pipe(stream);
    });
  });
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

/** Deterministic pseudo-random bytes (so failures are reproducible). */
function pattern(len, seed = 1) {
  const out = Buffer.allocUnsafe(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, Math.min(i, len - 4));
  }
  return out;
}

/** Asserts `promise` rejects with a Snap2pError of `code`. */
async function rejectsWithCode(assert, promise, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof snap2p.Snap2pError, `expected Snap2pError, got ${e && e.stack}`);
    assert.strictEqual(e.code, code, `expected code ${code}, got ${e.code} (${e.name}: ${e.message})`);
    assert.strictEqual(e.name, snap2p.errorName(code));
    return true;
  });
}

/** The workspace's Rust echo peer (core/examples/echo_peer.rs). */
function rustEchoPath() {
  if (process.env.SNAP2P_ECHO_PEER) return process.env.SNAP2P_ECHO_PEER;
  const target =
    process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || '', '.cache/snap2p/target');
  return path.join(target, 'debug/examples/echo_peer');
}

/**
 * Starts the Rust echo peer; resolves to `{principal, addr, invite, stop()}`. `visibility`:
 * public, private, stealth, or stealth-open (stealth with the allowlist gate off, so any
 * invited principal gets in).
 */
function startRustEcho(visibility = 'public', extra = []) {
  const bin = rustEchoPath();
  if (!fs.existsSync(bin)) {
    throw new Error(`Rust echo peer not built at ${bin} (cargo build -p snap2p --example echo_peer)`);
  }
  const args = (
    visibility === 'stealth-open' ? ['--visibility', 'stealth', '--open-invites'] : ['--visibility', visibility]
  ).concat(extra);
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo_peer exited early (${code})`)));
    rl.once('line', (line) => {
      // READY <addr> <principal> <invite hex|->
      const [ready, addr, principal, invite] = line.trim().split(' ');
      if (ready !== 'READY') {
        reject(new Error(`echo_peer did not start: ${line}`));
        return;
      }
      const exited = new Promise((r) => child.once('exit', r));
      resolve({
        addr,
        principal,
        invite: invite === '-' ? null : invite,
        stop: () => {
          child.stdin.end();
          return exited;
        },
      });
    });
  });
}

/**
 * A throw-away PKI made by `openssl` in a temporary directory: a CA and a leaf for
 * `localhost` / 127.0.0.1 signed by it. Resolves to `{dir, ca, cert, key}` (PEM paths).
 */
function makeTlsFiles() {
  const { execFileSync } = require('node:child_process');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2p-tls-'));
  const f = (name) => path.join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=snap2p test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', ...ec, '-keyout', f('key.pem'), '-out', f('leaf.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(
    f('leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  openssl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('cert.pem'), '-days', '2', '-extfile', f('leaf.ext'));
  return { dir, ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem') };
}

/** A client connection to a fresh listener, and the server's side of each stream. */
async function streamPair() {
  const { peer: server, addr } = await listener();
  const inbound = [];
  const waiting = [];
  server.on('connection', (conn) => {
    conn.multiplexer.on('stream', (s) => {
      s.on('error', () => {});
      const w = waiting.shift();
      if (w) w(s);
      else inbound.push(s);
    });
  });
  const nextInbound = () =>
    inbound.length > 0 ? Promise.resolve(inbound.shift()) : new Promise((r) => waiting.push(r));
  const client = await snap2p.Peer.create();
  const conn = await client.dial(addr);
  const close = async () => {
    await client.close();
    await server.close();
  };
  return { conn, nextInbound, close };
}

module.exports = {
  snap2p,
  listener,
  streamPair,
  serveEcho,
  sha256,
  pattern,
  rejectsWithCode,
  startRustEcho,
  makeTlsFiles,
};
