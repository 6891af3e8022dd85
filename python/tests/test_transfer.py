"""Large transfers with SHA-256 checked at both ends, and read cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable

import snap2p

MIB = 1 << 20


async def test_64_mib_python_to_python(server: snap2p.Peer, client: snap2p.Peer) -> None:
    received = asyncio.get_running_loop().create_future()

    async def sink(conn: snap2p.Connection) -> None:
        stream = await conn.accept_stream()
        h, n = hashlib.sha256(), 0
        async for chunk in stream:
            h.update(chunk)
            n += len(chunk)
        stream.write(h.hexdigest().encode())
        stream.close()
        await stream.drain()
        received.set_result(n)

    sub = server.on_connection(sink)
    conn = await client.dial(server.listen_addrs[0])
    stream = await conn.open_stream("bulk")
    sent = hashlib.sha256()
    for _ in range(64):
        block = os.urandom(MIB)
        sent.update(block)
        stream.write(block)
        await stream.drain()  # backpressure: at most one block queued
    stream.close()
    await stream.drain()
    assert (await stream.read()).decode() == sent.hexdigest()
    assert await asyncio.wait_for(received, 60) == 64 * MIB
    sub.cancel()


async def test_cancelled_read_does_not_lose_or_hang(
    server: snap2p.Peer, client: snap2p.Peer
) -> None:
    conn = await client.dial(server.listen_addrs[0])
    inbound = await asyncio.wait_for(server.accept(), 10)
    stream = await conn.open_stream("slow")
    stream.write(b"hi")
    await stream.drain()
    remote = await asyncio.wait_for(inbound.accept_stream(), 10)
    assert await remote.read(2) == b"hi"

    # 1. asyncio.wait_for timeout on a read with nothing to read.
    for _ in range(20):
        try:
            await asyncio.wait_for(remote.read(100), 0.01)
            raise AssertionError("read returned without data")
        except asyncio.TimeoutError:
            pass
    # 2. task.cancel() of a pending read.
    task = asyncio.ensure_future(remote.read(100))
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        await task
        raise AssertionError("cancel was ignored")
    except asyncio.CancelledError:
        pass
    # 3. Reads racing data arrival and cancellation: every byte still arrives, in order.
    payload = bytes(range(256)) * 64
    got = bytearray()

    async def writer() -> None:
        for i in range(0, len(payload), 1000):
            stream.write(payload[i : i + 1000])
            await stream.drain()
            await asyncio.sleep(0)
        stream.close()
        await stream.drain()

    wtask = asyncio.ensure_future(writer())
    while True:
        try:
            chunk = await asyncio.wait_for(remote.read(777), 0.001)
        except asyncio.TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    await wtask
    assert bytes(got) == payload
    # The stream still works afterwards, in the other direction too.
    remote.write(b"still here")
    remote.close()
    assert await asyncio.wait_for(stream.read(), 10) == b"still here"


async def test_cancelled_accept_does_not_hang(server: snap2p.Peer, client: snap2p.Peer) -> None:
    for _ in range(10):
        try:
            await asyncio.wait_for(server.accept(), 0.01)
        except asyncio.TimeoutError:
            pass
    await client.dial(server.listen_addrs[0])
    conn = await asyncio.wait_for(server.accept(), 10)
    assert conn is not None and conn.remote_principal == client.principal


async def test_many_concurrent_streams(server: snap2p.Peer, client: snap2p.Peer) -> None:
    async def echo(stream: snap2p.Stream) -> None:
        data = await stream.read()
        stream.write(data[::-1])
        stream.close()

    async def serve(conn: snap2p.Connection) -> None:
        conn_sub = conn.on_stream(echo)
        await conn.wait_closed()
        conn_sub.cancel()

    sub = server.on_connection(serve)
    conn = await client.dial(server.listen_addrs[0])

    async def one(i: int) -> None:
        s = await conn.open_stream(f"n{i}")
        msg = os.urandom(1000 + i)
        s.write(msg)
        s.close()
        assert await s.read() == msg[::-1]

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)
    sub.cancel()


async def test_queued_writes_send_what_they_were_given(
    server: snap2p.Peer,
    client: snap2p.Peer,
    digest_to_end: Callable[[snap2p.Stream], Awaitable[tuple[int, str]]],
) -> None:
    conn = await client.dial(server.listen_addrs[0])
    inbound = await asyncio.wait_for(server.accept(), 10)
    stream = await conn.open_stream("queued")
    # Nobody reads yet and drain() is not awaited: past the peer's window and the core's
    # send buffer, these writes wait in the stream's queue (bytes held by reference,
    # mutable buffers copied at write()).
    expect = hashlib.sha256()
    buf = bytearray(64 * 1024)
    for i in range(40):  # 3.75 MiB in all
        buf[:] = bytes([i]) * len(buf)
        stream.write(buf)
        expect.update(bytes(buf))
        buf[0] ^= 0xFF  # changing the buffer afterwards changes nothing sent
        block = os.urandom(32 * 1024)
        stream.write(block)
        expect.update(block)
        del block  # the queue keeps its own reference
    stream.close()
    remote = await asyncio.wait_for(inbound.accept_stream(), 10)
    n, digest = await asyncio.wait_for(digest_to_end(remote), 30)
    await asyncio.wait_for(stream.drain(), 10)
    assert n == 40 * 96 * 1024
    assert digest == expect.hexdigest()
