'use strict';
// Stream.readInto(buf): reads into the caller's buffer, across the frames the bytes came
// in; the end (and the Readable side's 'end'), bytes the Readable side already held,
// errors, a wait shared with the Readable side, bad buffers.
const { test } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const { snap2p, streamPair: pair, pattern, sha256, rejectsWithCode } = require('./helpers');

const { ErrorCode } = snap2p;
const T = { timeout: 60_000 };
const MIB = 1024 * 1024;
// The most one frame carries (PROTOCOL.md): a read that returns more spanned frames.
const FRAME = 65_502;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('readInto takes what many frames brought, then 0 at the end, and the Readable ends', T, async () => {
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('readinto');
    const data = pattern(8 * MIB, 5);
    // 512 KiB sent and given time to arrive: one read takes all of it, many frames.
    await s.writeAll(data.subarray(0, 512 * 1024));
    const remote = await nextInbound();
    await sleep(300);
    const buf = Buffer.alloc(MIB);
    const first = await remote.readInto(buf);
    assert.ok(first > FRAME, `first read ${first}`);
    const h = crypto.createHash('sha256').update(buf.subarray(0, first));
    let got = first;
    const sender = (async () => {
      for (let i = 512 * 1024; i < data.length; i += MIB) await s.writeAll(data.subarray(i, i + MIB));
      s.end();
    })();
    const ended = new Promise((r) => remote.once('end', r));
    for (;;) {
      const n = await remote.readInto(buf);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      got += n;
    }
    await sender;
    assert.strictEqual(got, data.length);
    assert.strictEqual(h.digest('hex'), sha256(data));
    await ended;
    // The end stays the end; the writable side still works (half-close).
    assert.strictEqual(await remote.readInto(buf), 0);
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(got));
    remote.end(len);
    const back = await s.readAll();
    assert.strictEqual(back.readBigUInt64BE(0), BigInt(data.length));
  } finally {
    await close();
  }
});

test('readInto into a small view keeps order and writes nothing outside it', T, async () => {
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('small');
    const data = pattern(100 * 1024, 9);
    s.end(data);
    const remote = await nextInbound();
    const whole = Buffer.alloc(20, '#');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 5, 7);
    const out = [];
    for (let n; (n = await remote.readInto(view)) > 0; ) out.push(Buffer.from(view.subarray(0, n)));
    assert.ok(Buffer.concat(out).equals(data));
    assert.strictEqual(whole.subarray(0, 5).toString(), '#####');
    assert.strictEqual(whole.subarray(12).toString(), '########');
  } finally {
    await close();
  }
});

test('bytes the Readable side already holds come before readInto reads the core', T, async () => {
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('mixed');
    const a = pattern(200 * 1024, 1);
    const b = pattern(300 * 1024, 2);
    await s.writeAll(a);
    const remote = await nextInbound();
    await sleep(200);
    remote.read(0); // the Readable side pulls what came into its own buffer
    await sleep(100);
    assert.ok(remote.readableLength > 0);
    s.end(b);
    const buf = Buffer.alloc(64 * 1024);
    const out = [];
    for (let n; (n = await remote.readInto(buf)) > 0; ) out.push(Buffer.from(buf.subarray(0, n)));
    assert.ok(Buffer.concat(out).equals(Buffer.concat([a, b])));
  } finally {
    await close();
  }
});

test('readInto and the Readable side waiting at once share one wait, and both get bytes', T, async () => {
  // The core keeps one read waker per stream: two waits replacing each other would wake
  // each other in turn, forever. One shared wait: both settle once, when bytes come.
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('shared');
    s.write('x');
    const remote = await nextInbound();
    assert.strictEqual(await remote.readInto(Buffer.alloc(1)), 1);
    const viaReadable = new Promise((r) => remote.once('readable', r));
    remote.read(0); // a _read waits on readable()
    const viaInto = remote.readInto(Buffer.alloc(1024));
    // Nothing comes for 300 ms: the waits must sleep. Two waits replacing each other burnt
    // 378 of 500 ms of CPU here; one shared wait, under 1 ms.
    const cpu0 = process.cpuUsage();
    await sleep(300);
    const cpu = process.cpuUsage(cpu0);
    assert.ok(cpu.user + cpu.system < 100_000, `CPU while idle: ${(cpu.user + cpu.system) / 1000} ms`);
    s.end('late bytes');
    const n = await viaInto;
    await viaReadable;
    const rest = remote.read() ?? Buffer.alloc(0);
    assert.strictEqual(n + rest.length, 'late bytes'.length);
  } finally {
    await close();
  }
});

test('a reset while readInto waits rejects it with the code', T, async () => {
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('reset');
    s.write('x');
    const remote = await nextInbound();
    await remote.readInto(Buffer.alloc(1));
    const reading = remote.readInto(Buffer.alloc(100));
    await sleep(100);
    s.reset(ErrorCode.ERR_STREAM_REFUSED);
    await rejectsWithCode(assert, reading, ErrorCode.ERR_STREAM_REFUSED);
    await rejectsWithCode(assert, remote.readInto(Buffer.alloc(100)), ErrorCode.ERR_STREAM_REFUSED);
  } finally {
    await close();
  }
});

test('readInto refuses what it cannot write into', T, async () => {
  const { conn, nextInbound, close } = await pair();
  try {
    const s = conn.openStream('bad');
    s.write('x');
    const remote = await nextInbound();
    for (const bad of [Buffer.alloc(0), 'text', 5, null, new ArrayBuffer(8)]) {
      await rejectsWithCode(assert, remote.readInto(bad), ErrorCode.ERR_INVALID_ARGUMENT);
    }
    const one = Buffer.alloc(1);
    assert.strictEqual(await remote.readInto(one), 1);
    assert.strictEqual(one.toString(), 'x');
  } finally {
    await close();
  }
});
