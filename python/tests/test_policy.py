"""Visibility modes, invites and allowlists, with the protocol's error codes."""

from __future__ import annotations

import asyncio

import pytest

import snap2p


async def _dial_error(peer: snap2p.Peer, addr: str, **kw: object) -> snap2p.Snap2pError:
    with pytest.raises(snap2p.Snap2pError) as e:
        await asyncio.wait_for(peer.dial(addr, **kw), 20)
    return e.value


@pytest.fixture
async def stealth() -> snap2p.Peer:
    peer = await snap2p.Peer.create(visibility="stealth")
    await peer.listen("127.0.0.1:0")
    yield peer
    await peer.close()


async def test_stealth_valid_invite_and_allowlist(stealth: snap2p.Peer) -> None:
    invite = stealth.create_invite(ttl=600)
    assert invite.token is not None and len(invite.token) >= 32
    async with await snap2p.Peer.create() as friend:
        stealth.allow(friend.principal)
        assert friend.principal in stealth.allowlist
        conn = await friend.dial(stealth.listen_addrs[0], invite=invite.token)
        assert conn.remote_principal == stealth.principal
        listed = stealth.list_invites()
        assert [i.id for i in listed] == [invite.id] and listed[0].token is None
        assert listed[0].uses == 1
    async with await snap2p.Peer.create() as stranger:
        # A valid invite is not enough: the allowlist still applies (ERR_NOT_ALLOWED).
        err = await _dial_error(stranger, stealth.listen_addrs[0], invite=invite.token)
        assert err.code == 4 and err.name == "ERR_NOT_ALLOWED"


async def test_stealth_invalid_and_revoked_invite(stealth: snap2p.Peer) -> None:
    async with await snap2p.Peer.create() as friend:
        stealth.allow(friend.principal)
        err = await _dial_error(friend, stealth.listen_addrs[0], invite="00" * 16)
        assert err.code == 5 and err.name == "ERR_INVITE_INVALID"
        invite = stealth.create_invite()
        assert stealth.revoke_invite(invite.id)
        assert not stealth.revoke_invite(invite.id)
        err = await _dial_error(friend, stealth.listen_addrs[0], invite=invite.token)
        assert err.code == 5
        assert stealth.list_invites() == []


async def test_stealth_missing_invite(stealth: snap2p.Peer) -> None:
    async with await snap2p.Peer.create() as friend:
        stealth.allow(friend.principal)
        err = await _dial_error(friend, stealth.listen_addrs[0])
        # The dialer learns its own mistake (no KNOCK) locally; the stealth node stays silent.
        assert err.code in (18, 5), err
        assert err.name in ("ERR_INVITE_REQUIRED", "ERR_INVITE_INVALID")


async def test_one_time_invite(stealth: snap2p.Peer) -> None:
    invite = stealth.create_invite(one_time=True)
    assert invite.one_time
    async with await snap2p.Peer.create() as friend:
        stealth.allow(friend.principal)
        await friend.dial(stealth.listen_addrs[0], invite=bytes.fromhex(invite.token))
        err = await _dial_error(friend, stealth.listen_addrs[0], invite=invite.token)
        assert err.code == 5


async def test_private_allowlist() -> None:
    async with await snap2p.Peer.create(visibility="private") as private:
        addr = await private.listen("127.0.0.1:0")
        assert private.visibility == "private"
        async with await snap2p.Peer.create() as stranger:
            err = await _dial_error(stranger, addr)
            assert err.code == 4 and err.name == "ERR_NOT_ALLOWED"
            private.allow(stranger.principal)
            conn = await stranger.dial(addr)
            assert conn.remote_principal == private.principal
            private.disallow(stranger.principal)
            err = await _dial_error(stranger, addr)
            assert err.code == 4


async def test_private_allowlist_at_create() -> None:
    friend_wallet = snap2p.LocalWallet.generate()
    async with await snap2p.Peer.create(
        visibility="private", allowlist=[friend_wallet.address]
    ) as private:
        addr = await private.listen(0)
        assert private.allowlist == [friend_wallet.principal]
        async with await snap2p.Peer.create(wallet=friend_wallet) as friend:
            conn = await friend.dial(addr.replace("0.0.0.0", "127.0.0.1"))
            assert conn.remote_principal == private.principal


async def test_expect_principal_mismatch(server: snap2p.Peer, client: snap2p.Peer) -> None:
    other = snap2p.LocalWallet.generate().principal
    err = await _dial_error(client, server.listen_addrs[0], expect=other)
    assert err.code == 23 and err.name == "ERR_PRINCIPAL_MISMATCH"
    conn = await client.dial(server.listen_addrs[0], expect=server.principal)
    assert conn.remote_principal == server.principal
