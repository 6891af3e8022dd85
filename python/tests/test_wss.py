"""wss:// through the Python package: a listener with a certificate made here by openssl
(``tls_cert_file``/``tls_key_file``), a dialer trusting its CA (``tls_root_file``), and the
failures a misconfiguration gives: immediate errors with the protocol's code, never a hang."""

from __future__ import annotations

import hashlib
import os
import pathlib
import time

import pytest

import snap2p
from snap2p import ErrorCode


async def test_wss_listen_and_dial(tls_files, echo_server) -> None:
    server = await snap2p.Peer.create(tls_cert_file=tls_files.cert, tls_key_file=tls_files.key)
    client = await snap2p.Peer.create(tls_root_file=pathlib.Path(tls_files.ca))
    async with server, client:
        bound = await server.listen("wss://127.0.0.1:0/snap2p")
        assert server.listen_locators == [f"wss://{bound}/snap2p"]
        assert server.listen_addrs == [bound]
        sub = await echo_server(server)
        events = server.events()
        port = bound.rsplit(":", 1)[1]
        conn = await client.dial(f"wss://localhost:{port}/snap2p")
        assert conn.remote_principal == server.principal
        stream = await conn.open_stream("wss")
        sent = hashlib.sha256()
        for _ in range(16):
            block = os.urandom(256 * 1024)
            sent.update(block)
            stream.write(block)
            await stream.drain()
        stream.close()
        await stream.drain()
        got = hashlib.sha256()
        async for chunk in stream:
            got.update(chunk)
        assert got.hexdigest() == sent.hexdigest()
        assert conn.stats().transport == "wss"
        async for ev in events:
            if ev.kind == "session_established":
                assert ev.transport == "wss" and ev.connection == conn.id
                break
        sub.cancel()


async def test_wss_without_the_root_fails_at_once_and_bad_options_are_refused(tls_files) -> None:
    server = await snap2p.Peer.create(tls_cert_file=tls_files.cert, tls_key_file=tls_files.key)
    stranger = await snap2p.Peer.create()  # Mozilla's roots only: the test CA is unknown
    async with server, stranger:
        port = (await server.listen("wss://127.0.0.1:0/snap2p")).rsplit(":", 1)[1]
        started = time.monotonic()
        with pytest.raises(snap2p.Snap2pError) as e:
            await stranger.dial(f"wss://localhost:{port}/snap2p")
        assert e.value.code == ErrorCode.HANDSHAKE_FAILED
        assert "UnknownIssuer" in e.value.message
        assert time.monotonic() - started < 5
        assert server.open_connections() == []
        # A wss listener needs a certificate, a certificate its key, a file must exist.
        with pytest.raises(snap2p.Snap2pError) as e:
            await stranger.listen("wss://127.0.0.1:0/x")
        assert e.value.code == ErrorCode.INVALID_ARGUMENT
        for bad in (
            {"tls_cert_file": tls_files.cert},
            {"tls_root_file": tls_files.ca + ".missing"},
        ):
            with pytest.raises(snap2p.Snap2pError) as e:
                await snap2p.Peer.create(**bad)
            assert e.value.code == ErrorCode.INVALID_ARGUMENT
