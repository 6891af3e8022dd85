#!/usr/bin/env python3
"""Cross-language interop matrix: every listener language x every dialer language.

Each language ships a runner speaking the contract in docs/INTEROP.md. This script starts
the runners, runs the scenarios for all ordered pairs, prints the matrix and a closing
"N passed, N failed" line, and writes docs/INTEROP.md's results section.

Usage: ci/interop.py [--langs rust,node,...] [--bytes N] [--write-doc]
Runner commands come from environment variables SNAP2P_RUNNER_<LANG> (a shell-quoted
command line); ci/steps/80-interop.sh sets them after building each package.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

LANGS = ["rust", "node", "python", "kotlin", "swift"]
# Dialer-only languages and the scenarios they run: a browser peer does not listen and
# dials ws:// and wss:// only (examples/interop/browser/runner.mjs, headless Chromium).
DIAL_ONLY = {"browser": {"ws", "wss"}}
SCENARIOS = [
    ("auth", "mutual auth + 3 streams x payload, SHA-256 both ends"),
    ("alias", "listener's AliasCard seen by the dialer"),
    ("stealth-ok", "stealth listener accepts a valid invite"),
    ("stealth-bad", "stealth listener refuses a bad invite (5)"),
    ("private", "private listener refuses a principal not allowlisted (4)"),
    ("px1", "dial by principal through a third peer (PX-1)"),
    ("ws", "mutual auth + 3 streams x payload over ws://, SHA-256 both ends"),
    ("wss", "the same over wss:// (TLS; the dialer trusts the run's test CA), SHA-256 both ends"),
    ("grant", "listener permits only *:public: catalog refused (20), then admitted by a grant "
              "the dialer's language signs with the owner wallet; SHA-256 both ends"),
    ("relay", "mutual auth + 3 streams x payload through a Rust relay (relay://…/SP…), "
              "transport relay at both ends, SHA-256 both ends"),
    ("hs2", "the auth row's session ran hs2 at both ends (PROTOCOL.md §5.8); the dialer falls "
            "back to the listener's language run with hs2 off (--v1): v1 at both ends, one "
            "failed handshake there"),
]
# The grant scenario's owner wallet: account 0 of this mnemonic (that of core/tests/vectors/
# identity.json), known to the listener (its grant owner) and to the dialer (who signs).
GRANT_OWNER_MNEMONIC = (
    "seminar surround scheme bottom pizza champion fatal side outer render harsh awake wink "
    "lyrics panel flat journey grit target scrap history dove emerge custom"
)
GRANT_LABEL = "catalog"
READY_TIMEOUT = 60
DIAL_TIMEOUT = 120


class Runner:
    """A listening runner process; reads its JSON lines in a thread."""

    def __init__(self, cmd, args, mode="listen"):
        self.proc = subprocess.Popen(
            cmd + [mode] + args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready = None
        self.events = []
        self.stderr = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cv:
                if ev.get("event") == "ready":
                    self.ready = ev
                self.events.append(ev)
                self._cv.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_ready(self):
        deadline = time.time() + READY_TIMEOUT
        with self._cv:
            while self.ready is None and time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                self._cv.wait(0.2)
        if self.ready is None:
            raise RuntimeError(
                "runner never became ready: " + "".join(self.stderr[-20:])
            )
        return self.ready

    def connection_events(self):
        """The `connection` events this runner has printed so far."""
        with self._cv:
            return [e for e in self.events if e.get("event") == "connection"]

    def connections(self):
        """How many `connection` events this runner has printed so far."""
        return len(self.connection_events())

    def connections_after(self, before, timeout=5):
        """The `connection` events printed after the first `before`, once there is one
        (waits up to `timeout` s: the event may trail the dialer's result)."""
        deadline = time.time() + timeout
        with self._cv:
            while True:
                seen = self.connection_events()[before:]
                if seen or time.time() >= deadline:
                    return seen
                self._cv.wait(0.05)

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def dial(cmd, args):
    """Runs a dialer; returns (ok, result dict, stderr tail)."""
    try:
        p = subprocess.run(
            cmd + ["dial"] + args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DIAL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return False, {"error": "timeout"}, ""
    result = {}
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            if ev.get("event") == "result":
                result = ev
    ok = p.returncode == 0 and bool(result.get("ok"))
    return ok, result, p.stderr[-2000:]


def make_tls(d):
    """A throw-away CA and a leaf for localhost / 127.0.0.1 signed by it, made by openssl in
    `d` (once per run): {"ca", "cert", "key"} PEM paths."""
    p = lambda name: os.path.join(d, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
            "-subj", "/CN=snap2p interop CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *ec, "-keyout", p("key.pem"), "-out", p("leaf.csr"), "-subj", "/CN=localhost")
    with open(p("leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p("cert.pem"), "-days", "2", "-extfile", p("leaf.ext"))
    return {"ca": p("ca.pem"), "cert": p("cert.pem"), "key": p("key.pem")}


def hs2_pair(dcmd, auth, auth_conns, v1, v1_runner):
    """The hs2 scenario for one pair: (ok, detail). `auth` is the auth row's dial (ok,
    result), `auth_conns` the public listener's `connection` events since it began."""
    ok, res = auth
    if not ok:
        return False, "the auth row failed"
    there = [e.get("hs2") for e in auth_conns]
    if res.get("hs2") is not True or there[:1] != [True]:
        return False, "auth session: dialer hs2=%r, listener %r" % (res.get("hs2"), there)
    # Each dialer process is a new peer with no memory of v1 listeners: its offer is met
    # by a silent close, then it dials again with v1 at once.
    earlier = v1_runner.connection_events()
    before = len(earlier)
    # Its failed handshakes as of its last session (each one counted the offer before it).
    failed_before = earlier[-1].get("handshakes_failed") if earlier else 0
    ok, res, err = dial(
        dcmd,
        ["--target", v1["locator"], "--bytes", "1024", "--expect-principal", v1["principal"]],
    )
    if not ok:
        return False, "dial to the --v1 listener: " + (res.get("error") or err[-300:])
    seen = v1_runner.connections_after(before)
    if res.get("hs2") is not False or [e.get("hs2") for e in seen] != [False]:
        return False, "dialer hs2=%r, --v1 listener's connections %r" % (res.get("hs2"), seen)
    if seen[0].get("handshakes_failed") != failed_before + 1:
        return False, "--v1 listener's failed handshakes %r -> %r (one offer refused expected)" % (
            failed_before, seen[0].get("handshakes_failed"))
    return True, ""


def grant_pair(dcmd, listener, runner):
    """The grant scenario for one pair: (ok, detail)."""
    ok, res, err = dial(
        dcmd,
        [
            "--target", listener["locator"],
            "--grant-label", GRANT_LABEL,
            "--grant-owner-mnemonic", GRANT_OWNER_MNEMONIC,
            "--streams", "1",
            "--bytes", str(1024 * 1024),
            "--expect-principal", listener["principal"],
        ],
    )
    if not ok:
        return False, res.get("error") or "refused_code=%r %s" % (res.get("refused_code"), err[-300:])
    if res.get("refused_code") != 20:
        return False, "refused_code=%r, want 20" % res.get("refused_code")
    streams = res.get("streams", [])
    if len(streams) != 1 or not streams[0].get("match"):
        return False, "streams=%r" % streams
    # The listener's own record of the granted stream: label and digest agree.
    digest = streams[0].get("sha256")
    deadline = time.time() + 5
    while time.time() < deadline:
        with runner._cv:
            seen = [e for e in runner.events if e.get("event") == "stream"
                    and e.get("label") == GRANT_LABEL and e.get("sha256") == digest]
        if seen:
            return True, ""
        time.sleep(0.05)
    return False, "listener printed no %s stream with sha256 %s" % (GRANT_LABEL, digest)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--langs", default=",".join(LANGS))
    ap.add_argument("--bytes", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--write-doc", action="store_true")
    opts = ap.parse_args()
    langs = [l for l in opts.langs.split(",") if l]
    cmds = {}
    for lang in langs:
        env = os.environ.get("SNAP2P_RUNNER_" + lang.upper())
        if env:
            cmds[lang] = shlex.split(env)
    missing = [l for l in langs if l not in cmds]

    results = {}  # (listener, dialer, scenario) -> (ok, detail)
    started = time.time()
    # The wss scenario's certificates, made once per run; without them its rows fail.
    tls_dir = tempfile.mkdtemp(prefix="snap2p-interop-tls-")
    try:
        tls, tls_error = make_tls(tls_dir), None
    except (OSError, subprocess.CalledProcessError) as e:
        tls, tls_error = None, "no test certificate (openssl): %s" % e
    hub = None
    if "rust" in cmds:
        hub = Runner(cmds["rust"], ["--alias", "hub"])
        hub_ready = hub.wait_ready()
    # The relay scenario's relay: the Rust runner serving RELAY-1.
    relay, relay_ready, relay_error = None, None, "no rust runner for the relay"
    if "rust" in cmds:
        relay = Runner(cmds["rust"], [], mode="relay")
        try:
            relay_ready, relay_error = relay.wait_ready(), None
        except RuntimeError as e:
            relay_error = "relay failed: " + str(e)[:200]
    listen_langs = [l for l in langs if l not in DIAL_ONLY]
    for lst in listen_langs:
        for dl in langs:
            for sc, _ in SCENARIOS:
                if sc in DIAL_ONLY.get(dl, {sc}):
                    results[(lst, dl, sc)] = (False, "runner not built")
        if lst not in cmds:
            continue
        lcmd = cmds[lst]
        alias = "l-" + lst
        listeners = {}
        try:
            listeners["public"] = Runner(lcmd, ["--alias", alias, "--sign-form", "message"])
            # One stealth listener per dialer: each pair's invite and refusals stay its own
            # (every dialer here comes from 127.0.0.1).
            for dl in langs:
                if dl in cmds and dl not in DIAL_ONLY:
                    listeners["stealth-" + dl] = Runner(lcmd, ["--visibility", "stealth", "--invite"])
            # The allowlisted principal is the listener's own: any dialer is refused.
            listeners["private"] = Runner(lcmd, ["--visibility", "private"])
            listeners["ws"] = Runner(lcmd, ["--ws"])
            listeners["v1"] = Runner(lcmd, ["--v1"])
            listeners["grant"] = Runner(
                lcmd, ["--permit", "*:public", "--grant-owner-mnemonic", GRANT_OWNER_MNEMONIC]
            )
            if hub:
                listeners["px1"] = Runner(lcmd, ["--bootstrap", hub_ready["locator"]])
            ready = {k: r.wait_ready() for k, r in listeners.items()}
        except RuntimeError as e:
            for dl in langs:
                for sc, _ in SCENARIOS:
                    if (lst, dl, sc) in results:
                        results[(lst, dl, sc)] = (False, "listener failed: " + str(e)[:200])
            for r in listeners.values():
                r.stop()
            continue
        # The wss listener on its own: a runner without --wss/--tls-* fails these rows only.
        wss_ready, wss_error = None, tls_error
        if tls:
            try:
                listeners["wss"] = Runner(
                    lcmd, ["--wss", "--tls-cert", tls["cert"], "--tls-key", tls["key"]]
                )
                wss_ready = listeners["wss"].wait_ready()
            except RuntimeError as e:
                wss_error = "wss listener failed: " + str(e)[:200]
        # The relayed listener on its own: a failure there fails the relay rows only.
        relayed_ready, relayed_error = None, relay_error
        if relay_ready:
            try:
                listeners["relay"] = Runner(lcmd, ["--relay", relay_ready["locator"]])
                relayed_ready = listeners["relay"].wait_ready()
            except RuntimeError as e:
                relayed_error = "relayed listener failed: " + str(e)[:200]
        for dl in langs:
            if dl not in cmds:
                continue
            dcmd = cmds[dl]

            def three_streams(listener, extra=()):
                """Mutual auth + 3 streams x payload to `listener`, SHA-256 both ends."""
                ok, res, err = dial(
                    dcmd,
                    [
                        "--target", listener["locator"],
                        "--streams", "3",
                        "--bytes", str(opts.bytes),
                        "--expect-principal", listener["principal"],
                        *extra,
                    ],
                )
                streams_ok = ok and len(res.get("streams", [])) == 3
                return ok, res, (streams_ok, res.get("error") or err[-300:])

            if dl in DIAL_ONLY:
                ws = ready["ws"]
                _, _, (ws_ok, detail) = three_streams(ws)
                results[(lst, dl, "ws")] = (ws_ok and ws["locator"].startswith("ws://"), detail)
                if "wss" in DIAL_ONLY[dl]:
                    if wss_ready is None:
                        results[(lst, dl, "wss")] = (False, wss_error)
                    else:
                        _, _, (wss_ok, detail) = three_streams(wss_ready, ["--tls-root", tls["ca"]])
                        results[(lst, dl, "wss")] = (wss_ok, detail)
                continue
            pub = ready["public"]
            before = listeners["public"].connections()
            ok, res, results[(lst, dl, "auth")] = three_streams(pub)
            results[(lst, dl, "hs2")] = hs2_pair(
                dcmd, (ok, res), listeners["public"].connections_after(before),
                ready["v1"], listeners["v1"],
            )
            alias_ok = ok and res.get("alias") == alias
            if ok and not alias_ok:
                # The card may trail AUTH_OK; ask again with an explicit expectation.
                ok2, res2, err2 = dial(
                    dcmd, ["--target", pub["locator"], "--expect-alias", alias]
                )
                alias_ok = ok2
            results[(lst, dl, "alias")] = (alias_ok, "alias=%r" % res.get("alias"))
            st = ready["stealth-" + dl]
            ok, res, err = dial(
                dcmd, ["--target", st["locator"], "--invite", st["invite"], "--bytes", "1024"]
            )
            results[(lst, dl, "stealth-ok")] = (ok, res.get("error") or err[-300:])
            ok, res, err = dial(
                dcmd,
                ["--target", st["locator"], "--invite", "ab" * 32, "--expect-code", "5"],
            )
            results[(lst, dl, "stealth-bad")] = (ok, "code=%r" % res.get("code"))
            pv = ready["private"]
            ok, res, err = dial(dcmd, ["--target", pv["locator"], "--expect-code", "4"])
            results[(lst, dl, "private")] = (ok, "code=%r" % res.get("code"))
            if "px1" in ready:
                px = ready["px1"]
                ok, res, err = dial(
                    dcmd,
                    [
                        "--via", hub_ready["locator"],
                        "--target", px["principal"],
                        "--bytes", "1024",
                        "--expect-principal", px["principal"],
                    ],
                )
                results[(lst, dl, "px1")] = (ok, res.get("error") or err[-300:])
            else:
                results[(lst, dl, "px1")] = (False, "no rust hub")
            ws = ready["ws"]
            _, _, (ws_ok, detail) = three_streams(ws)
            results[(lst, dl, "ws")] = (ws_ok and ws["locator"].startswith("ws://"), detail)
            if wss_ready is None:
                results[(lst, dl, "wss")] = (False, wss_error)
            elif not wss_ready["locator"].startswith("wss://localhost:"):
                results[(lst, dl, "wss")] = (
                    False,
                    "listener printed %r, not a wss://localhost: locator" % wss_ready["locator"],
                )
            else:
                _, _, (wss_ok, detail) = three_streams(wss_ready, ["--tls-root", tls["ca"]])
                results[(lst, dl, "wss")] = (wss_ok, detail)
            results[(lst, dl, "grant")] = grant_pair(dcmd, ready["grant"], listeners["grant"])
            if relayed_ready is None:
                results[(lst, dl, "relay")] = (False, relayed_error)
            elif not relayed_ready["locator"].startswith("relay://"):
                results[(lst, dl, "relay")] = (
                    False, "listener printed %r, not a relay:// locator" % relayed_ready["locator"])
            else:
                r = listeners["relay"]
                before = r.connections()
                _, res, (relay_ok, detail) = three_streams(
                    relayed_ready, ["--expect-transport", "relay"])
                if relay_ok:
                    # The listener's end of that session: a relayed one too.
                    seen = [e.get("transport") for e in r.connections_after(before)]
                    if seen != ["relay"]:
                        relay_ok, detail = False, "listener's connections: %r" % seen
                elif res.get("transport") not in (None, "relay"):
                    detail = "dialer's transport %r; %s" % (res.get("transport"), detail)
                results[(lst, dl, "relay")] = (relay_ok, detail)
        for r in listeners.values():
            r.stop()
    if hub:
        hub.stop()
    if relay:
        relay.stop()
    shutil.rmtree(tls_dir, ignore_errors=True)

    # Report.
    passed = sum(1 for v in results.values() if v[0])
    failed = len(results) - passed
    header = "| listener → dialer | " + " | ".join(s for s, _ in SCENARIOS) + " |"
    lines = [header, "|" + " --- |" * (len(SCENARIOS) + 1)]
    for lst in listen_langs:
        for dl in langs:
            cells = [
                "n/a" if (lst, dl, s) not in results
                else "pass" if results[(lst, dl, s)][0] else "**FAIL**"
                for s, _ in SCENARIOS
            ]
            lines.append("| %s → %s | %s |" % (lst, dl, " | ".join(cells)))
    table = "\n".join(lines)
    print(table)
    print()
    for (lst, dl, sc), (ok, detail) in sorted(results.items()):
        if not ok:
            print("FAIL %s -> %s %s: %s" % (lst, dl, sc, (detail or "").strip()[:300]))
    if missing:
        print("runners not built: " + ", ".join(missing))
    elapsed = time.time() - started
    print("interop: %d passed, %d failed" % (passed, failed))
    if opts.write_doc:
        write_doc(table, passed, failed, elapsed, opts.bytes, missing)
    return 0 if failed == 0 else 1


def write_doc(table, passed, failed, elapsed, nbytes, missing):
    path = os.path.join(os.path.dirname(__file__), "..", "docs", "INTEROP.md")
    with open(path) as f:
        text = f.read()
    marker = "<!-- results -->"
    head = text.split(marker)[0]
    legend = "\n".join("- **%s**: %s" % (s, d) for s, d in SCENARIOS)
    body = (
        "%s\n\nLast run: %s UTC, %d bytes per stream, %.0f s.\n\n%s\n\n%s\n\n"
        "interop: %d passed, %d failed\n"
        % (
            marker,
            time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            nbytes,
            elapsed,
            legend,
            table,
            passed,
            failed,
        )
    )
    if missing:
        body += "\nRunners not built in that run: %s\n" % ", ".join(missing)
    with open(path, "w") as f:
        f.write(head + body)


if __name__ == "__main__":
    sys.exit(main())
