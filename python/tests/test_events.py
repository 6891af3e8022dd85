"""Events and counters (docs/EVENTS.md) through the Python package, with real peers over
loopback: what the core reports reaches Python field for field."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time

import pytest

import snap2p
from snap2p import ErrorCode


async def next_of(
    events: snap2p.EventSubscription, kind: str, timeout: float = 10
) -> snap2p.PeerEvent:
    """The first event of `kind` (others skipped), within `timeout` seconds."""

    async def find() -> snap2p.PeerEvent:
        async for ev in events:
            if ev.kind == kind:
                return ev
        raise AssertionError(f"the subscription ended before a {kind} event")

    return await asyncio.wait_for(find(), timeout)


async def echo_1mib(conn: snap2p.Connection) -> bytes:
    data = os.urandom(1 << 20)
    stream = await conn.open_stream("stats")
    stream.write(data)
    stream.close()
    await stream.drain()
    assert hashlib.sha256(await stream.read()).digest() == hashlib.sha256(data).digest()
    return data


async def test_wrong_invite_is_handshake_failed_with_code_5_on_the_listener() -> None:
    async with await snap2p.Peer.create(visibility="stealth", allowlist_gate=False) as server:
        addr = await server.listen("127.0.0.1:0")
        async with server.events() as events, await snap2p.Peer.create() as client:
            with pytest.raises(snap2p.Snap2pError) as e:
                await client.dial(addr, invite="ab" * 16)
            assert e.value.code == ErrorCode.INVITE_INVALID
            ev = await next_of(events, "handshake_failed")
        assert events.closed
        assert ev.code == ErrorCode.INVITE_INVALID == 5
        assert snap2p.error_name(ev.code) == "ERR_INVITE_INVALID"
        assert ev.direction == "inbound"
        assert ev.transport == "tcp"
        assert ev.remote_addr is not None and ev.remote_addr.startswith("127.0.0.1:")
        assert isinstance(ev.reason, str)
        assert ev.duration is not None and ev.duration >= 0
        assert abs(time.time() - ev.at) < 60
        # Fields of other kinds are None.
        assert ev.connection is None and ev.bytes_sent is None and ev.missed is None
        assert "handshake_failed" in repr(ev)
        assert server.stats().handshakes_failed == {ErrorCode.INVITE_INVALID: 1}


async def test_session_events_carry_conn_id_and_stats_grow(
    server: snap2p.Peer, client: snap2p.Peer, echo_server
) -> None:
    sub = await echo_server(server)
    addr = server.listen_addrs[0]
    server_events, client_events = server.events(), client.events()
    before = client.stats()
    assert (before.sessions_open, before.sessions_outbound, before.bytes_sent) == (0, 0, 0)

    conn = await client.dial(addr)
    assert len(conn.id) == 16 and conn.session_id.hex().startswith(conn.id)
    up = await next_of(client_events, "session_established")
    assert up.connection == conn.id
    assert up.direction == "outbound"
    assert up.remote_principal == server.principal
    assert up.remote_addr == addr
    assert up.duration is not None and up.duration > 0
    assert up.hs2 is True  # the default handshake
    assert "hs2=True" in repr(up)
    there = await next_of(server_events, "session_established")
    assert there.hs2 is True
    assert there.connection == conn.id  # the same id at both ends
    assert there.direction == "inbound"
    assert there.remote_principal == client.principal

    s0 = conn.stats()
    assert s0.transport == "tcp" and s0.remote_addr == addr
    assert s0.handshake is not None and s0.age >= s0.handshake > 0
    data = await echo_1mib(conn)
    s1 = conn.stats()
    assert s1.bytes_sent >= s0.bytes_sent + len(data)
    assert s1.bytes_received >= s0.bytes_received + len(data)
    assert s1.frames_sent > 0
    opened = await next_of(server_events, "stream_opened")
    while opened.label != "stats":  # the listener also opens its own px-1 stream
        opened = await next_of(server_events, "stream_opened")
    assert (opened.connection, opened.direction, opened.label) == (conn.id, "inbound", "stats")
    ps = client.stats()
    assert (ps.sessions_open, ps.sessions_outbound) == (1, 1)
    assert ps.bytes_sent >= s1.bytes_sent
    assert server.stats().sessions_inbound == 1

    conn.close(0, "done")
    down = await next_of(client_events, "session_closed")
    assert down.connection == conn.id
    assert down.code == 0
    assert down.bytes_sent is not None and down.bytes_sent >= len(data)
    assert down.bytes_received is not None and down.bytes_received >= len(data)
    assert (await next_of(server_events, "session_closed")).connection == conn.id
    # Ended sessions' bytes stay in the peer's totals.
    assert client.stats().bytes_sent >= s1.bytes_sent
    assert client.stats().sessions_open == 0
    server_events.close()
    client_events.close()
    sub.cancel()


async def test_close_ends_iteration_and_peer_close_ends_it_too() -> None:
    peer = await snap2p.Peer.create()
    events = peer.events()
    waiting = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0.05)
    events.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 5)
    assert events.closed
    assert [ev async for ev in events] == []

    # A cancelled wait loses nothing and leaves the subscription usable.
    server = await snap2p.Peer.create()
    addr = await server.listen("127.0.0.1:0")
    live = server.events()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(live.__anext__(), 0.1)
    await peer.dial(addr)
    assert (await next_of(live, "session_established")).remote_principal == peer.principal

    # Closing the peer ends an iteration still waiting, after the events queued by then.
    kinds = asyncio.ensure_future(_kinds(live))
    await server.close()
    assert set(await asyncio.wait_for(kinds, 5)) <= {"session_closed", "stream_opened"}
    # A subscription made after the close ends at once (with at most the close's own
    # session_closed, which may be reported just after the close returned).
    assert set(await asyncio.wait_for(_kinds(server.events()), 5)) <= {"session_closed"}
    await peer.close()


async def _kinds(events: snap2p.EventSubscription) -> list[str]:
    return [ev.kind async for ev in events]


async def test_rekey_limits_are_peer_options() -> None:
    server = await snap2p.Peer.create(rekey_after_frames=3, rekey_after_bytes=4096)
    client = await snap2p.Peer.create(rekey_after_frames=5, rekey_interval=0.05)
    async with server, client:
        addr = await server.listen("127.0.0.1:0")

        async def echo(conn: snap2p.Connection) -> None:
            stream = await conn.accept_stream()
            async for chunk in stream:
                stream.write(chunk)
            stream.close()
            await stream.drain()

        with server.on_connection(echo):
            await echo_1mib(await client.dial(addr))
    for bad in ({"rekey_interval": -1.0}, {"rekey_after_bytes": -1}):
        with pytest.raises((snap2p.Snap2pError, OverflowError)):
            await snap2p.Peer.create(**bad)


def test_a_process_with_a_subscription_exits() -> None:
    """Leaving ``async for`` over events without closing anything else: the interpreter
    still exits promptly (no thread or task keeps it)."""
    script = """
import asyncio, snap2p
async def main():
    server = await snap2p.Peer.create()
    addr = await server.listen("127.0.0.1:0")
    client = await snap2p.Peer.create()
    events = client.events()
    dial = asyncio.ensure_future(client.dial(addr))
    async for ev in events:
        print(ev.kind, flush=True)
        if ev.kind == "session_established":
            break
    await dial
asyncio.run(main())
"""
    started = time.monotonic()
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["session_established"]
    assert time.monotonic() - started < 20


async def test_hs2_on_by_default_off_speaks_v1_and_a_dialer_falls_back(echo_server) -> None:
    """hs2 (PROTOCOL.md §5.8) through the package: ``hs2=False`` reaches the core, and
    ``ConnectionStats.hs2`` says which handshake each side ran."""

    def failed(peer: snap2p.Peer) -> int:
        return sum(peer.stats().handshakes_failed.values())

    both = await snap2p.Peer.create()
    v1 = await snap2p.Peer.create(hs2=False)
    client = await snap2p.Peer.create()
    v1_client = await snap2p.Peer.create(hs2=False)
    try:
        seen: dict[str, asyncio.Queue[snap2p.Connection]] = {}
        subs = []  # held: a dropped Subscription stops its handler
        for name, peer in (("both", both), ("v1", v1)):
            await peer.listen("127.0.0.1:0")
            seen[name] = asyncio.Queue()
            subs.append(await echo_server(peer, seen[name]))

        async def pair(dialer: snap2p.Peer, name: str, peer: snap2p.Peer) -> list[bool]:
            conn = await dialer.dial(peer.listen_addrs[0])
            there = await asyncio.wait_for(seen[name].get(), 10)
            return [conn.stats().hs2, there.stats().hs2]

        assert await pair(client, "both", both) == [True, True]
        # A dialer with hs2=False is answered in v1, and nothing failed.
        assert await pair(v1_client, "both", both) == [False, False]
        assert failed(both) == 0
        # A listener with hs2=False closes on the offer; the dialer comes again with v1 at
        # once and dials that locator with v1 from then on: one failed handshake each side.
        assert await pair(client, "v1", v1) == [False, False]
        assert await pair(client, "v1", v1) == [False, False]
        assert (failed(client), failed(v1)) == (1, 1)
        # Each peer counts its sessions that ran hs2: only the first pair's.
        peers = (client, v1_client, both, v1)
        assert [p.stats().sessions_hs2 for p in peers] == [1, 0, 1, 0]
        assert "hs2=False" in repr((await client.dial(v1.listen_addrs[0])).stats())
    finally:
        for p in (client, v1_client, both, v1):
            await p.close()
