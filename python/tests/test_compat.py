"""The TypeScript wire profile (docs/PROTOCOL.md §12): Python talks ``compat="ts"`` to a Rust
echo peer listening in that profile (core/examples/echo_peer.rs --compat ts), and a standard
dialer is told which profile the listener speaks."""

from __future__ import annotations

import asyncio

import pytest

import snap2p


async def test_echo_with_rust_peer_in_ts_profile(rust_peer_factory) -> None:  # type: ignore[no-untyped-def]
    rust = rust_peer_factory("public", compat="ts")
    async with await snap2p.Peer.create(compat="ts") as peer:
        for i in range(3):
            conn = await peer.dial(rust.addr, expect=rust.principal)
            assert conn.remote_principal == rust.principal
            stream = await conn.open_stream("echo")
            msg = f"compat hello {i}".encode()
            stream.write(msg)
            stream.close()
            assert await asyncio.wait_for(stream.read(), 20) == msg


async def test_standard_dialer_is_told_the_peer_speaks_ts(rust_peer_factory) -> None:  # type: ignore[no-untyped-def]
    rust = rust_peer_factory("public", compat="ts")
    async with await snap2p.Peer.create() as peer:
        with pytest.raises(snap2p.Snap2pError) as e:
            await peer.dial(rust.addr)
        assert e.value.code == 8 and e.value.name == "ERR_HANDSHAKE_FAILED"
        assert "this peer speaks the TypeScript profile" in str(e.value)


async def test_unknown_compat_is_refused() -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(compat="tls")
    assert e.value.code == 25
