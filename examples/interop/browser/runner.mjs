#!/usr/bin/env node
// The browser's interop runner (docs/INTEROP.md, "Runner contract"): `dial` only, since a
// browser peer does not listen. Each run serves the test page (browser/test) and the built
// entry (browser/pkg, or $SNAP2P_BROWSER_PKG) from 127.0.0.1, launches Debian's Chromium
// headless through puppeteer-core, and calls the page's `runDial` with the options below;
// the page dials with the npm browser entry, signs its attestation through `walletSigner`
// and a stand-in wallet provider, and reports the contract's result line.
//
//   runner.mjs dial --target ws://…|wss://… [--invite HEX] [--streams N] [--bytes B]
//     [--expect-principal P] [--expect-alias A] [--expect-code C] [--tls-root PEM]
//     [--sign-form message|digest] [--mnemonic M]
// --tls-root: Chromium trusts that CA through an NSS database in a throw-away HOME
// (Chromium on Linux reads $HOME/.pki/nssdb); needs `certutil` (libnss3-tools).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const browserDir = path.join(root, 'browser');
const { runInChromium } = await import(path.join(browserDir, 'test/chromium.mjs'));

const [mode, ...rest] = process.argv.slice(2);
if (mode !== 'dial') {
  console.error('the browser runner only dials (a browser peer does not listen)');
  process.exit(2);
}
const opts = {};
for (let i = 0; i < rest.length; i += 2) {
  const k = rest[i].replace(/^--/, '');
  opts[k.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = rest[i + 1];
}
const dial = {
  target: opts.target,
  invite: opts.invite,
  streams: opts.streams ? Number(opts.streams) : 1,
  bytes: opts.bytes ? Number(opts.bytes) : 1024,
  expectPrincipal: opts.expectPrincipal,
  expectAlias: opts.expectAlias,
  expectCode: opts.expectCode != null ? Number(opts.expectCode) : undefined,
  signer: opts.signForm === 'digest' ? 'key' : 'wallet',
  mnemonic: opts.mnemonic,
};

const result = await runInChromium(dial, { tlsRoot: opts.tlsRoot });
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);

