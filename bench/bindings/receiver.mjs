// Bench hook: a listener written with the Node.js package, for the native sender.
// Usage: node receiver.mjs PACKAGE_DIR [--read-into]
// Reads with `for await` (a Buffer per chunk), or with --read-into through
// `stream.readInto` into one Buffer of 1 MiB, reused.
// Prints "ADDR <locator>", then "STREAM <bytes> <CPU seconds of this process over the
// stream>" for each stream, which it reads to its end (counting only) and answers with its
// length (8 bytes, big endian); runs until its standard input closes. Prints "NOT_BUILT
// <why>" if the package is not built.
import { createRequire } from 'node:module';

const [pkgDir, ...flags] = process.argv.slice(2);
const READ_INTO = flags.includes('--read-into');
let snap2p;
try {
  snap2p = createRequire(import.meta.url)(pkgDir);
} catch (e) {
  console.log(`NOT_BUILT ${e.message.split('\n')[0]}`);
  process.exit(0);
}
const peer = await snap2p.Peer.create();
await peer.listen('127.0.0.1:0');
console.log(`ADDR ${peer.listenAddrs[0]}`);
peer.on('connection', (conn) => {
  conn.multiplexer.on('stream', async (stream) => {
    const cpu0 = process.cpuUsage();
    let n = 0;
    if (READ_INTO) {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      for (let k; (k = await stream.readInto(buf)) > 0; ) n += k;
    } else {
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) n += chunk.length;
    }
    const cpu = process.cpuUsage(cpu0);
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(n));
    stream.end(len);
    console.log(`STREAM ${n} ${((cpu.user + cpu.system) / 1e6).toFixed(4)}`);
  });
});
process.stdin.resume();
process.stdin.on('end', async () => {
  await peer.close();
  process.exit(0);
});
