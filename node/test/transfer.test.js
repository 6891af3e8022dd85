'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const { Readable, Writable } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const { snap2p, listener, pattern } = require('./helpers');

const SIZE = 64 * 1024 * 1024;

/** A readable of `size` pseudo-random bytes in 1 MiB chunks, hashing what it produces. */
function source(size, seed) {
  const hash = crypto.createHash('sha256');
  let sent = 0;
  const r = new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(1 << 20, size - sent);
      const chunk = pattern(n, seed + sent);
      sent += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream: r, digest: () => hash.digest('hex') };
}

/** A writable that hashes and counts what it receives. */
function sink() {
  const hash = crypto.createHash('sha256');
  let received = 0;
  const w = new Writable({
    write(chunk, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      cb();
    },
  });
  return { stream: w, digest: () => hash.digest('hex'), received: () => received };
}

test('64 MiB each way with SHA-256 checked at both ends', { timeout: 180_000 }, async () => {
  const { peer: server, addr } = await listener();
  const serverDone = new Promise((resolve, reject) => {
    server.on('connection', (conn) => {
      conn.multiplexer.on('stream', async (stream) => {
        try {
          // Receive the client's 64 MiB, then send 64 MiB of our own back.
          const inbound = sink();
          await pipeline(stream, inbound.stream).catch((e) => {
            // pipeline() ends the duplex's readable side only; the writable goes on.
            throw e;
          });
          const outbound = source(SIZE, 99);
          await pipeline(outbound.stream, stream);
          resolve({ got: inbound.digest(), gotBytes: inbound.received(), sent: outbound.digest() });
        } catch (e) {
          reject(e);
        }
      });
    });
  });
  const client = await snap2p.Peer.create();
  const conn = await client.dial(addr);
  const stream = conn.openStream('bulk');
  const up = source(SIZE, 7);
  const down = sink();
  const t0 = Date.now();
  await Promise.all([pipeline(up.stream, stream), pipeline(stream, down.stream)]);
  const secs = (Date.now() - t0) / 1000;
  const server_ = await serverDone;
  assert.strictEqual(server_.gotBytes, SIZE);
  assert.strictEqual(server_.got, up.digest(), 'server received exactly what the client sent');
  assert.strictEqual(down.received(), SIZE);
  assert.strictEqual(down.digest(), server_.sent, 'client received exactly what the server sent');
  console.log(`# 2 x 64 MiB in ${secs.toFixed(1)} s (${((2 * SIZE) / 1048576 / secs).toFixed(0)} MiB/s)`);
  await client.close();
  await server.close();
});

test('backpressure: a reader that does not read stops the writer', { timeout: 60_000 }, async () => {
  const { peer: server, addr } = await listener();
  let inbound;
  const gotStream = new Promise((resolve) => {
    server.on('connection', (conn) => conn.multiplexer.on('stream', resolve));
  });
  const client = await snap2p.Peer.create();
  const conn = await client.dial(addr);
  const stream = conn.openStream('slow');
  // Write until the core refuses to take more (write callbacks stop completing).
  let accepted = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  let stalled = false;
  for (let i = 0; i < 1024 && !stalled; i++) {
    const done = stream.writeAll(chunk).then(() => (accepted += chunk.length));
    stalled = (await Promise.race([done.then(() => false), new Promise((r) => setTimeout(() => r(true), 300))]));
  }
  assert.ok(stalled, 'the writer was stopped by flow control');
  assert.ok(accepted < 64 * 1024 * 1024, `the core buffered a bounded amount (${accepted} bytes)`);
  const before = accepted;
  await new Promise((r) => setTimeout(r, 300));
  assert.strictEqual(accepted, before, 'nothing more is accepted while the reader is idle');

  // Now the reader drains: the writer resumes and every byte arrives.
  inbound = await gotStream;
  stream.end();
  const all = await inbound.readAll(128 * 1024 * 1024);
  assert.ok(all.length > before, 'the stalled write completed once the reader read');
  assert.strictEqual(all.length, accepted);
  assert.ok(all.every((b) => b === 1));
  await client.close();
  await server.close();
});
