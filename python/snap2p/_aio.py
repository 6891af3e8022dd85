"""asyncio glue the Rust extension calls into.

Reads are split in two so that cancelling them never loses data: ``Stream._take`` (and
``_take_into``) takes bytes from the session on the event loop's thread, where no
cancellation can come between, and ``Stream._fill`` only waits until the session has
something for the stream; a cancelled wait has taken nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import inspect
import weakref
from collections.abc import Iterator
from typing import Any, Callable

from ._errors import Snap2pError
from ._snap2p import LoopWake

CHUNK = 64 * 1024
_RESOURCE_EXHAUSTED = 16
_INVALID_ARGUMENT = 25

# Tasks of async callbacks, kept referenced until done (asyncio holds only weak ones).
_tasks: set[asyncio.Future[Any]] = set()


async def _read_some(stream: Any, n: int) -> bytes:
    chunk = stream._take(n)
    while chunk is None:
        await stream._fill()
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


def _pin(buf: Any) -> Any:
    """A ``ctypes`` array over ``buf``'s memory, holding it exported while it lives (a
    bytearray cannot be resized meanwhile): what ``Stream._take_into`` copies into."""
    try:
        view = memoryview(buf)
    except TypeError:
        view = None
    if view is None or view.readonly or not view.c_contiguous:
        raise Snap2pError(
            "readinto() takes a writable, contiguous bytes-like object (bytearray, memoryview)",
            _INVALID_ARGUMENT,
        )
    if view.nbytes == 0:
        raise Snap2pError("readinto() needs a buffer of at least 1 byte", _INVALID_ARGUMENT)
    return (ctypes.c_char * view.nbytes).from_buffer(view)


async def readinto(stream: Any, buf: Any) -> int:
    pinned = _pin(buf)
    n = stream._take_into(pinned)
    while n is None:
        await stream._fill()
        n = stream._take_into(pinned)
    return n


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


class _Ready:
    """An awaitable that is already complete (``Stream.drain`` with room in the write
    buffer): one shared object, no loop or future made per call, since a writer awaits
    ``drain()`` after every ``write()``."""

    __slots__ = ()

    def __await__(self) -> Iterator[None]:
        return iter(())


READY = _Ready()


# Each event loop's LoopWake, made at its first wait (weakly keyed: it goes with its loop).
_wakes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWake] = weakref.WeakKeyDictionary()


def waiter() -> tuple[LoopWake, asyncio.Future[None]]:
    """A future of the running loop, and the ``LoopWake`` a core thread completes it
    through (``Stream.drain``): the core only queues it and pokes the loop, and ``settle``
    completes it here, on the loop's thread."""
    loop = asyncio.get_running_loop()
    wake = _wakes.get(loop)
    if wake is None:
        wake = _wakes[loop] = _new_wake(loop)
    return wake, loop.create_future()


def _new_wake(loop: asyncio.AbstractEventLoop) -> LoopWake:
    try:
        wake = LoopWake(True)
        loop.add_reader(wake.fileno(), settle, wake)
        return wake
    except NotImplementedError:
        # No socket pair on this platform, or a loop that cannot watch a descriptor
        # (Windows' proactor): the core pokes through call_soon_threadsafe instead.
        pass
    wake = LoopWake(False)
    wake._set_poke(functools.partial(_poke, weakref.ref(loop), weakref.ref(wake)))
    return wake


def _poke(loop_ref: Any, wake_ref: Any) -> None:
    loop = loop_ref()
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(_settle_ref, wake_ref)


def _settle_ref(wake_ref: Any) -> None:
    wake = wake_ref()
    if wake is not None:
        settle(wake)


def settle(wake: LoopWake) -> None:
    """Completes what the core finished waiting for (a poke of ``wake``); a future whose
    wait was cancelled meanwhile is left as it is."""
    for fut, exc in wake._take():
        if fut.done():
            continue
        if exc is None:
            fut.set_result(None)
        else:
            fut.set_exception(exc)


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
