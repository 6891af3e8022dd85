// examples/browser in real headless Chromium against the CLI's `snap2p listen --ws`
// (SNAP2P_CLI: the built binary): the page connects with its demo key, shows both
// principals, sends a chat line the CLI prints, and shows the line typed on the CLI's stdin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { serve } from './server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('examples/browser chats with snap2p listen --ws', { skip: !process.env.SNAP2P_CLI && 'SNAP2P_CLI not set' }, async () => {
  const cli = spawn(process.env.SNAP2P_CLI, ['listen', '--ws', '127.0.0.1:0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  cli.stderr.on('data', (d) => (stderr += d));
  readline.createInterface({ input: cli.stdout }).on('line', (l) => lines.push(l));
  const waitLine = async (re, what) => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const l = lines.find((x) => re.test(x));
      if (l) return l;
      if (Date.now() > deadline) assert.fail(`${what}: no line like ${re} in ${JSON.stringify(lines)} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const server = await serve({
    pkg: process.env.SNAP2P_BROWSER_PKG ?? path.join(root, 'browser/pkg'),
    root: path.join(root, 'examples/browser'),
  });
  const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless=new'] });
  try {
    const listening = await waitLine(/^Listening on ws:\/\//, 'listener');
    const [, locator, principal] = listening.match(/^Listening on (ws:\/\/\S+) as (stacks:\S+)/);
    const page = await browser.newPage();
    await page.goto(`${server.url}/`);
    await page.$eval('#target', (el, v) => (el.value = v), locator);
    await page.click('input[name=signer][value=demo]');
    await page.click('#connect');
    await page.waitForFunction(() => document.getElementById('them').textContent.startsWith('stacks:'), { timeout: 30000 });
    const them = await page.$eval('#them', (el) => el.textContent);
    const me = await page.$eval('#me', (el) => el.textContent);
    assert.ok(them.startsWith(principal), `${them} vs ${principal}`);
    assert.match(me, /^stacks:S[PM]/);
    await page.waitForFunction(() => !document.getElementById('line').disabled);
    await page.type('#line', 'hello from the page');
    await page.keyboard.press('Enter');
    await waitLine(/hello from the page/, 'the CLI printed the page line');
    cli.stdin.write('hello from the terminal\n');
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('peer: hello from the terminal'), { timeout: 30000 });
    if (process.env.SNAP2P_EXAMPLE_SCREENSHOT) await page.screenshot({ path: process.env.SNAP2P_EXAMPLE_SCREENSHOT });
  } finally {
    await browser.close();
    await server.close();
    cli.kill('SIGINT');
  }
});
