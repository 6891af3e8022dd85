"""Shared fixtures: real peers on loopback, the Rust echo peer (core/examples/echo_peer.rs) and
the `snap2p` CLI binary."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

import snap2p

ROOT = pathlib.Path(__file__).resolve().parents[2]


EchoServer = Callable[..., Awaitable[snap2p.Subscription]]


@pytest.fixture
def echo_server() -> EchoServer:
    """Starts echoing every stream of every connection `peer` accepts; each connection is put
    on `seen` and each stream's label appended to `labels` when given."""

    async def start(
        peer: snap2p.Peer,
        seen: asyncio.Queue[snap2p.Connection] | None = None,
        labels: list[str | None] | None = None,
    ) -> snap2p.Subscription:
        async def echo(stream: snap2p.Stream) -> None:
            async for chunk in stream:
                stream.write(chunk)
            stream.close()
            await stream.drain()

        async def serve(conn: snap2p.Connection) -> None:
            if seen is not None:
                await seen.put(conn)
            async for stream in conn.streams():
                if labels is not None:
                    labels.append(stream.label)
                asyncio.ensure_future(echo(stream))

        return peer.on_connection(serve)

    return start


async def _digest_to_end(stream: snap2p.Stream) -> tuple[int, str]:
    """Reads `stream` to its end: (bytes read, hex SHA-256 of them)."""
    h, n = hashlib.sha256(), 0
    async for chunk in stream:
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


@pytest.fixture
def digest_to_end() -> Callable[[snap2p.Stream], Awaitable[tuple[int, str]]]:
    """`await digest_to_end(stream)`: (bytes read to the end, their hex SHA-256)."""
    return _digest_to_end


@pytest.fixture
async def server() -> AsyncIterator[snap2p.Peer]:
    peer = await snap2p.Peer.create(alias=("server", "The Server"))
    await peer.listen("127.0.0.1:0")
    yield peer
    await peer.close()


@pytest.fixture
async def client() -> AsyncIterator[snap2p.Peer]:
    peer = await snap2p.Peer.create()
    yield peer
    await peer.close()


@dataclass
class RustPeer:
    addr: str
    principal: str
    invite: str | None
    proc: subprocess.Popen[str]


def _built_binary(env: str, relative: str, build: str) -> pathlib.Path:
    """A Rust binary of this workspace: `$env`, else the release or debug build of it."""
    explicit = os.environ.get(env)
    if explicit:
        return pathlib.Path(explicit)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("release", "debug"):
        candidate = target / profile / relative
        if candidate.exists():
            return candidate
    pytest.fail(f"not built: {build} (or set {env})")


def _rust_echo_binary() -> pathlib.Path:
    return _built_binary(
        "SNAP2P_ECHO_PEER",
        "examples/echo_peer",
        "cargo build -p snap2p --example echo_peer",
    )


@pytest.fixture
def snap2p_cli() -> pathlib.Path:
    """The `snap2p` command (examples/cli)."""
    return _built_binary("SNAP2P_CLI", "snap2p", "cargo build --release -p snap2p-cli")


@pytest.fixture
def rust_peer_factory() -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def start(visibility: str = "public", *allowed: str, compat: str | None = None) -> RustPeer:
        proc = subprocess.Popen(
            [
                str(_rust_echo_binary()),
                "--visibility",
                visibility,
                *(arg for p in allowed for arg in ("--allow", p)),
                *(("--compat", compat) if compat else ()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line and line[0] == "READY", f"rust peer did not start: {line}"
        _, addr, principal, invite = line
        return RustPeer(addr, principal, None if invite == "-" else invite, proc)

    yield start
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()  # the peer exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class TlsFiles:
    ca: str
    cert: str
    key: str


@pytest.fixture
def tls_files(tmp_path: pathlib.Path) -> TlsFiles:
    """A throw-away PKI made by ``openssl``: a CA and a leaf for localhost / 127.0.0.1."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    d = tmp_path
    openssl(
        "req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
        "-days", "2", "-subj", "/CN=snap2p test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    openssl(
        "req", *ec, "-keyout", str(d / "key.pem"), "-out", str(d / "leaf.csr"),
        "-subj", "/CN=localhost",
    )  # fmt: skip
    (d / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "cert.pem"),
        "-days", "2", "-extfile", str(d / "leaf.ext"),
    )  # fmt: skip
    return TlsFiles(ca=str(d / "ca.pem"), cert=str(d / "cert.pem"), key=str(d / "key.pem"))
