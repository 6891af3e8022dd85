// Bench hook: one stream through the Node.js package against the Rust bench listener.
// Usage: node sender.mjs PACKAGE_DIR ADDR TOTAL_BYTES WRITE_SIZE
// Prints "RESULT <MiB/s> <1 if the listener's CRC-32 matched else 0> <CPU seconds of this
// process over the timed stream>", or "NOT_BUILT <why>".
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

const [pkgDir, addr, totalS, sizeS] = process.argv.slice(2);
let snap2p;
try {
  snap2p = createRequire(import.meta.url)(pkgDir);
} catch (e) {
  console.log(`NOT_BUILT ${e.message.split('\n')[0]}`);
  process.exit(0);
}
const total = Number(totalS), size = Number(sizeS);
const block = Buffer.alloc(size);
for (let i = 0; i < size; i++) block[i] = (i * 131 + 7) & 0xff;
const n = Math.floor(total / size);
let want = 0;
for (let i = 0; i < n; i++) want = zlib.crc32(block, want);
const Peer = snap2p.Peer;
const client = await Peer.create();
const conn = await client.dial(addr);
// Untimed warm-up stream (as long as the timed one, as every language sender does): lets
// V8 compile the write path before the clock starts.
const warm = await conn.openStream();
for (let i = 0; i < n; i++) await warm.writeAll(block);
warm.end();
await warm.readAll();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const stream = await conn.openStream();
for (let i = 0; i < n; i++) await stream.writeAll(block);
stream.end(); // half-close (FIN); the read side stays open for the CRC reply
const reply = Buffer.from(await stream.readAll());
const dt = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const ok = reply.length === 4 && reply.readUInt32BE(0) === want >>> 0;
console.log(`RESULT ${(n * size / 1048576 / dt).toFixed(1)} ${ok ? 1 : 0} ${((cpu.user + cpu.system) / 1e6).toFixed(4)}`);
await client.close();
process.exit(0);
