"""Python <-> Python over loopback: sessions, streams, iterators, callbacks, aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

import snap2p

# The `echo_server` fixture (conftest.py).
EchoServer = Callable[..., Awaitable[snap2p.Subscription]]


async def test_dial_authenticates_both_ends(server: snap2p.Peer, client: snap2p.Peer) -> None:
    addr = server.listen_addrs[0]
    accepted = asyncio.ensure_future(server.accept())
    conn = await client.dial(addr)
    inbound = await asyncio.wait_for(accepted, 10)
    assert conn.remote_principal == server.principal
    assert inbound.remote_principal == client.principal
    assert conn.session_id == inbound.session_id and len(conn.session_id) == 32
    assert conn.remote_alias is not None
    assert (conn.remote_alias.alias, conn.remote_alias.display_name) == ("server", "The Server")
    assert conn.remote_alias.principal == server.principal
    assert inbound.remote_alias is None  # the client published none
    assert server.principal.startswith("stacks:SP")


async def test_echo_stream_via_callbacks(
    server: snap2p.Peer, client: snap2p.Peer, echo_server: EchoServer
) -> None:
    sub = await echo_server(server)
    conn = await client.dial(server.listen_addrs[0])
    stream = await conn.open_stream("echo")
    assert stream.label == "echo"
    stream.write(b"hello ")
    stream.write(bytearray(b"world"))
    stream.write(memoryview(b"!"))
    stream.close()
    await stream.drain()
    assert await stream.read() == b"hello world!"
    assert await stream.read(10) == b""  # end of stream stays end of stream
    sub.cancel()
    assert sub.cancelled and not sub.active


async def test_async_iteration_of_connections_and_streams(
    server: snap2p.Peer, client: snap2p.Peer
) -> None:
    got: list[bytes] = []

    async def serve() -> None:
        async for conn in server.connections():
            async for stream in conn.streams():
                got.append(await stream.read())
                stream.write(b"ack")
                stream.close()
            return

    task = asyncio.ensure_future(serve())
    conn = await client.dial(server.listen_addrs[0])
    for i in range(3):
        s = await conn.open_stream(f"s{i}")
        s.write(f"message {i}".encode())
        s.close()
        assert await s.read() == b"ack"
    conn.close()
    await asyncio.wait_for(task, 10)
    assert got == [b"message 0", b"message 1", b"message 2"]


async def test_sync_callback_and_cancel_stops_delivery(
    server: snap2p.Peer, client: snap2p.Peer
) -> None:
    seen: list[str] = []
    arrived = asyncio.Event()

    def on_conn(conn: snap2p.Connection) -> None:
        seen.append(conn.remote_principal)
        arrived.set()

    with server.on_connection(on_conn) as sub:
        await client.dial(server.listen_addrs[0])
        await asyncio.wait_for(arrived.wait(), 10)
    assert seen == [client.principal]
    assert sub.cancelled
    # After cancel, connections queue for accept() instead of reaching the callback.
    other = await snap2p.Peer.create()
    try:
        await other.dial(server.listen_addrs[0])
        conn = await asyncio.wait_for(server.accept(), 10)
        assert conn is not None and conn.remote_principal == other.principal
        assert seen == [client.principal]
    finally:
        await other.close()


async def test_cancelled_accepts_lose_no_connection(server: snap2p.Peer) -> None:
    # accept() under a tiny timeout is cancelled again and again while connections
    # arrive; every connection must still come out of some later accept(). The dialers
    # pause between dials so that some accepts are certainly pending with nothing to
    # return (a loopback handshake can finish inside asyncio's 1 ms timer granularity, so
    # back-to-back dials alone did not always produce a cancel), and dial back to back
    # in between so that arrivals race with the cancels.
    dialers = [await snap2p.Peer.create() for _ in range(6)]
    addr = server.listen_addrs[0]

    async def dial_all() -> None:
        for i, d in enumerate(dialers):
            if i % 2 == 0:
                await asyncio.sleep(0.01)
            await d.dial(addr)

    dialing = asyncio.ensure_future(dial_all())
    got: list[str] = []
    cancelled = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    try:
        while len(got) < len(dialers) and loop.time() < deadline:
            try:
                conn = await asyncio.wait_for(server.accept(), 0.0005)
            except asyncio.TimeoutError:
                cancelled += 1
                continue
            assert conn is not None
            got.append(conn.remote_principal)
        await dialing
        assert sorted(got) == sorted(d.principal for d in dialers), f"after {cancelled} cancels"
        assert cancelled > 0
    finally:
        for d in dialers:
            await d.close()


async def test_close_ends_iterators_and_reports_reason(
    server: snap2p.Peer, client: snap2p.Peer
) -> None:
    conn = await client.dial(server.listen_addrs[0])
    inbound = await asyncio.wait_for(server.accept(), 10)
    streams = [s async for s in _until_closed(inbound)]
    assert streams == []
    assert inbound.is_closed
    code = await asyncio.wait_for(conn.wait_closed(), 10)
    assert code in (0, snap2p.ErrorCode.CONNECTION_CLOSED)


async def _until_closed(conn: snap2p.Connection):  # type: ignore[no-untyped-def]
    async def closer() -> None:
        await asyncio.sleep(0.1)
        conn.close(0, "bye")

    t = asyncio.ensure_future(closer())
    async for s in conn.streams():
        yield s
    await t


async def test_peer_close_ends_connections_iterator(client: snap2p.Peer) -> None:
    peer = await snap2p.Peer.create()
    await peer.listen(0)

    async def drain() -> int:
        n = 0
        async for _ in peer.connections():
            n += 1
        return n

    task = asyncio.ensure_future(drain())
    await asyncio.sleep(0.05)
    await peer.close()
    assert await asyncio.wait_for(task, 10) == 0
    assert peer.is_closed
    with pytest.raises(snap2p.Snap2pError) as e:
        await peer.listen("127.0.0.1:0")
    assert e.value.code == 12


async def test_set_alias_and_async_context_manager() -> None:
    async with await snap2p.Peer.create() as peer:
        card = await peer.set_alias("  Alice ", "Alice Liddell")
        assert card.alias == "alice" and card.display_name == "Alice Liddell"
        assert peer.alias is not None and peer.alias.alias == "alice"
        with pytest.raises(snap2p.Snap2pError) as e:
            await peer.set_alias("bad\nalias")
        assert e.value.code == 25 and e.value.name == "ERR_INVALID_ARGUMENT"
    assert peer.is_closed
