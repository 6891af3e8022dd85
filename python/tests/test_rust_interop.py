"""Python <-> Rust: the Python binding against a peer built on the Rust crate directly."""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

import snap2p

MIB = 1 << 20


async def test_echo_with_rust_peer(rust_peer_factory) -> None:  # type: ignore[no-untyped-def]
    rust = rust_peer_factory("public")
    async with await snap2p.Peer.create() as peer:
        conn = await peer.dial(rust.addr, expect=rust.principal)
        assert conn.remote_principal == rust.principal
        stream = await conn.open_stream("echo")
        stream.write(b"from python")
        stream.close()
        assert await asyncio.wait_for(stream.read(), 20) == b"from python"


async def test_64_mib_to_rust_sha256(rust_peer_factory, digest_to_end) -> None:  # type: ignore[no-untyped-def]
    rust = rust_peer_factory("public")
    async with await snap2p.Peer.create() as peer:
        conn = await peer.dial(rust.addr)
        # One stream hashed by Rust, one echoed back and hashed here.
        hashed = await conn.open_stream("sha256-hex")
        echoed = await conn.open_stream("echo")
        sent = hashlib.sha256()
        reader = asyncio.ensure_future(digest_to_end(echoed))
        for _ in range(64):
            block = os.urandom(MIB)
            sent.update(block)
            hashed.write(block)
            echoed.write(block)
            await hashed.drain()
            await echoed.drain()
        hashed.close()
        echoed.close()
        rust_digest = (await asyncio.wait_for(hashed.read(), 60)).decode()
        assert rust_digest == sent.hexdigest()
        n_back, back_hex = await asyncio.wait_for(reader, 60)
        assert n_back == 64 * MIB
        assert back_hex == sent.hexdigest()


async def test_rust_stealth_invite_codes(rust_peer_factory) -> None:  # type: ignore[no-untyped-def]
    wallet = snap2p.LocalWallet.generate()
    rust = rust_peer_factory("stealth", wallet.principal)
    assert rust.invite is not None
    async with await snap2p.Peer.create(wallet=wallet) as peer:
        for invite, codes in ((None, (18, 5)), ("11" * 16, (5,))):
            with pytest.raises(snap2p.Snap2pError) as e:
                await asyncio.wait_for(peer.dial(rust.addr, invite=invite), 20)
            assert e.value.code in codes, e.value
        conn = await peer.dial(rust.addr, invite=rust.invite)
        assert conn.remote_principal == rust.principal
    async with await snap2p.Peer.create() as stranger:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(stranger.dial(rust.addr, invite=rust.invite), 20)
        assert e.value.code == 4


async def test_rust_private_refuses_python(rust_peer_factory) -> None:  # type: ignore[no-untyped-def]
    rust = rust_peer_factory("private")
    async with await snap2p.Peer.create() as peer:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(peer.dial(rust.addr), 20)
        assert e.value.code == 4 and e.value.name == "ERR_NOT_ALLOWED"
