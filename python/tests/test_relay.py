"""Relays and NAT traversal (issue 28, docs/PROTOCOL.md §32) over loopback: a serving relay
peer, B reserved on it, A reaching B through it and then directly by hole punching;
admission and refusals with their documented codes."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest

import snap2p
from snap2p import ErrorCode


def _address(principal: str) -> str:
    return principal.removeprefix("stacks:")


async def _echo(conn: snap2p.Connection, data: bytes) -> bytes:
    stream = await conn.open_stream("echo")
    stream.write(data)
    stream.close()
    await stream.drain()
    return b"".join([c async for c in stream])


async def _relay(relay: Any = True) -> tuple[snap2p.Peer, str]:
    peer = await snap2p.Peer.create(relay=relay)
    return peer, await peer.listen("127.0.0.1:0")


async def test_reserved_peer_is_dialed_through_the_relay_then_hole_punched(echo_server) -> None:
    relay, addr = await _relay({})
    b = await snap2p.Peer.create()
    a = await snap2p.Peer.create()
    async with relay, b, a:
        seen: asyncio.Queue[snap2p.Connection] = asyncio.Queue()
        serving = await echo_server(b, seen)  # noqa: F841 (dropping it would stop it)
        await b.listen(f"relay://{addr}")
        b_loc = f"relay://{addr}/{_address(b.principal)}"
        assert b_loc in b.listen_locators, b.listen_locators

        res = b.relay_reservations()
        assert len(res) == 1
        assert res[0].relay == f"relay://{addr}"
        assert res[0].active is True
        assert res[0].observed is not None
        assert re.fullmatch(r"127\.0\.0\.1:\d+", res[0].observed), res[0].observed
        assert relay.relay_stats().reservations == 1
        st = a.relay_stats()
        assert (
            st.reservations,
            st.circuits,
            st.circuits_total,
            st.spliced_total,
            st.bytes_forwarded,
        ) == (
            0,
            0,
            0,
            0,
            0,
        )
        assert a.relay_reservations() == []

        relayed = await a.dial(b_loc)
        assert relayed.remote_principal == b.principal
        assert relayed.stats().transport == "relay"
        b_relayed = await asyncio.wait_for(seen.get(), 10)
        assert b_relayed.remote_principal == a.principal
        assert b_relayed.stats().transport == "relay"

        data = os.urandom(256 * 1024)
        echoed = await _echo(relayed, data)
        assert len(echoed) == len(data)
        assert echoed == data, "the relayed stream changed the data"
        st = relay.relay_stats()
        assert st.circuits == 1
        assert st.circuits_total == 1
        assert st.spliced_total == 1, "spliced by default (PROTOCOL.md §32.3)"
        assert st.bytes_forwarded >= 2 * len(data), st
        assert st.refused == 0
        # The relay's own sessions are with A and B, not one between them.
        for c in relay.open_connections():
            assert c.remote_principal in (a.principal, b.principal)

        direct = await asyncio.wait_for(a.hole_punch(relayed), 30)
        assert direct.stats().transport == "punch"
        assert direct.remote_principal == b.principal
        assert direct.session_id != relayed.session_id
        assert not relayed.is_closed, "the relayed session stays open"
        b_direct = await asyncio.wait_for(seen.get(), 10)
        assert b_direct.stats().transport == "punch"
        assert b_direct.remote_principal == a.principal
        data2 = os.urandom(256 * 1024)
        assert await _echo(direct, data2) == data2, "the hole-punched stream changed the data"
        # The relayed session still carries data; the punch opened no new circuit.
        assert await _echo(relayed, b"still relayed") == b"still relayed"
        assert relay.relay_stats().circuits_total == 1


async def test_refusals_carry_their_documented_codes() -> None:
    ok = await snap2p.Peer.create()
    relay, addr = await _relay({"allowlist": [ok.principal]})
    other = await snap2p.Peer.create()
    plain = await snap2p.Peer.create()
    async with ok, relay, other, plain:
        await ok.listen(f"relay://{addr}")
        assert ok.relay_reservations()[0].active
        # Not on the relay's allowlist: ERR_NOT_ALLOWED (4).
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.listen(f"relay://{addr}")
        assert e.value.code == ErrorCode.NOT_ALLOWED, e.value
        assert relay.relay_stats().reservations == 1
        assert relay.relay_stats().refused >= 1

        # A principal with no reservation on the relay: ERR_STREAM_REFUSED (20).
        nobody = _address(snap2p.LocalWallet.generate().principal)
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.dial(f"relay://{addr}/{nobody}")
        assert e.value.code == ErrorCode.STREAM_REFUSED == 20, e.value
        # A relay locator without a principal is not dialable.
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.dial(f"relay://{addr}")
        assert e.value.code == ErrorCode.INVALID_ARGUMENT, e.value
        # A peer created without relay= does not serve: RESERVE is refused with 20.
        plain_addr = await plain.listen("127.0.0.1:0")
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.listen(f"relay://{plain_addr}")
        assert e.value.code == ErrorCode.STREAM_REFUSED, e.value
        # A direct session has no relayed one to punch through.
        tcp = await other.dial(plain_addr)
        assert tcp.stats().transport == "tcp"
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.hole_punch(tcp)
        assert e.value.code == ErrorCode.NOT_FOUND, e.value
        with pytest.raises(snap2p.Snap2pError) as e:
            await other.hole_punch("not a connection")  # type: ignore[arg-type]
        assert e.value.code == ErrorCode.INVALID_ARGUMENT


async def test_relay_limits_apply() -> None:
    relay, addr = await _relay(
        {
            "max_reservations": 1,
            "max_circuits": 4,
            "max_circuits_per_peer": 2,
            "circuit_max_bytes": 0,
            "circuit_max_duration": 30.5,
            "requests_per_min": 0,
        }
    )
    open_relay, open_addr = await _relay(True)
    first = await snap2p.Peer.create()
    second = await snap2p.Peer.create()
    async with relay, open_relay, first, second:
        await first.listen(f"relay://{addr}")
        with pytest.raises(snap2p.Snap2pError) as e:
            await second.listen(f"relay://{addr}")
        assert e.value.code == ErrorCode.RESOURCE_EXHAUSTED, e.value
        await second.listen(f"relay://{open_addr}")
        assert open_relay.relay_stats().reservations == 1
        assert relay.relay_stats().reservations == 1


@pytest.mark.parametrize(
    "bad",
    [
        "yes",
        1,
        [1],
        {"max_reservations": -1},
        {"max_circuits": 1.5},
        {"max_circuits_per_peer": "2"},
        {"max_circuits": True},
        {"requests_per_min": 2**32},
        {"circuit_max_bytes": -5},
        {"circuit_max_duration": 0},
        {"circuit_max_duration": float("inf")},
        {"allowlist": ["stacks:nope"]},
        {"allowlist": "stacks:SP000000000000000000002Q6VF78"},
        {"max_reservation": 1},
    ],
)
async def test_bad_relay_options_are_invalid_arguments(bad: object) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(relay=bad)  # type: ignore[arg-type]
    assert e.value.code == ErrorCode.INVALID_ARGUMENT, bad
