'use strict';
const { test } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { snap2p, listener, serveEcho } = require('./helpers');

/** Runs a fixture; resolves with {code, ms, out} or rejects if it does not exit in time. */
function run(fixture, args, onLine) {
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', fixture), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    out.push(l);
    if (onLine) onLine(l);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${fixture} did not exit on its own within 10 s`));
    }, 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, out });
    });
  });
}

test('a dialing process exits by itself when it is done (no close() called)', { timeout: 30_000 }, async () => {
  const { peer: server, addr } = await listener();
  serveEcho(server);
  const r = await run('client-exits.js', [addr]);
  assert.strictEqual(r.code, 0);
  assert.deepStrictEqual(r.out, ['got ping']);
  await server.close();
});

test('a listening process exits by itself after peer.close()', { timeout: 30_000 }, async () => {
  let dialed;
  const r = await run('server-exits.js', [], (addr) => {
    dialed = (async () => {
      const client = await snap2p.Peer.create();
      const conn = await client.dial(addr);
      const s = conn.openStream('x');
      s.end('hello');
      const back = await s.readAll();
      await client.close();
      return back.toString();
    })();
  });
  assert.strictEqual(r.code, 0);
  assert.strictEqual(await dialed, 'hello');
});
