// Runs one `runDial` of the test page (page.js) in a fresh headless Chromium (Debian's,
// through puppeteer-core), the page and the built entry served from 127.0.0.1.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { serve } from './server.mjs';

const browserDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `runDial(dial)` (or the page's function `fn`) in a fresh headless Chromium. */
export async function runInChromium(dial, { tlsRoot, fn = 'runDial' } = {}) {
  const server = await serve({
    pkg: process.env.SNAP2P_BROWSER_PKG ?? path.join(browserDir, 'pkg'),
    root: path.join(browserDir, 'test'),
  });
  const env = { ...process.env };
  let home = null;
  if (tlsRoot) {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2p-chromium-home-'));
    const db = path.join(home, '.pki/nssdb');
    fs.mkdirSync(db, { recursive: true });
    execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
    execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'snap2p-test-root', '-i', tlsRoot]);
    env.HOME = home;
  }
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
    env,
  });
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    await page.goto(`${server.url}/index.html`);
    await page.waitForFunction('window.pageReady === true', { timeout: 30000 });
    const result = await page.evaluate((f, d) => window[f](d), fn, dial);
    if (!result.ok && logs.length) result.pageLog = logs.slice(-10);
    return result;
  } finally {
    await browser.close();
    await server.close();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  }
}
