"""asyncio glue the Rust extension calls into.

Reads are split in two so that cancelling them never loses data: ``Stream._fill`` (a Rust
future) moves a chunk from the session into the stream's stash, then ``Stream._take``
hands it over here, on the event loop's thread, where no cancellation can come between.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

CHUNK = 64 * 1024
_RESOURCE_EXHAUSTED = 16

# Tasks of async callbacks, kept referenced until done (asyncio holds only weak ones).
_tasks: set[asyncio.Future[Any]] = set()


async def _read_some(stream: Any, n: int) -> bytes:
    chunk = stream._take(n)
    while chunk is None:
        await stream._fill(n)
        chunk = stream._take(n)
    return chunk


async def read(stream: Any, n: int = -1) -> bytes:
    if n == 0:
        return b""
    if n > 0:
        return await _read_some(stream, n)
    parts = []
    while True:
        chunk = await _read_some(stream, CHUNK)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


async def anext_chunk(stream: Any) -> bytes:
    chunk = await _read_some(stream, CHUNK)
    if not chunk:
        raise StopAsyncIteration
    return chunk


async def accept(peer: Any) -> Any:
    """``Peer.accept``: the same split as reads (``_fill_inbound`` stashes a connection in
    Rust, ``_take_inbound`` hands it over here), so a cancelled accept loses nothing."""
    while True:
        conn = peer._take_inbound()
        if conn is not None:
            return conn
        if not await peer._fill_inbound():
            return peer._take_inbound()


async def anext_connection(peer: Any) -> Any:
    conn = await accept(peer)
    if conn is None:
        raise StopAsyncIteration
    return conn


async def anext_event(events: Any) -> Any:
    """``EventSubscription.__anext__``: the same split as reads (``_fill`` stashes an event in
    Rust, ``_take`` hands it over here), so a cancelled wait loses no event."""
    while True:
        ev = events._take()
        if ev is not None:
            return ev
        if not await events._fill():
            ev = events._take()
            if ev is None:
                raise StopAsyncIteration
            return ev


def ready() -> asyncio.Future[None]:
    """An already-completed awaitable (``Stream.drain`` with room in the write buffer)."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


def dispatch(cancelled: Any, callback: Callable[[Any], Any], arg: Any) -> None:
    """Runs one subscription callback on the loop (scheduled by call_soon_threadsafe)."""
    if cancelled:
        # Taken by the core just before cancel() returned: no callback may start now, and
        # nobody else will see this item, so refuse it at once instead of leaving the
        # peer waiting (a dropped stream is reset by the core; a connection is closed here
        # the way a full accept backlog closes one).
        close = getattr(arg, "close", None)
        if close is not None and hasattr(arg, "remote_principal"):
            close(_RESOURCE_EXHAUSTED, "the subscription was cancelled")
        return
    result = callback(arg)
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
