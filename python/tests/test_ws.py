"""WebSocket locators pass through the Python package to the core unchanged: a Python peer
listens on ``ws://`` beside TCP and another dials it, streams checked by SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import snap2p


async def test_ws_listen_and_dial(server: snap2p.Peer, client: snap2p.Peer) -> None:
    bound = await server.listen("ws://127.0.0.1:0/snap2p")
    # listen() returns the bound 'ip:port'; the locator is the listen locator with it.
    host, port = bound.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert bound in server.listen_addrs  # beside the fixture's TCP listener
    assert len(server.listen_addrs) == 2

    inbound: asyncio.Future[snap2p.Connection] = asyncio.get_running_loop().create_future()

    async def digest(conn: snap2p.Connection) -> None:
        if not inbound.done():
            inbound.set_result(conn)
        stream = await conn.accept_stream()
        h = hashlib.sha256()
        async for chunk in stream:
            h.update(chunk)
        stream.write(h.hexdigest().encode())
        stream.close()
        await stream.drain()

    sub = server.on_connection(digest)
    conn = await client.dial(f"ws://{bound}/snap2p")
    assert conn.remote_principal == server.principal
    assert (await asyncio.wait_for(inbound, 10)).remote_principal == client.principal
    stream = await conn.open_stream("ws")
    sent = hashlib.sha256()
    for _ in range(8):
        block = os.urandom(256 * 1024)
        sent.update(block)
        stream.write(block)
        await stream.drain()
    stream.close()
    await stream.drain()
    assert (await stream.read()).decode() == sent.hexdigest()
    sub.cancel()


async def test_ws_errors_carry_codes(server: snap2p.Peer, client: snap2p.Peer) -> None:
    bound = await server.listen("ws://127.0.0.1:0/snap2p")
    # Another path: the listener answers HTTP 404.
    with pytest.raises(snap2p.Snap2pError) as e:
        await client.dial(f"ws://{bound}/elsewhere")
    assert e.value.code == snap2p.ErrorCode.CONNECTION_CLOSED
    assert "404" in e.value.message
    # A transport the core does not have: refused locally, the transports named.
    with pytest.raises(snap2p.Snap2pError) as e:
        await client.dial("quic://127.0.0.1:4433")
    assert e.value.code == snap2p.ErrorCode.INVALID_ARGUMENT
    assert "wss" in e.value.message
