// A tiny static HTTP server for the browser tests and examples/browser: serves the built
// entry (browser/pkg) under /pkg/ and the files of one directory under /. Loopback only.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

/** Starts serving; resolves to `{url, close()}`. */
export function serve({ pkg, root, port = 0 }) {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    let base = root;
    let rel = decodeURIComponent(u.pathname);
    if (rel.startsWith('/pkg/')) {
      base = pkg;
      rel = rel.slice(4);
    }
    if (rel === '/') rel = '/index.html';
    const file = path.join(base, path.normalize(rel));
    if (!file.startsWith(base)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(data);
    });
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      const { port: p } = server.address();
      resolve({ url: `http://127.0.0.1:${p}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}
