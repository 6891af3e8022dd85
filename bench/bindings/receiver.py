"""Bench hook: a listener written with the Python package, for the native sender.

Usage: python3 receiver.py [--readinto]
Reads with ``async for`` (a ``bytes`` per chunk), or with ``--readinto`` into one
``bytearray`` of 1 MiB, reused. Prints "ADDR <locator>", then "STREAM <bytes> <CPU seconds of this process over the
stream>" for each stream, which it reads to its end (counting only) and answers with its
length (8 bytes, big endian); runs until its standard input closes. Prints "NOT_BUILT
<why>" if the package is not built.
"""

import asyncio
import sys
import time

try:
    import snap2p
except Exception as e:  # noqa: BLE001 (the package or its native module is not built)
    print(f"NOT_BUILT {type(e).__name__}: {e}", flush=True)
    sys.exit(0)


READINTO = "--readinto" in sys.argv[1:]


async def count(stream: snap2p.Stream) -> None:
    cpu0 = time.process_time()
    n = 0
    if READINTO:
        buf = bytearray(1 << 20)
        while k := await stream.readinto(buf):
            n += k
    else:
        async for chunk in stream:
            n += len(chunk)
    cpu = time.process_time() - cpu0
    stream.write(n.to_bytes(8, "big"))
    stream.close()
    await stream.drain()
    print(f"STREAM {n} {cpu:.4f}", flush=True)


async def serve(conn: snap2p.Connection, tasks: set[asyncio.Task[None]]) -> None:
    async for stream in conn.streams():
        task = asyncio.ensure_future(count(stream))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def main() -> None:
    peer = await snap2p.Peer.create()
    await peer.listen("127.0.0.1:0")
    print(f"ADDR {peer.listen_addrs[0]}", flush=True)
    tasks: set[asyncio.Task[None]] = set()
    sub = peer.on_connection(lambda conn: serve(conn, tasks))
    # Until standard input closes (read on a thread: the loop keeps running).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    sub.cancel()
    await peer.close()


asyncio.run(main())
