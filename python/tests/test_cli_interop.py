"""Python <-> the Rust `snap2p` command (examples/cli) over loopback, as separate processes.

The CLI runs with `--json`, so each test reads its events (listening, invite, connected,
message, echo) as one JSON object per line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
import queue
import subprocess
import threading
from collections.abc import Awaitable, Iterator
from typing import Any, Callable

import pytest

import snap2p

# The `echo_server` fixture (conftest.py).
EchoServer = Callable[..., Awaitable[snap2p.Subscription]]


class Cli:
    """A running `snap2p --json …` process whose stdout lines are read on a thread."""

    def __init__(self, binary: pathlib.Path, args: list[str], wallet_dir: pathlib.Path) -> None:
        env = dict(os.environ, SNAP2P_WALLET_DIR=str(wallet_dir))
        self.proc = subprocess.Popen(
            [str(binary), "--json", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                self.events.put(json.loads(line))

    async def event(
        self, kind: str, match: Callable[[dict[str, Any]], bool] = lambda e: True
    ) -> dict[str, Any]:
        """The next event `kind` that `match` accepts (earlier ones are kept in `seen`)."""
        for e in self.seen:
            if e.get("event") == kind and match(e):
                self.seen.remove(e)
                return e
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            try:
                e = await asyncio.to_thread(self.events.get, True, 0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if e.get("event") == kind and match(e):
                return e
            self.seen.append(e)
        stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""  # type: ignore[union-attr]
        raise AssertionError(f"no {kind!r} event from the CLI; saw {self.seen}; stderr: {stderr}")

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cli(snap2p_cli: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[Callable[..., Cli]]:
    started: list[Cli] = []

    def start(*args: str) -> Cli:
        c = Cli(snap2p_cli, list(args), tmp_path)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


async def test_python_dials_cli_listener_echo_with_checksum(
    cli: Callable[..., Cli],
    digest_to_end: Callable[[snap2p.Stream], Awaitable[tuple[int, str]]],
) -> None:
    listener = cli("listen", "127.0.0.1:0", "--alias", "clihost")
    ready = await listener.event("listening")
    async with await snap2p.Peer.create(alias=("pyguest", "Python Guest")) as peer:
        conn = await peer.dial(ready["addr"], expect=ready["principal"])
        assert conn.remote_principal == ready["principal"]
        assert conn.remote_alias is not None and conn.remote_alias.alias == "clihost"
        seen = await listener.event("connected")
        assert seen["principal"] == peer.principal and seen["alias"] == "pyguest"

        # The listener echoes any stream that is not "chat": 8 MiB there and back.
        stream = await conn.open_stream("echo")
        payload = os.urandom(8 << 20)
        reader = asyncio.ensure_future(digest_to_end(stream))
        for i in range(0, len(payload), 1 << 16):
            stream.write(payload[i : i + (1 << 16)])
            await stream.drain()
        stream.close()
        n_back, back_hex = await asyncio.wait_for(reader, 60)
        assert n_back == len(payload)
        assert back_hex == hashlib.sha256(payload).hexdigest()
        echoed = await listener.event("echo")
        assert echoed["bytes"] == len(payload) and echoed["from"] == peer.principal
        assert echoed["sha256"] == back_hex


async def test_python_chats_with_cli_listener(cli: Callable[..., Cli]) -> None:
    listener = cli("listen", "127.0.0.1:0", "--alias", "clihost")
    ready = await listener.event("listening")
    async with await snap2p.Peer.create() as peer:
        conn = await peer.dial(ready["addr"])
        chat = await conn.open_stream("chat")
        chat.write(b"hello from python\n")
        await chat.drain()
        said = await listener.event("message")
        assert said["text"] == "hello from python" and said["from"] == peer.principal
        # A line typed on the listener's stdin reaches every chat stream.
        listener.send_line("hello back from rust")
        line = b""
        while not line.endswith(b"\n"):
            chunk = await asyncio.wait_for(chat.read(100), 20)
            assert chunk, "chat stream ended early"
            line += chunk
        assert line == b"hello back from rust\n"


async def test_cli_dials_python_listener(cli: Callable[..., Cli], echo_server: EchoServer) -> None:
    async with await snap2p.Peer.create(alias=("pyhost", "Python Host")) as server:
        addr = await server.listen("127.0.0.1:0")
        inbound: asyncio.Queue[snap2p.Connection] = asyncio.Queue()
        labels: list[str | None] = []
        sub = await echo_server(server, inbound, labels)
        try:
            dialer = cli("dial", addr, "-m", "echo me, python")
            out = await dialer.event("echo")
            assert out["matches"] is True and out["text"] == "echo me, python"
            assert out["principal"] == server.principal and out["alias"] == "pyhost"
            conn = await asyncio.wait_for(inbound.get(), 10)
            assert conn.remote_principal.startswith("stacks:SP")
            assert labels == ["echo"]
            assert await asyncio.to_thread(dialer.proc.wait, 20) == 0
        finally:
            sub.cancel()


async def test_cli_stealth_listener_gates_python(cli: Callable[..., Cli]) -> None:
    friend = snap2p.LocalWallet.generate()
    listener = cli("listen", "127.0.0.1:0", "--visibility", "stealth", "--allow", friend.principal)
    ready = await listener.event("listening")
    assert ready["visibility"] == "stealth"
    invite = (await listener.event("invite"))["token"]
    async with await snap2p.Peer.create(wallet=friend) as peer:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(peer.dial(ready["addr"]), 20)
        assert e.value.code == 18 and e.value.name == "ERR_INVITE_REQUIRED"
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(peer.dial(ready["addr"], invite="ab" * 32), 20)
        assert e.value.code == 5
        conn = await peer.dial(ready["addr"], invite=invite)
        assert conn.remote_principal == ready["principal"]
    # The invite alone is not enough: the allowlist still applies.
    async with await snap2p.Peer.create() as stranger:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(stranger.dial(ready["addr"], invite=invite), 20)
        assert e.value.code == 4


async def test_cli_private_listener_allowlist(cli: Callable[..., Cli]) -> None:
    friend = snap2p.LocalWallet.generate()
    listener = cli("listen", "127.0.0.1:0", "--visibility", "private", "--allow", friend.principal)
    ready = await listener.event("listening")
    async with await snap2p.Peer.create(wallet=friend) as peer:
        conn = await peer.dial(ready["addr"])
        assert conn.remote_principal == ready["principal"]
    async with await snap2p.Peer.create() as stranger:
        with pytest.raises(snap2p.Snap2pError) as e:
            await asyncio.wait_for(stranger.dial(ready["addr"]), 20)
        assert e.value.code == 4 and e.value.name == "ERR_NOT_ALLOWED"
