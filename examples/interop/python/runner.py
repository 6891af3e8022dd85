"""The Python runner of the interop matrix (contract: docs/INTEROP.md).

Its wallet signer is Python: a secp256k1 key held by `coincurve` (libsecp256k1) signs the
digests the core asks for, so the attestation and AliasCard are signed outside Rust.
"""

import argparse
import asyncio
import functools
import hashlib
import json
import os
import sys
import time

import coincurve
import snap2p


class PySigner:
    """A host-side signer: owns its key, answers sign requests (async, like a wallet)."""

    def __init__(self, form: str) -> None:
        self._key = coincurve.PrivateKey()
        pub = self._key.public_key.format(compressed=True)
        self.principal = snap2p.principal_from_public_key(pub)
        self.signature_form = form

    async def sign(self, request: snap2p.SignRequest) -> bytes:
        if request.kind == "digest":
            digest = request.digest
        else:
            digest = snap2p.stacks_message_hash(request.message)
        # coincurve: 65 bytes r || s || recovery id, RFC 6979, low-S.
        return self._key.sign_recoverable(digest, hasher=None)


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


async def make_peer(args) -> snap2p.Peer:
    signer = PySigner(args.sign_form)
    peer = await snap2p.Peer.create(
        visibility=args.visibility,
        allowlist=args.allow or None,
        signer=signer,
        allowlist_gate=args.visibility == "private" or bool(args.allow),
        # wss: the listener's certificate and key, the dialer's extra trusted root.
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
        tls_root_file=args.tls_root,
        # --v1: the handshake of three round trips only (PROTOCOL.md §5.8).
        hs2=not args.v1,
    )
    if args.alias:
        await peer.set_alias(args.alias, f"{args.alias} (python)")
    if args.mode == "listen":
        # grant: rules in their text form, and the owner wallet whose grants this node honours.
        if args.permit is not None:
            peer.set_permissions(args.permit)
        if args.grant_owner_mnemonic:
            owner = snap2p.LocalWallet.from_mnemonic(args.grant_owner_mnemonic, 0)
            peer.add_grant_owner(owner.principal)
    return peer


async def serve_stream(stream: snap2p.Stream) -> None:
    h = hashlib.sha256()
    n = 0
    async for chunk in stream:
        h.update(chunk)
        n += len(chunk)
    digest = h.hexdigest()
    stream.write(digest.encode())
    stream.close()
    await stream.drain()
    emit({"event": "stream", "label": stream.label, "bytes": n, "sha256": digest})


async def serve_conn(peer: snap2p.Peer, conn: snap2p.Connection) -> None:
    stats = conn.stats()
    emit(
        {
            "event": "connection",
            "principal": conn.remote_principal,
            "transport": stats.transport,
            "hs2": stats.hs2,
            "handshakes_failed": sum(peer.stats().handshakes_failed.values()),
        }
    )
    async for stream in conn.streams():
        asyncio.ensure_future(serve_stream(stream))


async def listen(args) -> int:
    peer = await make_peer(args)
    if args.wss:
        # The listener's full locator, named as its certificate is (localhost).
        await peer.listen("wss://127.0.0.1:0/interop")
        locator = next(loc for loc in peer.listen_locators if loc.startswith("wss://"))
        locator = locator.replace("wss://127.0.0.1:", "wss://localhost:", 1)
    elif args.ws:
        # listen() returns the bound 'ip:port'; the locator is the listen locator with it.
        locator = "ws://%s/interop" % await peer.listen("ws://127.0.0.1:0/interop")
    else:
        locator = await peer.listen("127.0.0.1:0")
    if args.relay:
        # relay: also reserve on the relay at ADDR; the printed locator is the relayed one.
        await peer.listen(f"relay://{args.relay}")
        locator = next(
            loc for loc in peer.listen_locators if loc.startswith("relay://")
        )
    invite = peer.create_invite(3600).token if args.invite else None
    keep = None
    if args.bootstrap:
        keep = await peer.dial(args.bootstrap)
    emit(
        {
            "event": "ready",
            "principal": peer.principal,
            "locator": locator,
            "invite": invite,
        }
    )
    sub = peer.on_connection(functools.partial(serve_conn, peer))
    loop = asyncio.get_running_loop()
    # Serve until the orchestrator closes stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    sub.cancel()
    del keep
    await peer.close()
    return 0


async def probe(conn: snap2p.Connection, label: str) -> int:
    """Opens ``label``, writes a few bytes, reads the answer: 0 when served, else the code."""

    async def run() -> None:
        s = await conn.open_stream(label)
        s.write(b"probe")
        s.close()
        await s.drain()
        await s.read()

    try:
        await asyncio.wait_for(run(), 20)
    except snap2p.Snap2pError as e:
        return e.code
    except TimeoutError:
        return -1
    return 0


class _OwnerSigner:
    """A host-side signer around a wallet held by this Python process."""

    def __init__(self, wallet: snap2p.LocalWallet) -> None:
        self.wallet, self.principal, self.signature_form = (
            wallet,
            wallet.principal,
            "message",
        )

    def sign(self, request: snap2p.SignRequest) -> bytes:
        if request.kind == "digest":
            return self.wallet.sign_digest(request.digest)
        return self.wallet.sign_message(request.message)


async def send_one(
    conn: snap2p.Connection, i: int, nbytes: int, label: str | None = None
) -> dict:
    s = await conn.open_stream(label or f"interop-{i}")
    h = hashlib.sha256()
    left = nbytes
    while left > 0:
        n = min(left, 65536)
        buf = os.urandom(n)
        h.update(buf)
        s.write(buf)
        await s.drain()
        left -= n
    s.close()
    await s.drain()
    reply = await s.read()
    mine = h.hexdigest()
    return {"sha256": mine, "match": reply == mine.encode()}


async def dial(args) -> int:
    peer = await make_peer(args)
    started = time.monotonic()
    via = await peer.dial(args.via) if args.via else None
    try:
        conn = await peer.dial(args.target, invite=args.invite)
    except snap2p.Snap2pError as e:
        ok = args.expect_code is not None and e.code == args.expect_code
        emit({"event": "result", "ok": ok, "code": e.code, "error": str(e)})
        await peer.close()
        return 0 if ok else 1
    if args.expect_code is not None:
        emit(
            {
                "event": "result",
                "ok": False,
                "code": None,
                "error": "connected but an error was expected",
            }
        )
        await peer.close()
        return 1
    # grant: opening the label must be refused (20); then the owner wallet (account 0 of the
    # mnemonic) grants it to our principal, we present the grant and label the streams with it.
    refused_code = None
    if args.grant_label:
        refused_code = await probe(conn, args.grant_label)
        error = None if refused_code == 20 else f"refusal code {refused_code} (want 20)"
        if error is None:
            try:
                # The owner's key held by Python, as a phone or browser wallet bridge
                # would: a host signer asked for the grant's Stacks message text.
                owner = snap2p.LocalWallet.from_mnemonic(args.grant_owner_mnemonic, 0)
                grant = await snap2p.issue_grant(
                    _OwnerSigner(owner),
                    peer.principal,
                    [args.grant_label],
                    ttl_secs=3600,
                )
                await conn.present_grant(grant)
            except snap2p.Snap2pError as e:
                error = f"present: {e.code} {e}"
        if error is not None:
            emit(
                {
                    "event": "result",
                    "ok": False,
                    "refused_code": refused_code,
                    "error": error,
                }
            )
            await peer.close()
            return 1
    results = await asyncio.gather(
        *(send_one(conn, i, args.bytes, args.grant_label) for i in range(args.streams)),
        return_exceptions=True,
    )
    streams = [r if isinstance(r, dict) else {"error": str(r)} for r in results]
    ok = all(r.get("match") for r in streams)
    alias = conn.remote_alias.alias if conn.remote_alias else None
    if args.expect_alias is not None:
        for _ in range(50):
            alias = conn.remote_alias.alias if conn.remote_alias else None
            if alias == args.expect_alias:
                break
            await asyncio.sleep(0.02)
        ok = ok and alias == args.expect_alias
    if args.expect_principal:
        ok = ok and conn.remote_principal == args.expect_principal
    stats = conn.stats()
    transport, hs2 = stats.transport, stats.hs2
    if args.expect_transport:
        ok = ok and transport == args.expect_transport
    emit(
        {
            "event": "result",
            "ok": ok,
            "principal": conn.remote_principal,
            "alias": alias,
            "streams": streams,
            "refused_code": refused_code,
            "transport": transport,
            "hs2": hs2,
            "ms": int((time.monotonic() - started) * 1000),
        }
    )
    conn.close(0, "done")
    del via
    await peer.close()
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["listen", "dial"])
    ap.add_argument("--visibility", default="public")
    ap.add_argument("--allow", action="append")
    ap.add_argument("--alias")
    ap.add_argument("--invite", nargs="?", const=True)
    ap.add_argument("--bootstrap")
    ap.add_argument("--ws", action="store_true")
    ap.add_argument("--wss", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-root")
    ap.add_argument("--sign-form", default="digest")
    ap.add_argument("--target")
    ap.add_argument("--via")
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--bytes", type=int, default=1024)
    ap.add_argument("--expect-alias")
    ap.add_argument("--expect-code", type=int)
    ap.add_argument("--expect-principal")
    ap.add_argument("--permit")
    ap.add_argument("--grant-owner-mnemonic")
    ap.add_argument("--grant-label")
    ap.add_argument("--relay")
    ap.add_argument("--expect-transport")
    ap.add_argument("--v1", action="store_true")
    args = ap.parse_args()
    if args.mode == "listen":
        return asyncio.run(listen(args))
    if args.invite is True:
        ap.error("--invite needs a token when dialing")
    return asyncio.run(dial(args))


if __name__ == "__main__":
    sys.exit(main())
