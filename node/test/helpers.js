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

function rustEchoPath() {
  if (process.env.SNAP2P_RUST_ECHO) return process.env.SNAP2P_RUST_ECHO;
  const target =
    process.env.CARGO_TARGET_DIR || path.join(process.env.HOME || '', '.cache/snap2p/target');
  return path.join(target, 'release/examples/rust-echo');
}

/** Starts the Rust echo server; resolves to `{principal, addr, invite, stop()}`. */
function startRustEcho(visibility = 'public') {
  const bin = rustEchoPath();
  if (!fs.existsSync(bin)) {
    throw new Error(`Rust echo server not built at ${bin} (cargo build --release -p snap2p-node --example rust-echo)`);
  }
  const child = spawn(bin, [visibility], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`rust-echo exited early (${code})`)));
    rl.once('line', (line) => {
      const info = JSON.parse(line);
      const exited = new Promise((r) => child.once('exit', r));
      resolve({
        ...info,
        stop: () => {
          child.stdin.end();
          return exited;
        },
      });
    });
  });
}

module.exports = { snap2p, listener, serveEcho, sha256, pattern, rejectsWithCode, startRustEcho };
