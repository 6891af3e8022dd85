"""A stealth listener that only answers dialers holding an invite, signing through a
host-side (Python) signer; run with `python examples/python/stealth_invite.py`.

The stealth peer is invisible to port scans: without a valid invite in the dialer's KNOCK
it answers nothing. Here a friend with an invite gets in; a stranger without one fails
with ERR_INVITE_REQUIRED (18) or ERR_INVITE_INVALID (5).
"""

from __future__ import annotations

import asyncio

import snap2p


class KeychainSigner:
    """Stands in for a wallet living outside the process (keychain, hardware, phone)."""

    signature_form = "message"  # this "wallet" only offers "sign message"

    def __init__(self) -> None:
        self._wallet = snap2p.LocalWallet.generate()
        self.principal = self._wallet.principal

    async def sign(self, request: snap2p.SignRequest) -> bytes:
        assert request.kind == "message" and request.message is not None
        print("[signer] asked to sign:\n  " + request.message.replace("\n", "\n  "))
        return self._wallet.sign_message(request.message)


async def main() -> None:
    friend_wallet = snap2p.LocalWallet.generate()
    hidden = await snap2p.Peer.create(
        visibility="stealth",
        signer=KeychainSigner(),
        allowlist=[friend_wallet.principal],
        alias=("hidden", "Hidden Service"),
    )
    addr = await hidden.listen("127.0.0.1:0")
    invite = hidden.create_invite(ttl=3600, one_time=False)
    print(f"stealth peer {hidden.principal} on {addr}; invite id {invite.id}")

    async def greet(conn: snap2p.Connection) -> None:
        stream = await conn.accept_stream()
        name = (await stream.read()).decode()
        stream.write(f"welcome, {name}".encode())
        stream.close()
        await stream.drain()

    sub = hidden.on_connection(greet)

    async with await snap2p.Peer.create(wallet=friend_wallet) as friend:
        conn = await friend.dial(addr, invite=invite.token)
        print(
            "friend reached", conn.remote_principal, "alias:", conn.remote_alias.alias
        )
        stream = await conn.open_stream("hello")
        stream.write(b"friend")
        stream.close()
        print("friend got:", (await stream.read()).decode())

    async with await snap2p.Peer.create() as stranger:
        try:
            await asyncio.wait_for(stranger.dial(addr), 15)
        except snap2p.Snap2pError as e:
            print(f"stranger refused: {e.name} ({e.code})")
            assert e.code in (
                snap2p.ErrorCode.INVITE_REQUIRED,
                snap2p.ErrorCode.INVITE_INVALID,
            )
        else:
            raise AssertionError("a stranger without an invite got in")

    sub.cancel()
    await hidden.close()


if __name__ == "__main__":
    asyncio.run(main())
