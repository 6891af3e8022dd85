"""The resolver chain on a Peer (issue 30, docs/PROTOCOL.md §35.5) through ``resolver=`` and
``Peer.resolve``: a real resolve through the px-1 step over loopback (a hub both peers are
connected to), a BNS name through two local Stacks API servers answering with the recorded
response shapes of core/tests/fixtures/bns (see its README; core/tests/bns_http.rs serves
the same documents), and the error paths with the core's codes."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator

import pytest

import snap2p
from snap2p import ErrorCode

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "core" / "tests" / "fixtures" / "bns"
RECORDED = json.loads((FIXTURES / "get-name-info.response.example.json").read_text())
NO_SUCH_NAME = (FIXTURES / "bns-no-such-name.example.json").read_bytes()


def name_document(principal: str, locators: list[str]) -> bytes:
    """The recorded 200 document for a name owned by ``principal``, ``locators`` in its zonefile."""
    doc = dict(RECORDED, address=principal.removeprefix("stacks:"), blockchain="stacks")
    if locators:
        doc["zonefile"] += "_snap2p IN TXT " + " ".join(f'"{loc}"' for loc in locators) + "\n"
    return json.dumps(doc).encode()


class StacksApi:
    """A Stacks API server on loopback answering ``GET /v1/names/{name}`` with ``body``
    (``None``: the recorded 404)."""

    def __init__(self, body: bytes | None) -> None:
        self.body = body
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        ok = request.startswith(b"GET /v1/names/") and self.body is not None
        body = self.body if ok and self.body is not None else NO_SUCH_NAME
        status = b"200 OK" if ok else b"404 Not Found"
        writer.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def apis() -> AsyncIterator[list[StacksApi]]:
    started: list[StacksApi] = []
    yield started
    for a in started:
        if a.server is not None:
            a.server.close()


async def api(apis: list[StacksApi], body: bytes | None) -> str:
    a = StacksApi(body)
    apis.append(a)
    return await a.start()


async def test_px1_answers_over_loopback() -> None:
    hub = await snap2p.Peer.create()
    target = await snap2p.Peer.create()
    stranger = await snap2p.Peer.create(
        resolver={"steps": ["cache", "px-1"], "timeouts": {"px-1": 3.0}}
    )
    async with hub, target, stranger:
        hub_addr = await hub.listen("127.0.0.1:0")
        bound = await target.listen("127.0.0.1:0")
        await target.dial(hub_addr)
        await stranger.dial(hub_addr)
        for i in range(100):  # the hub learns the target's locators just after its AUTH_OK
            try:
                r = await stranger.resolve(target.principal)
                break
            except snap2p.Snap2pError as e:
                if i == 99 or e.code != ErrorCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.02)
        assert r.principal == target.principal
        assert r.name is None
        assert r.answered_by == "px-1"
        assert [(loc.locator, loc.verified) for loc in r.locators] == [(bound, False)]
        assert [(s.name, s.outcome, s.count, s.code, s.error) for s in r.steps] == [
            ("cache", "not_found", 0, 0, None),
            ("px-1", "found", 1, 0, None),
        ]
        assert all(0 <= s.duration <= r.duration + 1e-6 for s in r.steps)
        # The hint is dialed with the principal expected: AUTH proves who is there.
        conn = await stranger.dial(r.locators[0].locator, expect=target.principal)
        assert conn.remote_principal == target.principal


async def test_nothing_found_and_bad_targets() -> None:
    lonely = await snap2p.Peer.create(resolver={"steps": ["cache", "px-1", "mdns", "bns"]})
    nobody = await snap2p.Peer.create()
    async with lonely, nobody:
        for target in (nobody.principal, nobody.principal.removeprefix("stacks:")):
            with pytest.raises(snap2p.Snap2pError) as e:
                await lonely.resolve(target)
            assert e.value.code == ErrorCode.NOT_FOUND, e.value
            assert "asked: cache, px-1" in e.value.message
        with pytest.raises(snap2p.Snap2pError):
            await lonely.resolve("not a principal")
        with pytest.raises(snap2p.Snap2pError) as e:
            await lonely.resolve("alice.btc")  # a name, no providers
        assert e.value.code == ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "resolver",
    [
        {"steps": ["cache", "nope"]},
        {"steps": ["cache", "cache"]},
        {"steps": ["cache"], "timeouts": {"dht": 1.0}},
        {"timeouts": {"px-1": 0}},
        {"timeouts": {"px-1": -1.0}},
        {"bns_providers": ["not a url"]},
        {"unknown": True},
        {"steps": "cache"},
        {"mdns": 1},
        "cache",
    ],
)
async def test_bad_resolver_options(resolver: object) -> None:
    with pytest.raises(snap2p.Snap2pError) as e:
        await snap2p.Peer.create(resolver=resolver)  # type: ignore[arg-type]
    assert e.value.code == ErrorCode.INVALID_ARGUMENT, e.value


async def test_bns_name_agree_and_disagree(apis: list[StacksApi]) -> None:
    owner = await snap2p.Peer.create()
    async with owner:
        bound = await owner.listen("127.0.0.1:0")
        doc = name_document(owner.principal, [bound])
        agree = [await api(apis, doc), await api(apis, doc)]
        peer = await snap2p.Peer.create(
            resolver={"bns_providers": agree, "steps": ["cache", "px-1"]}
        )
        async with peer:
            r = await peer.resolve("Alice.BTC")
            assert r.name == "alice.btc"
            assert r.principal == owner.principal
            assert r.answered_by == "bns-name"
            # A zonefile is a hint: only AUTH proves the owner is there.
            assert [(loc.locator, loc.verified) for loc in r.locators] == [(bound, False)]
            assert [(s.name, s.outcome, s.count) for s in r.steps] == [("bns-name", "found", 1)]
            conn = await peer.dial(r.locators[0].locator, expect=r.principal)
            assert conn.remote_principal == owner.principal

        other = name_document(owner.principal, ["203.0.113.9:4000"])
        missing = [await api(apis, None), await api(apis, None)]
        cases = [
            ([agree[0], await api(apis, other)], ErrorCode.PROVIDERS_DISAGREE),
            ([agree[0], missing[0]], ErrorCode.PROVIDERS_DISAGREE),
            (missing, ErrorCode.NOT_FOUND),
        ]
        assert ErrorCode.PROVIDERS_DISAGREE == 26
        for providers, code in cases:
            p = await snap2p.Peer.create(resolver={"bns_providers": providers})
            async with p:
                with pytest.raises(snap2p.Snap2pError) as e:
                    await p.resolve("alice.btc")
                assert e.value.code == code, e.value
