"""Host-side signers written in Python (sync and async), checked by a real handshake."""

from __future__ import annotations

import asyncio
import threading

import pytest

import snap2p


class SyncSigner:
    """Signs with a LocalWallet held on the Python side, as a keychain bridge would."""

    def __init__(self, wallet: snap2p.LocalWallet, form: str = "digest") -> None:
        self.wallet = wallet
        self.principal = wallet.principal
        self.signature_form = form
        self.requests: list[tuple[str, object]] = []
        self.threads: set[int] = set()

    def sign(self, request: snap2p.SignRequest) -> bytes:
        self.threads.add(threading.get_ident())
        if request.kind == "digest":
            assert request.message is None and len(request.digest) == 32
            self.requests.append(("digest", request.digest))
            return self.wallet.sign_digest(request.digest)
        assert request.kind == "message" and request.digest is None
        self.requests.append(("message", request.message))
        return self.wallet.sign_message(request.message)


class AsyncSigner(SyncSigner):
    async def sign(self, request: snap2p.SignRequest) -> bytes:  # type: ignore[override]
        self.loop = asyncio.get_running_loop()
        await asyncio.sleep(0.01)  # a wallet round trip
        return SyncSigner.sign(self, request)


@pytest.mark.parametrize("form", ["digest", "message"])
@pytest.mark.parametrize("kind", [SyncSigner, AsyncSigner])
async def test_host_signer_authenticates(kind: type[SyncSigner], form: str) -> None:
    signer = kind(snap2p.LocalWallet.generate(), form)
    async with (
        await snap2p.Peer.create(signer=signer, alias=("signed", "By Python")) as peer,
        await snap2p.Peer.create() as other,
    ):
        assert peer.principal == signer.principal
        # The attestation and the AliasCard were both signed by the Python object.
        assert [k for k, _ in signer.requests] == [form, form]
        if form == "message":
            texts = [m for _, m in signer.requests]
            assert "snap2p node key attestation" in texts[0]
            assert "snap2p alias card" in texts[1]
        addr = await peer.listen("127.0.0.1:0")
        conn = await other.dial(addr)
        # The remote end verified the signatures against the principal.
        assert conn.remote_principal == signer.principal
        assert conn.remote_alias is not None and conn.remote_alias.display_name == "By Python"
    if kind is AsyncSigner:
        assert signer.loop is asyncio.get_running_loop()
    else:
        # A plain sign() runs off the event loop's thread (a hardware prompt may block).
        assert threading.get_ident() not in signer.threads


async def test_signer_signature_verifies() -> None:
    wallet = snap2p.LocalWallet.generate()
    digest = bytes(range(32))
    sig = wallet.sign_digest(digest)
    assert len(sig) == 65
    snap2p.verify_signature(digest, sig, wallet.principal)
    other = snap2p.LocalWallet.generate()
    with pytest.raises(snap2p.Snap2pError) as e:
        snap2p.verify_signature(digest, sig, other.principal)
    assert e.value.code == 6
    msg_sig = wallet.sign_message("hello")
    snap2p.verify_signature(snap2p.stacks_message_hash("hello"), msg_sig, wallet.address)


class WrongKeySigner(SyncSigner):
    def __init__(self, wallet: snap2p.LocalWallet) -> None:
        super().__init__(wallet)
        self.impostor = snap2p.LocalWallet.generate()

    def sign(self, request: snap2p.SignRequest) -> bytes:
        return self.impostor.sign_digest(request.digest)


class ShortSigner(SyncSigner):
    async def sign(self, request: snap2p.SignRequest) -> bytes:  # type: ignore[override]
        return b"\x01" * 64


class RaisingSigner(SyncSigner):
    def sign(self, request: snap2p.SignRequest) -> bytes:
        raise RuntimeError("user declined")


class CodedRaisingSigner(SyncSigner):
    async def sign(self, request: snap2p.SignRequest) -> bytes:  # type: ignore[override]
        raise snap2p.Snap2pError("locked", 24)


@pytest.mark.parametrize(
    "signer_cls,code,fragment",
    [
        (WrongKeySigner, 6, ""),
        (ShortSigner, 6, "64 bytes"),
        (RaisingSigner, 24, "user declined"),
        (CodedRaisingSigner, 24, "locked"),
    ],
)
async def test_bad_signers_raise_codes(
    signer_cls: type[SyncSigner], code: int, fragment: str
) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        signer = signer_cls(snap2p.LocalWallet.generate())
        await asyncio.wait_for(snap2p.Peer.create(signer=signer), 20)
    assert e.value.code == code, e.value
    assert fragment in e.value.message


async def test_signer_missing_principal() -> None:
    class NoPrincipal:
        def sign(self, request: snap2p.SignRequest) -> bytes:
            return b""

    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(signer=NoPrincipal())
    assert e.value.code == 25


async def test_signer_unknown_signature_form() -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(signer=SyncSigner(snap2p.LocalWallet.generate(), "sms"))
    assert e.value.code == 25
    assert '"digest" or "message", not "sms"' in e.value.message
