'use strict';
// Reading: bytes the core holds are taken synchronously (`tryRead`); when it holds none, one
// `readable()` wait that the core's driver settles. Late data, empty streams, resets while
// waiting, a stream destroyed while its read waits, a consumer that pauses.
const { test } = require('node:test');
const assert = require('node:assert');
const { snap2p, streamPair: pair, pattern, sha256 } = require('./helpers');

const { Snap2pError, ErrorCode } = snap2p;
const T = { timeout: 60_000 };

test('a read waiting for data gets it when it comes, then the end', T, async () => {
  const { conn, nextInbound, close } = await pair();
  const s = conn.openStream('late');
  s.write('x');
  const remote = await nextInbound();
  const got = [];
  const done = (async () => {
    for await (const chunk of remote.iterator({ destroyOnReturn: false })) got.push(chunk);
  })();
  await new Promise((r) => setTimeout(r, 200));
  assert.strictEqual(Buffer.concat(got).toString(), 'x');
  s.end('late');
  await done;
  assert.strictEqual(Buffer.concat(got).toString(), 'xlate');
  await close();
});

test('a stream that ends with no data reads as empty', T, async () => {
  const { conn, nextInbound, close } = await pair();
  const s = conn.openStream('empty');
  s.end();
  const remote = await nextInbound();
  const all = await remote.readAll();
  assert.strictEqual(all.length, 0);
  await close();
});

test('a reset while a read waits ends the read with the code', T, async () => {
  const { conn, nextInbound, close } = await pair();
  const s = conn.openStream('reset');
  s.write('x');
  const remote = await nextInbound();
  const err = await new Promise((resolve) => {
    remote.on('error', resolve);
    remote.on('data', () => {
      // The first byte arrived; the next read waits. Now the writer resets.
      setTimeout(() => s.reset(ErrorCode.ERR_STREAM_REFUSED), 100);
    });
  });
  assert.ok(err instanceof Snap2pError, String(err));
  assert.strictEqual(err.code, ErrorCode.ERR_STREAM_REFUSED);
  await close();
});

test('a stream destroyed while its read waits ends cleanly', T, async () => {
  const { conn, nextInbound, close } = await pair();
  const s = conn.openStream('destroy');
  s.write('x');
  const remote = await nextInbound();
  remote.resume();
  await new Promise((r) => setTimeout(r, 100));
  remote.destroy();
  await new Promise((r) => remote.once('close', r));
  // The writer learns that its stream is gone (reset) instead of waiting forever.
  const err = await new Promise((resolve) => {
    s.on('error', resolve);
    s.resume();
  });
  assert.ok(err instanceof Snap2pError, String(err));
  await close();
});

test('a consumer that pauses and resumes gets every byte in order', T, async () => {
  const { conn, nextInbound, close } = await pair();
  const s = conn.openStream('pause');
  const data = pattern(8 * 1024 * 1024, 7);
  const remote = await nextInbound();
  const got = [];
  let paused = 0;
  const done = new Promise((resolve, reject) => {
    remote.on('data', (chunk) => {
      got.push(chunk);
      if (got.length % 5 === 0) {
        paused += 1;
        remote.pause();
        setTimeout(() => remote.resume(), 5);
      }
    });
    remote.on('end', resolve);
    remote.on('error', reject);
  });
  await s.writeAll(data);
  s.end();
  await done;
  assert.ok(paused > 0);
  assert.strictEqual(sha256(Buffer.concat(got)), sha256(data));
  await close();
});

test('read() returns what the Readable held, without pulling the core into the same copy', T, async () => {
  // Node's Readable.read() calls _read() before it takes its bytes; a chunk pushed there at
  // once was joined to the one waiting (Buffer.concat: a copy of both). Now that chunk is
  // pushed after read() returned. Fails on the old _read: this read() was 272,384 bytes.
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('held');
    const a = pattern(256 * 1024, 3);
    const b = pattern(10 * 1024, 4);
    s.write(a);
    const remote = await nextInbound();
    await new Promise((r) => setTimeout(r, 200));
    remote.read(0); // the Readable pulls what came, up to its high-water mark (the whole window)
    s.end(b); // sent once that pull returned the window's credit
    await new Promise((r) => setTimeout(r, 200));
    const held = remote.readableLength;
    assert.ok(held > 0);
    const first = remote.read();
    assert.strictEqual(first.length, held);
    const rest = [];
    for await (const chunk of remote.iterator({ destroyOnReturn: false })) rest.push(chunk);
    assert.ok(Buffer.concat([first, ...rest]).equals(Buffer.concat([a, b])));
  } finally {
    await close();
  }
});
