// The test page's half of the browser runner (examples/interop/browser/runner.mjs) and of
// ci/steps/85-browser.sh: `window.runDial(options)` runs one `runner dial` of
// docs/INTEROP.md's contract inside the page, with the npm browser entry (/pkg/index.js).
// The user's wallet is a stand-in SIP-030 provider object answering `stx_signMessage` with
// a real key (an extension cannot run headless), reached through `walletSigner`, so the
// node key's attestation is signed the way Leather or Xverse would sign it.
import * as snap2p from '/pkg/index.js';

const { Peer, KeySigner, walletSigner, bytesToHex } = snap2p;

/**
 * A stand-in for a wallet extension's provider: same request and answer shapes. `shape`:
 * how its signature is laid out, as wallets send it: `rsv` (r ‖ s ‖ v, v 0..3), `rsv27`
 * (v as a bitcoin-style header, 27 + recovery id) or `vrs27` (header first).
 */
export function standInProvider(key, shape = 'rsv') {
  const calls = [];
  return {
    calls,
    async request(method, params) {
      calls.push({ method, params });
      if (method !== 'stx_signMessage') {
        return { jsonrpc: '2.0', id: calls.length, error: { code: -32601, message: `no ${method}` } };
      }
      if (typeof params?.message !== 'string') {
        return { jsonrpc: '2.0', id: calls.length, error: { code: -32602, message: 'no message' } };
      }
      const rsv = key.signMessage(params.message);
      const v = rsv[64];
      const sig =
        shape === 'rsv27'
          ? Uint8Array.of(...rsv.subarray(0, 64), v + 27)
          : shape === 'vrs27'
            ? Uint8Array.of(v + 27, ...rsv.subarray(0, 64))
            : rsv;
      const signature = bytesToHex(sig);
      return { jsonrpc: '2.0', id: calls.length, result: { signature, publicKey: key.publicKey } };
    },
  };
}

function randomBytes(n) {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, Math.min(n, o + 65536)));
  return out;
}

async function sha256Hex(bytes) {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

/** One dial of the runner contract; resolves to its result object. */
window.runDial = async (o) => {
  const key = o.mnemonic ? KeySigner.fromMnemonic(o.mnemonic) : KeySigner.generate();
  const provider = standInProvider(key, o.sigShape);
  const signer = o.signer === 'key' ? key : walletSigner({ principal: key.principal, provider });
  const peer = await Peer.create({ signer, alias: o.alias });
  const result = { event: 'result', ok: false, principal: null, alias: null, code: null, streams: [] };
  result.self = peer.principal;
  result.selfAlias = peer.alias?.alias ?? null;
  result.walletCalls = provider.calls.map((c) => c.method);
  let conn;
  const t0 = performance.now();
  try {
    conn = await peer.dial(o.target, {
      invite: o.invite,
      expect: o.expectPrincipal,
      relay: o.relay,
      splice: o.splice ?? true,
    });
  } catch (e) {
    result.code = e.code ?? null;
    result.error = `${e.name}: ${e.message}`;
    result.ok = o.expectCode != null && e.code === o.expectCode;
    return result;
  }
  result.handshakeMs = performance.now() - t0;
  // `dials`: more dials of the same target from this page first, each closed once
  // authenticated (the v1 fallback's memory, docs/PROTOCOL.md §5.8); the last one is used.
  result.dialsOk = 1;
  for (let i = 1; i < (o.dials ?? 1); i++) {
    conn.close();
    await conn.waitClosed();
    try {
      conn = await peer.dial(o.target, { invite: o.invite, expect: o.expectPrincipal });
    } catch (e) {
      result.code = e.code ?? null;
      result.error = `dial ${i + 1}: ${e.name}: ${e.message}`;
      return result;
    }
    result.dialsOk += 1;
  }
  result.principal = conn.remotePrincipal;
  result.sessionId = conn.sessionId;
  result.relay = conn.relay;
  // Sessions of this page: through a relay, the one with the relay and the circuit's.
  result.connections = peer.connections().map((c) => c.remotePrincipal);
  if (o.expectCode != null) {
    result.error = `dial succeeded, expected code ${o.expectCode}`;
    conn.close();
    return result;
  }
  if (o.expectAlias) {
    const deadline = performance.now() + 5000;
    while (!conn.remoteAlias && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  result.alias = conn.remoteAlias?.alias ?? null;
  const n = o.streams ?? 1;
  const bytes = o.bytes ?? 1024;
  try {
    const t1 = performance.now();
    result.streams = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const label = `interop-${i}`;
        const data = randomBytes(bytes);
        const mine = await sha256Hex(data);
        const s = conn.openStream(label);
        const reader = s.readAll(1024);
        // The WHATWG side: write through the WritableStream, then close it (FIN).
        const w = s.writable.getWriter();
        for (let off = 0; off < data.length; off += 256 * 1024) {
          await w.write(data.subarray(off, Math.min(data.length, off + 256 * 1024)));
        }
        await w.close();
        const theirs = new TextDecoder().decode(await reader).trim();
        return { label, bytes, sha256: mine, remote: theirs, match: theirs === mine };
      }),
    );
    result.transferMs = performance.now() - t1;
  } catch (e) {
    result.code = e.code ?? null;
    result.error = `${e.name}: ${e.message}`;
    conn.close();
    return result;
  }
  result.ok =
    result.streams.every((s) => s.match) &&
    (!o.expectPrincipal || result.principal === snap2p.formatPrincipal(o.expectPrincipal)) &&
    (!o.expectAlias || result.alias === o.expectAlias);
  conn.close();
  await conn.waitClosed();
  return result;
};

/**
 * core/tests/vectors/wallet-signatures.json through the wasm core: each case's signature
 * normalised (hex) or its error name, for the suite to compare with the file.
 */
window.runVectors = async (v) => ({
  ok: true,
  results: v.cases.map((c) => {
    try {
      const sig = Uint8Array.from(c.signature.match(/../g) ?? [], (h) => parseInt(h, 16));
      return { name: c.name, normalized: bytesToHex(snap2p.normalizeWalletSignature(c.message, v.principal, sig)) };
    } catch (e) {
      return { name: c.name, error: e.name };
    }
  }),
});

window.snap2p = snap2p;
window.standInProvider = standInProvider;
document.getElementById('status').textContent = 'ready';
window.pageReady = true;
