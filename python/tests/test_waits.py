"""Waits of `Stream.drain()` (for send room) and `Stream.read()` (for bytes), which a core
thread completes on the loop's own thread (`LoopWake`): cancellation, errors, cancelled
waits not piling up, loops that cannot watch a descriptor, a loop's wake going with it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import snap2p
from snap2p import _aio

BLOCK = bytes(range(256)) * 256  # 64 KiB
# Far more than the send buffer and the peer's receive window: writing it to a peer that
# does not read makes drain() wait.
TOTAL_BLOCKS = 256  # 16 MiB


async def _another_pair(
    client: snap2p.Peer, server: snap2p.Peer
) -> tuple[snap2p.Stream, snap2p.Stream]:
    """A connection between the two peers and one stream on it (client side, server
    side), its first byte through."""
    accepted = asyncio.ensure_future(server.accept())
    conn = await client.dial(server.listen_addrs[0])
    inbound = await asyncio.wait_for(accepted, 10)
    stream = await conn.open_stream("waits")
    stream.write(b"x")
    await stream.drain()
    remote = await asyncio.wait_for(inbound.accept_stream(), 10)
    assert await remote.read(1) == b"x"
    return stream, remote


@contextlib.asynccontextmanager
async def _pair() -> AsyncIterator[tuple[snap2p.Peer, snap2p.Peer, snap2p.Stream, snap2p.Stream]]:
    """Two peers on loopback and one stream between them (client side, server side),
    closed on the way out."""
    server = await snap2p.Peer.create()
    await server.listen("127.0.0.1:0")
    client = await snap2p.Peer.create()
    try:
        yield (server, client, *await _another_pair(client, server))
    finally:
        await client.close()
        await server.close()


async def _fill_until_waiting(stream: snap2p.Stream) -> tuple[int, asyncio.Future[None]]:
    """Writes until drain() has to wait (the peer is not reading); returns the blocks
    written and that pending drain()."""
    for n in range(1, TOTAL_BLOCKS + 1):
        stream.write(BLOCK)
        waiting = asyncio.ensure_future(stream.drain())
        await asyncio.sleep(0)
        if not waiting.done():
            await asyncio.sleep(0.2)
            if not waiting.done():
                return n, waiting
        waiting.result()
    pytest.fail("drain() never waited although the peer read nothing")


async def _read_exactly(stream: snap2p.Stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        chunk = await asyncio.wait_for(stream.read(min(n - got, 1 << 20)), 10)
        assert chunk, "end of stream before all the data"
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


async def _waits_then_resumes() -> None:
    async with _pair() as (server, client, stream, remote):
        n, waiting = await _fill_until_waiting(stream)
        # The peer reads: room comes back, the wait completes, and nothing was lost.
        reader = asyncio.ensure_future(_read_exactly(remote, n * len(BLOCK)))
        await asyncio.wait_for(waiting, 10)
        got = await reader
        assert hashlib.sha256(got).digest() == hashlib.sha256(BLOCK * n).digest()


async def test_drain_waits_for_room_and_resumes() -> None:
    await _waits_then_resumes()


async def test_cancelled_drain_loses_nothing() -> None:
    async with _pair() as (server, client, stream, remote):
        n, waiting = await _fill_until_waiting(stream)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # More waits, each cancelled by a timeout, while the core still holds the bytes.
        for _ in range(3):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.drain(), 0.05)
        reader = asyncio.ensure_future(_read_exactly(remote, (n + 1) * len(BLOCK)))
        # The core completes the cancelled waits too: settling them must leave them be.
        stream.write(BLOCK)
        await asyncio.wait_for(stream.drain(), 10)
        got = await reader
        assert got == BLOCK * (n + 1)


async def test_drain_raises_when_the_stream_is_reset_while_waiting() -> None:
    async with _pair() as (server, client, stream, remote):
        _, waiting = await _fill_until_waiting(stream)
        remote.reset(20)  # ERR_STREAM_REFUSED
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(waiting, 10)
        assert e.value.code == 20
        # And so does every later drain().
        with pytest.raises(snap2p.Snap2pError):
            await asyncio.wait_for(stream.drain(), 10)


async def test_waits_on_several_streams_at_once() -> None:
    """Three waits pending together on one loop (one wake) all complete, in any order."""
    async with _pair() as (server, client, stream, remote):
        pairs = [(stream, remote)] + [await _another_pair(client, server) for _ in range(2)]
        fills = [await _fill_until_waiting(s) for s, _ in pairs]
        assert not any(w.done() for _, w in fills)
        # Room comes back on the last stream first.
        readers = [
            asyncio.ensure_future(_read_exactly(r, n * len(BLOCK)))
            for (_, r), (n, _) in reversed(list(zip(pairs, fills)))
        ]
        await asyncio.wait_for(asyncio.gather(*(w for _, w in fills)), 10)
        got = await asyncio.gather(*readers)
        assert got == [BLOCK * n for n, _ in reversed(fills)]


async def _read_waits_for_data() -> None:
    async with _pair() as (server, client, stream, remote):
        reading = asyncio.ensure_future(remote.read(100))
        await asyncio.sleep(0.2)
        assert not reading.done()
        stream.write(b"late")
        await stream.drain()
        assert await asyncio.wait_for(reading, 10) == b"late"


async def test_read_waits_for_data() -> None:
    await _read_waits_for_data()


async def test_cancelled_waits_do_not_pile_up() -> None:
    """A read or drain awaited with a timeout, over and over, holds one wait at most."""
    async with _pair() as (server, client, stream, remote):
        for _ in range(50):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(remote.read(100), 0.001)
        assert remote._waits() == (1, 0)
        n, waiting = await _fill_until_waiting(stream)
        waiting.cancel()
        for _ in range(50):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.drain(), 0.001)
        assert stream._waits() == (0, 1)
        # Both still work: the reads get every byte, in order, and the drain completes.
        stream.write(b"end")
        stream.close()
        got = await asyncio.wait_for(remote.read(), 10)
        assert got == BLOCK * n + b"end"
        await asyncio.wait_for(stream.drain(), 10)
        assert remote._waits() == (0, 0)
        # drain() returns once everything is handed over; the pump that held the last
        # cancelled wait may still be waiting for the session's room (seen under load):
        # it drops the wait when it ends.
        for _ in range(500):
            if stream._waits() == (0, 0):
                break
            await asyncio.sleep(0.01)
        assert stream._waits() == (0, 0)


async def test_read_raises_when_the_stream_is_reset_while_waiting() -> None:
    async with _pair() as (server, client, stream, remote):
        reading = asyncio.ensure_future(remote.read(100))
        await asyncio.sleep(0.1)
        stream.reset(20)
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(reading, 10)
        assert e.value.code == 20


class _NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop that cannot watch descriptors, as Windows' proactor loop."""

    def add_reader(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError


def _run_on(loop: asyncio.AbstractEventLoop, main: Callable[[], Awaitable[None]]) -> None:
    try:
        loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_waits_on_a_loop_that_cannot_watch_descriptors() -> None:
    """Waits complete through call_soon_threadsafe there."""
    loop = _NoReaderLoop()

    async def main() -> None:
        await _waits_then_resumes()
        await _read_waits_for_data()
        assert _aio._wakes[asyncio.get_running_loop()].fileno() == -1

    _run_on(loop, main)


def _socket_open(inode: int) -> bool:
    """Whether this process holds a descriptor of the socket with ``inode``."""
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}") == f"socket:[{inode}]":
                return True
    return False


def _gone(ref: weakref.ref[Any]) -> bool:
    """Whether ``ref``'s object is collected within 5 s. A closed loop can outlive its
    close by a moment: a finished future of one of its calls (``close()``'s) is held by a
    core task until that task ends, and pyo3 releases a reference dropped on a core thread
    the next time the extension is entered (``error_name`` below)."""
    for _ in range(500):
        gc.collect()
        snap2p.error_name(0)
        if ref() is None:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads descriptors in /proc")
def test_a_loops_wake_goes_with_it() -> None:
    """No loop is kept alive by its wake, and its socket pair is closed with it. (Its own
    socket, not a count of descriptors: the sessions' sockets close on core threads, after
    the loop, and counts moved with them under load.)"""
    loops, wakes, inodes = [], [], []
    for _ in range(3):
        loop = asyncio.new_event_loop()

        async def main() -> None:
            await _waits_then_resumes()
            wake = _aio._wakes[asyncio.get_running_loop()]
            wakes.append(weakref.ref(wake))
            inodes.append(os.fstat(wake.fileno()).st_ino)
            assert _socket_open(inodes[-1])

        _run_on(loop, main)
        loops.append(weakref.ref(loop))
        del loop
        assert _gone(loops[-1]), "the closed loop is still referenced"
        assert wakes[-1]() is None, "the loop's wake outlived it"
        assert not _socket_open(inodes[-1]), "the wake's socket outlived the loop"
    assert len(_aio._wakes) == 0
