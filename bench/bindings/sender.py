"""Bench hook: one stream through the Python package against the Rust bench listener.

Usage: python3 sender.py ADDR TOTAL_BYTES WRITE_SIZE
Prints "RESULT <MiB/s> <1 if the listener's CRC-32 matched else 0> <CPU seconds of this
process over the timed stream>", or "NOT_BUILT <why>".
"""

import asyncio
import sys
import time
import zlib

try:
    import snap2p
except Exception as e:  # noqa: BLE001 (the package or its native module is not built)
    print(f"NOT_BUILT {type(e).__name__}: {e}")
    sys.exit(0)


async def main() -> None:
    addr, total, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    block = bytes((i * 131 + 7) & 0xFF for i in range(size))
    n = total // size
    want = 0
    for _ in range(n):
        want = zlib.crc32(block, want)
    client = await snap2p.Peer.create()
    conn = await client.dial(addr)
    # Untimed warm-up stream (as long as the timed one), as the other language senders do.
    warm = await conn.open_stream()
    for _ in range(n):
        warm.write(block)
        await warm.drain()
    warm.close()
    await warm.read()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    stream = await conn.open_stream()
    for _ in range(n):
        stream.write(block)
        await stream.drain()
    stream.close()
    reply = await stream.read()
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    ok = len(reply) == 4 and int.from_bytes(reply, "big") == want
    print(f"RESULT {n * size / 1048576 / dt:.1f} {int(ok)} {cpu:.4f}")
    await client.close()


asyncio.run(main())
