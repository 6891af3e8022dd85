"""``external_locators`` (issue 27): a node reachable at an address that is not its
listener's own (here a port forwarder, as a router's forwarded port or a reverse proxy
would be) advertises it first, and a stranger dialing it by principal through PX-1 arrives
through that address."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import snap2p
from snap2p import ErrorCode


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_stranger_dials_through_the_external_locator(echo_server) -> None:
    target_port: list[int] = []
    forwarded: list[int] = []
    tasks: set[asyncio.Task[None]] = set()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        forwarded.append(1)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port[0])
        for t in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            task = asyncio.ensure_future(t)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    fwd = await asyncio.start_server(forward, "127.0.0.1", 0)
    external = f"127.0.0.1:{fwd.sockets[0].getsockname()[1]}"
    hub = await snap2p.Peer.create()
    target = await snap2p.Peer.create(external_locators=[external])
    stranger = await snap2p.Peer.create()
    async with fwd, hub, target, stranger:
        hub_addr = await hub.listen("127.0.0.1:0")
        bound = await target.listen("127.0.0.1:0")
        target_port.append(int(bound.rsplit(":", 1)[1]))
        assert target.reachable_locators == [external, bound]
        serving = await echo_server(target)  # noqa: F841 (dropping it would stop it)
        await target.dial(hub_addr)
        await stranger.dial(hub_addr)
        for i in range(100):  # the hub learns the target's locators just after its AUTH_OK
            try:
                conn = await stranger.dial(target.principal)
                break
            except snap2p.Snap2pError:
                if i == 99:
                    raise
                await asyncio.sleep(0.02)
        assert conn.remote_principal == target.principal
        assert len(forwarded) == 1, "the dial did not go through the external locator"
        data = os.urandom(1 << 20)
        stream = await conn.open_stream("echo")
        stream.write(data)
        stream.close()
        await stream.drain()
        echoed = b"".join([c async for c in stream])
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
    for task in list(tasks):
        task.cancel()


@pytest.mark.parametrize("bad", ["01.2.3.4:9000", "wss://node.example.org", "ws://h:0/p"])
async def test_malformed_external_locator_is_refused(bad: str) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(external_locators=[bad])
    assert e.value.code == ErrorCode.INVALID_ARGUMENT


async def test_external_locators_are_written_canonically() -> None:
    async with await snap2p.Peer.create(
        external_locators=["wss://Node.Example.org:443/snap2p", "tcp://203.0.113.5:9000"]
    ) as peer:
        # Host lower-cased, the tcp:// form bare (PROTOCOL.md §14).
        assert peer.reachable_locators == ["wss://node.example.org:443/snap2p", "203.0.113.5:9000"]
