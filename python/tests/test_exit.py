"""Interpreter exit right after binding work is clean (issue 7).

A Rust future's result reaches asyncio from a core thread that is still inside Python for a
moment after the awaiting coroutine resumed. When that coroutine was the program's last, the
interpreter used to finalize under that thread's feet: about one exit in six crashed
("Fatal Python error: PyGILState_Release", or SIGSEGV) after a dial by principal. Each run
here is a fresh interpreter doing exactly that and then returning normally.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, hashlib, os, sys
    import snap2p

    class Signer:  # an async host signer: completions cross threads both ways
        def __init__(self):
            self.wallet = snap2p.LocalWallet.generate()
            self.principal = self.wallet.principal
        async def sign(self, request):
            return self.wallet.sign_digest(request.digest)

    async def echo(stream):
        data = b"".join([c async for c in stream])
        stream.write(hashlib.sha256(data).digest())
        stream.close()
        await stream.drain()

    async def serve(conn):
        async for stream in conn.streams():
            asyncio.ensure_future(echo(stream))

    async def main():
        hub = await snap2p.Peer.create()
        hub_addr = await hub.listen("127.0.0.1:0")
        target = await snap2p.Peer.create(signer=Signer())
        await target.listen("127.0.0.1:0")
        serving = target.on_connection(serve)  # noqa: F841 (dropping it would stop it)
        await target.dial(hub_addr)
        dialer = await snap2p.Peer.create(signer=Signer())
        await dialer.dial(hub_addr)
        for _ in range(100):  # the hub learns the target's hints after its AUTH_OK
            try:
                conn = await dialer.dial(target.principal)
                break
            except snap2p.Snap2pError:
                await asyncio.sleep(0.02)
        else:
            sys.exit("could not dial by principal")
        assert conn.remote_principal == target.principal
        stream = await conn.open_stream("x")
        payload = os.urandom(4096)
        stream.write(payload)
        stream.close()
        await stream.drain()
        assert await stream.read() == hashlib.sha256(payload).digest()
        # No peer.close(): exiting with live sessions and tasks must be clean too.
        if sys.argv[1] == "close":
            for p in (dialer, target, hub):
                await p.close()

    asyncio.run(main())
    print("done", flush=True)
    """
)


def test_exit_after_dial_by_principal_is_clean() -> None:
    failures = []
    for i in range(48):
        mode = "close" if i % 2 else "leave"
        r = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if r.returncode != 0 or r.stdout.strip() != "done":
            failures.append((i, mode, r.returncode, r.stderr[-600:]))
    assert not failures, failures
