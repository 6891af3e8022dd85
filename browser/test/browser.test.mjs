// Real headless Chromium against native listeners (ci/steps/85-browser.sh; issue 31): the
// page dials with the npm browser entry (wasm core), its attestation signed through
// `walletSigner` by a stand-in wallet provider holding a real key. Listeners are the interop
// runners of docs/INTEROP.md (SNAP2P_RUNNER_RUST, _NODE, _PYTHON: whichever are set), so each
// listener also reports the SHA-256 of every stream it read.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, describe, test } from 'node:test';
import { runInChromium } from './chromium.mjs';

const BYTES = Number(process.env.SNAP2P_BROWSER_BYTES ?? 4 * 1024 * 1024);
const LANGS = ['rust', 'node', 'python'].filter((l) => process.env[`SNAP2P_RUNNER_${l.toUpperCase()}`]);
const ERR = { NOT_ALLOWED: 4, INVITE_INVALID: 5, INVITE_REQUIRED: 18, STREAM_REFUSED: 20, PRINCIPAL_MISMATCH: 23 };
const VECTORS = new URL('../../core/tests/vectors/wallet-signatures.json', import.meta.url);

/** A listening runner: resolves once it printed `ready`; `events` collects its lines. */
function listen(lang, args) {
  const cmd = process.env[`SNAP2P_RUNNER_${lang.toUpperCase()}`].split(' ');
  const proc = spawn(cmd[0], [...cmd.slice(1), 'listen', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const r = { proc, events: [], stderr: '' };
  proc.stderr.on('data', (d) => (r.stderr += d));
  r.ready = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${lang} listener not ready: ${r.stderr.slice(-500)}`)), 60000);
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const ev = JSON.parse(line);
      r.events.push(ev);
      if (ev.event === 'ready') {
        clearTimeout(t);
        resolve(ev);
      }
    });
    proc.on('exit', (code) => reject(new Error(`${lang} listener exited ${code}: ${r.stderr.slice(-500)}`)));
  });
  r.stop = () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.on('exit', resolve);
      proc.stdin.end();
      setTimeout(() => proc.kill('SIGKILL'), 10000).unref();
    });
  return r;
}

const running = [];
after(async () => {
  await Promise.all(running.map((r) => r.stop()));
});
async function listener(lang, args) {
  const r = listen(lang, args);
  running.push(r);
  return { r, ready: await r.ready };
}

/** The listener printed a `stream` line with this digest for each of the page's streams. */
async function listenerSaw(r, streams) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const seen = r.events.filter((e) => e.event === 'stream').map((e) => e.sha256);
    if (streams.every((s) => seen.includes(s.sha256))) return;
    if (Date.now() > deadline) assert.fail(`listener digests ${seen} lack ${streams.map((s) => s.sha256)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

function makeTls() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2p-browser-tls-'));
  const p = (n) => path.join(d, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ssl = (...a) => execFileSync('openssl', a, { stdio: 'pipe' });
  ssl('req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=snap2p browser test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ssl('req', ...ec, '-keyout', p('key.pem'), '-out', p('leaf.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(p('leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', p('leaf.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('cert.pem'),
    '-days', '2', '-extfile', p('leaf.ext'));
  return { dir: d, ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') };
}

test('at least the Rust listener runner is set', () => {
  assert.ok(LANGS.includes('rust'), 'SNAP2P_RUNNER_RUST must name the Rust interop runner');
});

for (const lang of LANGS) {
  describe(`browser → ${lang} listener`, () => {
    test('ws: wallet-signed attestation, mutual auth, 3 streams × 4 MiB, SHA-256 both ends', async () => {
      const { r, ready } = await listener(lang, ['--ws', '--alias', `l-${lang}`]);
      assert.match(ready.locator, /^ws:\/\//);
      const res = await runInChromium({
        target: ready.locator, streams: 3, bytes: BYTES, expectPrincipal: ready.principal, expectAlias: `l-${lang}`,
        alias: `Page-${lang}`,
      });
      assert.equal(res.error, undefined, JSON.stringify(res));
      assert.ok(res.ok, JSON.stringify(res));
      assert.equal(res.principal, ready.principal);
      assert.equal(res.alias, `l-${lang}`);
      assert.deepEqual(res.walletCalls, ['stx_signMessage', 'stx_signMessage'], 'attestation and AliasCard went through the wallet adapter');
      assert.equal(res.streams.length, 3);
      for (const s of res.streams) assert.equal(s.bytes, BYTES);
      await listenerSaw(r, res.streams);
      // The page's AliasCard (alias normalised by the core, signed through the wallet: a
      // second stx_signMessage) reached the listener; the Rust runner prints it.
      assert.equal(res.selfAlias, `page-${lang}`);
      if (lang === 'rust') {
        const aliases = r.events.filter((e) => e.event === 'stream').map((e) => e.alias);
        assert.deepEqual(aliases, [`page-${lang}`, `page-${lang}`, `page-${lang}`]);
      }
      // The listener saw the browser's principal (the wallet's), over ws.
      const conn = r.events.find((e) => e.event === 'connection');
      assert.equal(conn?.principal, res.self);
      console.log(`# ${lang} ws: handshake ${res.handshakeMs.toFixed(1)} ms, 3 × ${BYTES} B in ${res.transferMs.toFixed(0)} ms`);
    });

    test('stealth ws listener: admitted with the invite, 18 without, 5 with a wrong one', async () => {
      const { ready } = await listener(lang, ['--ws', '--visibility', 'stealth', '--invite']);
      const ok = await runInChromium({ target: ready.locator, invite: ready.invite, bytes: 1024, expectPrincipal: ready.principal });
      assert.ok(ok.ok, JSON.stringify(ok));
      const none = await runInChromium({ target: ready.locator, expectCode: ERR.INVITE_REQUIRED });
      assert.equal(none.code, ERR.INVITE_REQUIRED, JSON.stringify(none));
      const bad = await runInChromium({ target: ready.locator, invite: 'ab'.repeat(32), expectCode: ERR.INVITE_INVALID });
      assert.equal(bad.code, ERR.INVITE_INVALID, JSON.stringify(bad));
    });

    test('private ws listener refuses a principal not on its allowlist (4)', async () => {
      const { ready } = await listener(lang, ['--ws', '--visibility', 'private']);
      const res = await runInChromium({ target: ready.locator, expectCode: ERR.NOT_ALLOWED });
      assert.equal(res.code, ERR.NOT_ALLOWED, JSON.stringify(res));
    });

    test('expect: another principal than the listener is 23', async () => {
      const { ready } = await listener(lang, ['--ws']);
      const other = 'stacks:SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7';
      const res = await runInChromium({ target: ready.locator, expectPrincipal: other, expectCode: ERR.PRINCIPAL_MISMATCH });
      assert.equal(res.code, ERR.PRINCIPAL_MISMATCH, JSON.stringify(res));
    });

    test('wss with a test CA the browser trusts (NSS database): 3 streams × 4 MiB', async (t) => {
      let certutil = true;
      try {
        execFileSync('certutil', ['-H'], { stdio: 'ignore' });
      } catch (e) {
        certutil = e.code !== 'ENOENT';
      }
      if (!certutil) return t.skip('certutil (libnss3-tools) missing');
      const tls = makeTls();
      try {
        const { r, ready } = await listener(lang, ['--wss', '--tls-cert', tls.cert, '--tls-key', tls.key]);
        assert.match(ready.locator, /^wss:\/\/localhost:/);
        const res = await runInChromium(
          { target: ready.locator, streams: 3, bytes: BYTES, expectPrincipal: ready.principal },
          { tlsRoot: tls.ca },
        );
        assert.ok(res.ok, JSON.stringify(res));
        await listenerSaw(r, res.streams);
      } finally {
        fs.rmSync(tls.dir, { recursive: true, force: true });
      }
    });
  });
}

/** `snap2p relay` on TCP and WebSocket (SNAP2P_CLI); resolves to `{tcp, ws, principal}`. */
async function cliRelay(extra = []) {
  const proc = spawn(process.env.SNAP2P_CLI, ['--json', 'relay', '127.0.0.1:0', '--ws', '127.0.0.1:0', ...extra], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const r = { proc, events: [], stderr: '' };
  proc.stderr.on('data', (d) => (r.stderr += d));
  r.stop = () =>
    new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.on('exit', resolve);
      proc.kill('SIGINT');
      setTimeout(() => proc.kill('SIGKILL'), 10000).unref();
    });
  running.push(r);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`relay not ready: ${r.stderr.slice(-500)}`)), 60000);
    const addrs = [];
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const ev = JSON.parse(line);
      r.events.push(ev);
      if (ev.event !== 'relay') return;
      addrs.push(ev.addr);
      if (addrs.length === 2) {
        clearTimeout(t);
        const ws = addrs.find((a) => a.startsWith('ws://'));
        resolve({ r, ws, tcp: addrs.find((a) => a !== ws), principal: ev.principal });
      }
    });
    proc.on('exit', (code) => reject(new Error(`relay exited ${code}: ${r.stderr.slice(-500)}`)));
  });
}

/** The relay's counts once they show a circuit (it prints them every 5 s when changed). */
async function relayCounts(relay) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const last = relay.r.events.filter((e) => e.event === 'relay_stats' && e.circuits_total > 0).pop();
    if (last) return last;
    if (Date.now() > deadline) assert.fail(`no relay_stats with a circuit: ${JSON.stringify(relay.r.events)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('browser → native peer through a relay (relay+ws, docs/PROTOCOL.md §32)', { skip: !process.env.SNAP2P_CLI && 'SNAP2P_CLI not set' }, () => {
  for (const lang of LANGS) {
    test(`${lang} listener reserved on snap2p relay: spliced circuit, 3 streams, SHA-256 both ends`, async () => {
      const relay = await cliRelay();
      const { r, ready } = await listener(lang, ['--relay', relay.tcp, '--alias', `r-${lang}`]);
      assert.match(ready.locator, /^relay:\/\//);
      const res = await runInChromium({
        target: ready.principal, relay: relay.ws, streams: 3, bytes: BYTES, expectPrincipal: ready.principal,
        expectAlias: `r-${lang}`,
      });
      assert.equal(res.error, undefined, JSON.stringify(res));
      assert.ok(res.ok, JSON.stringify(res));
      assert.equal(res.principal, ready.principal);
      assert.equal(res.relay, relay.ws);
      // Two sessions in the page: the relay's (its principal) and the circuit's.
      assert.deepEqual(res.connections.sort(), [relay.principal, ready.principal].sort());
      await listenerSaw(r, res.streams);
      const conn = r.events.find((e) => e.event === 'connection' && e.principal === res.self);
      assert.equal(conn?.transport, 'relay', JSON.stringify(r.events));
      // The relay spliced the circuit (§32.3): the page's second WebSocket and the
      // listener's TCP connection, copied without the relay's own sessions in between.
      const counts = await relayCounts(relay);
      assert.equal(counts.spliced_total, counts.circuits_total, JSON.stringify(counts));
      console.log(`# relay → ${lang}: handshake ${res.handshakeMs.toFixed(1)} ms, 3 × ${BYTES} B in ${res.transferMs.toFixed(0)} ms`);
    });
  }

  test('relay+ws locator, circuit kept on the relay-1 stream (splice: false)', async () => {
    const relay = await cliRelay();
    const { r, ready } = await listener('rust', ['--relay', relay.tcp]);
    const locator = `relay+${relay.ws}/${ready.principal.replace('stacks:', '')}`;
    const res = await runInChromium({ target: locator, splice: false, streams: 2, bytes: 1 << 20, expectPrincipal: ready.principal });
    assert.ok(res.ok, JSON.stringify(res));
    await listenerSaw(r, res.streams);
    const counts = await relayCounts(relay);
    assert.equal(counts.spliced_total, 0, JSON.stringify(counts));
    assert.ok(counts.bytes_forwarded > 2 << 20, JSON.stringify(counts));
  });

  test('a relay that splices nothing (--no-splice) still carries the circuit', async () => {
    const relay = await cliRelay(['--no-splice']);
    const { r, ready } = await listener('rust', ['--relay', relay.tcp]);
    const res = await runInChromium({ target: ready.principal, relay: relay.ws, streams: 1, bytes: 1 << 20, expectPrincipal: ready.principal });
    assert.ok(res.ok, JSON.stringify(res));
    await listenerSaw(r, res.streams);
    assert.equal((await relayCounts(relay)).spliced_total, 0);
  });

  test('a principal without a reservation is refused by the relay (20)', async () => {
    const relay = await cliRelay();
    const nobody = 'stacks:SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7';
    const res = await runInChromium({ target: nobody, relay: relay.ws, expectCode: ERR.STREAM_REFUSED });
    assert.equal(res.code, ERR.STREAM_REFUSED, JSON.stringify(res));
  });
});

describe('wallet signature shapes (core/tests/vectors/wallet-signatures.json)', () => {
  test('every vector through the wasm core', async () => {
    const v = JSON.parse(fs.readFileSync(VECTORS, 'utf8'));
    const res = await runInChromium(v, { fn: 'runVectors' });
    assert.equal(res.results.length, v.cases.length);
    for (const [i, c] of v.cases.entries()) {
      const got = res.results[i];
      assert.equal(got.name, c.name);
      if (c.normalized) assert.equal(got.normalized, c.normalized, c.name);
      else assert.equal(got.error, c.error, c.name);
    }
  });

  for (const shape of ['rsv27', 'vrs27']) {
    test(`a wallet answering ${shape} (bitcoin-style header) signs attestation and AliasCard`, async () => {
      const { r, ready } = await listener('rust', ['--ws']);
      const res = await runInChromium({ target: ready.locator, sigShape: shape, alias: 'shape', bytes: 1024, expectPrincipal: ready.principal });
      assert.ok(res.ok, JSON.stringify(res));
      assert.deepEqual(res.walletCalls, ['stx_signMessage', 'stx_signMessage']);
      await listenerSaw(r, res.streams);
      assert.equal(r.events.find((e) => e.event === 'stream')?.alias, 'shape');
    });
  }

  // docs/PROTOCOL.md §5.8: a listener that speaks only v1 closes on the page's hs2 offer
  // without a word; the page dials again at once with v1 (without that, this dial fails with
  // ERR_CONNECTION_CLOSED), and a second dial from the same page goes straight to v1.
  test('a v1 listener: the hs2 offer is met by a close, and the page dials again with v1', async () => {
    const { r, ready } = await listener('rust', ['--ws', '--v1']);
    const res = await runInChromium({ target: ready.locator, bytes: 1024, dials: 2, expectPrincipal: ready.principal });
    assert.ok(res.ok, JSON.stringify(res));
    assert.equal(res.dialsOk, 2, JSON.stringify(res));
    await listenerSaw(r, res.streams);
    // Both sessions v1; one failed handshake on the listener, the first dial's offer.
    const conns = r.events.filter((e) => e.event === 'connection');
    assert.deepEqual(conns.map((e) => [e.hs2, e.handshakes_failed]), [[false, 1], [false, 1]]);
  });

  test('an hs2 listener: the session from the page is hs2, with no failed handshake', async () => {
    const { r, ready } = await listener('rust', ['--ws']);
    const res = await runInChromium({ target: ready.locator, bytes: 1024, expectPrincipal: ready.principal });
    assert.ok(res.ok, JSON.stringify(res));
    await listenerSaw(r, res.streams);
    const conns = r.events.filter((e) => e.event === 'connection');
    assert.deepEqual(conns.map((e) => [e.hs2, e.handshakes_failed]), [[true, 0]]);
  });
});

// docs/BENCHMARKS.md, "Browser": dial → authenticated in the page, and one stream
// browser → native over ws:// next to the Rust runner over ws:// to the same listener in
// the same run (both: dial start to the listener's digest checked, as the runner's `ms`).
// A figure, never an assertion: SNAP2P_BROWSER_BENCH=1 prints it.
if (process.env.SNAP2P_BROWSER_BENCH && LANGS.includes('rust')) {
  test('bench: one stream over ws, browser and native', async () => {
    const bytes = Number(process.env.SNAP2P_BROWSER_BENCH_BYTES ?? 64 * 1024 * 1024);
    const rounds = Number(process.env.SNAP2P_BROWSER_BENCH_ROUNDS ?? 3);
    const { ready } = await listener('rust', ['--ws']);
    const cmd = process.env.SNAP2P_RUNNER_RUST.split(' ');
    for (let i = 0; i < rounds; i++) {
      const b = await runInChromium({ target: ready.locator, streams: 1, bytes, expectPrincipal: ready.principal });
      assert.ok(b.ok, JSON.stringify(b));
      const browserMs = b.handshakeMs + b.transferMs;
      const out = execFileSync(cmd[0], [...cmd.slice(1), 'dial', '--target', ready.locator, '--streams', '1',
        '--bytes', String(bytes), '--expect-principal', ready.principal], { encoding: 'utf8', maxBuffer: 1 << 20 });
      const n = JSON.parse(out.trim().split('\n').filter((l) => l.includes('"result"')).pop());
      assert.ok(n.ok, out);
      const mibs = (ms) => (bytes / (1024 * 1024) / (ms / 1000)).toFixed(1);
      console.log(`# bench round ${i + 1}: browser handshake ${b.handshakeMs.toFixed(1)} ms, ` +
        `browser ${mibs(browserMs)} MiB/s (${browserMs.toFixed(0)} ms), native ${mibs(n.ms)} MiB/s (${n.ms} ms), ${bytes} B`);
    }
  });
}
