"""Bad input raises Snap2pError with the protocol's code; never a crash or a hang."""

from __future__ import annotations

import asyncio
import pickle
import socket

import pytest

import snap2p


def test_error_codes_enum_matches_names() -> None:
    assert snap2p.ErrorCode.NOT_ALLOWED == 4
    assert snap2p.ErrorCode.INVITE_INVALID == 5
    assert snap2p.ErrorCode.INVITE_REQUIRED == 18
    for code in snap2p.ErrorCode:
        expected = "OK" if code == 0 else f"ERR_{code.name}"
        assert snap2p.error_name(code) == expected


def test_snap2p_error_is_an_exception_with_code() -> None:
    e = snap2p.Snap2pError("nope", 4)
    assert isinstance(e, Exception)
    assert (e.code, e.name, e.message) == (4, "ERR_NOT_ALLOWED", "nope")
    assert str(e) == "ERR_NOT_ALLOWED (4): nope"
    again = pickle.loads(pickle.dumps(e))
    assert (again.code, again.name, again.message) == (4, "ERR_NOT_ALLOWED", "nope")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"visibility": "invisible"},
        {"network": "regtest"},
        {"allowlist": ["stacks:SP000000000000000000002Q6VF79"]},  # bad checksum
        {"alias": 42},
        {"signer": object()},
        {"signer": object(), "wallet": snap2p.LocalWallet.generate()},
    ],
)
async def test_create_rejects_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(**kwargs)  # type: ignore[arg-type]
    assert e.value.code == 25


@pytest.mark.parametrize(
    "target,code",
    [
        ("not an address", 25),
        ("127.0.0.1:notaport", 25),
        ("stacks:SPnotaprincipal", 25),
    ],
)
async def test_dial_rejects_bad_targets(client: snap2p.Peer, target: str, code: int) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await asyncio.wait_for(client.dial(target), 20)
    assert e.value.code == code


async def test_dial_refused_port(client: snap2p.Peer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(snap2p.Snap2pError) as e:
        await asyncio.wait_for(client.dial(f"127.0.0.1:{port}"), 20)
    assert e.value.code == 12 and e.value.name == "ERR_CONNECTION_CLOSED"


async def test_dial_garbage_server_fails_cleanly(client: snap2p.Peer) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\xff" * 64 + b"HTTP/1.1 200 OK\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(client.dial(f"127.0.0.1:{port}"), 20)
        assert e.value.code != 0
    finally:
        srv.close()
        await srv.wait_closed()


async def test_bad_invite_argument(client: snap2p.Peer, server: snap2p.Peer) -> None:
    for bad in ("zz", "00"):
        with pytest.raises(snap2p.Snap2pError) as e:
            await client.dial(server.listen_addrs[0], invite=bad)
        assert e.value.code == 25


async def test_listen_bad_address(client: snap2p.Peer) -> None:
    for bad in ("nowhere", "1.2.3.4.5:80", 70000):
        with pytest.raises(snap2p.Snap2pError) as e:
            await client.listen(bad)
        assert e.value.code == 25


async def test_stream_use_after_reset(server: snap2p.Peer, client: snap2p.Peer) -> None:
    conn = await client.dial(server.listen_addrs[0])
    inbound = await asyncio.wait_for(server.accept(), 10)
    stream = await conn.open_stream("x")
    stream.write(b"ping")
    await stream.drain()
    remote = await asyncio.wait_for(inbound.accept_stream(), 10)
    assert await remote.read(4) == b"ping"
    remote.reset(20)  # ERR_STREAM_REFUSED
    with pytest.raises(snap2p.Snap2pError) as e:
        await asyncio.wait_for(stream.read(), 10)
    assert e.value.code == 20 and e.value.name == "ERR_STREAM_REFUSED"
    stream.reset()
    with pytest.raises(snap2p.Snap2pError):
        for _ in range(100):
            stream.write(b"more")
            await stream.drain()
            # drain() returns at once while the write buffer has room: the error of the
            # failed write shows on a later write() or drain().
            await asyncio.sleep(0.01)


async def test_open_stream_on_closed_connection(server: snap2p.Peer, client: snap2p.Peer) -> None:
    conn = await client.dial(server.listen_addrs[0])
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 10)
    with pytest.raises(snap2p.Snap2pError) as e:
        await conn.open_stream("late")
    assert e.value.code in (11, 12)
    assert conn.close_reason is None or isinstance(conn.close_reason, snap2p.Snap2pError)


def test_write_rejects_non_bytes() -> None:
    # No peer needed: the type check happens before anything is queued.
    async def run() -> None:
        async with await snap2p.Peer.create() as a, await snap2p.Peer.create() as b:
            addr = await a.listen("127.0.0.1:0")
            conn = await b.dial(addr)
            s = await conn.open_stream()
            with pytest.raises(snap2p.Snap2pError) as e:
                s.write("text, not bytes")  # type: ignore[arg-type]
            assert e.value.code == 25

    asyncio.run(run())
