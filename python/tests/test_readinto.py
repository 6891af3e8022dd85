"""`Stream.readinto(buf)`: reads into the caller's buffer, across the frames the bytes came
in; the end, errors, cancellation and bad buffers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

import snap2p

MIB = 1 << 20
# The most one frame carries (PROTOCOL.md): a read that returns more spanned frames.
FRAME = 65_502


@contextlib.asynccontextmanager
async def _pair() -> AsyncIterator[tuple[snap2p.Stream, snap2p.Stream]]:
    """Two peers on loopback and one stream between them (dialer side, listener side),
    its first byte through; closed on the way out."""
    server = await snap2p.Peer.create()
    await server.listen("127.0.0.1:0")
    client = await snap2p.Peer.create()
    try:
        accepted = asyncio.ensure_future(server.accept())
        conn = await client.dial(server.listen_addrs[0])
        inbound = await asyncio.wait_for(accepted, 10)
        stream = await conn.open_stream("readinto")
        stream.write(b"x")
        await stream.drain()
        remote = await asyncio.wait_for(inbound.accept_stream(), 10)
        one = bytearray(1)
        assert await remote.readinto(one) == 1 and one == b"x"
        yield stream, remote
    finally:
        await client.close()
        await server.close()


async def test_readinto_takes_what_many_frames_brought_then_the_end() -> None:
    async with _pair() as (stream, remote):
        data = os.urandom(8 * MIB)
        buf = bytearray(MIB)

        # 512 KiB sent, and given time to arrive: one read takes all of it, many frames.
        stream.write(data[: 512 * 1024])
        await stream.drain()
        await asyncio.sleep(0.3)
        first = await asyncio.wait_for(remote.readinto(buf), 10)
        assert first > FRAME, first
        got, h = first, hashlib.sha256(buf[:first])

        async def send_rest() -> None:
            for i in range(512 * 1024, len(data), MIB):
                stream.write(data[i : i + MIB])
                await stream.drain()
            stream.close()
            await stream.drain()

        sender = asyncio.ensure_future(send_rest())
        view = memoryview(buf)
        while True:
            n = await asyncio.wait_for(remote.readinto(view), 10)
            if n == 0:
                break
            h.update(view[:n])
            got += n
        await sender
        assert got == len(data)
        assert h.digest() == hashlib.sha256(data).digest()
        # The end stays the end.
        assert await remote.readinto(buf) == 0
        # Half-closed: the reader still writes back.
        remote.write(got.to_bytes(8, "big"))
        remote.close()
        await remote.drain()
        assert int.from_bytes(await asyncio.wait_for(stream.read(), 10), "big") == got


async def test_readinto_a_small_slice_keeps_order_and_leaves_the_rest() -> None:
    async with _pair() as (stream, remote):
        stream.write(bytes(range(100)))
        stream.close()
        await stream.drain()
        buf = bytearray(b"#" * 20)
        window = memoryview(buf)[5:12]  # 7 bytes in the middle
        out = b""
        while n := await asyncio.wait_for(remote.readinto(window), 10):
            out += bytes(window[:n])
        assert out == bytes(range(100))
        assert buf[:5] == b"#####" and buf[12:] == b"########"


async def test_readinto_after_read_continues_where_read_stopped() -> None:
    async with _pair() as (stream, remote):
        stream.write(b"abcdefghij")
        stream.close()
        await stream.drain()
        assert await asyncio.wait_for(remote.read(3), 10) == b"abc"
        buf = bytearray(64)
        n = await asyncio.wait_for(remote.readinto(buf), 10)
        rest = bytes(buf[:n])
        while n := await asyncio.wait_for(remote.readinto(buf), 10):
            rest += bytes(buf[:n])
        assert rest == b"defghij"


async def test_readinto_refuses_buffers_it_cannot_write() -> None:
    async with _pair() as (_stream, remote):
        for bad in (b"immutable", bytearray(), memoryview(bytearray(8))[::2], 5, "text"):
            with pytest.raises(snap2p.Snap2pError) as e:
                await remote.readinto(bad)
            assert e.value.code == 25, bad


async def test_cancelled_readinto_loses_nothing() -> None:
    async with _pair() as (stream, remote):
        buf = bytearray(16)
        for _ in range(10):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(remote.readinto(buf), 0.01)
        stream.write(b"after")
        await stream.drain()
        n = await asyncio.wait_for(remote.readinto(buf), 10)
        assert bytes(buf[:n]) == b"after"
        assert remote._waits()[0] == 0


async def test_readinto_raises_when_the_stream_is_reset_while_waiting() -> None:
    async with _pair() as (stream, remote):
        reading = asyncio.ensure_future(remote.readinto(bytearray(100)))
        await asyncio.sleep(0.1)
        stream.reset(20)
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(reading, 10)
        assert e.value.code == 20
