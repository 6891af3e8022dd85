#!/usr/bin/env node
// Serves the chat page and the built browser entry on http://127.0.0.1:PORT (default 8000).
// Build the entry first: `bash browser/build.sh` (writes browser/pkg).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../../browser/test/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const s = await serve({
  pkg: process.env.SNAP2P_BROWSER_PKG ?? path.resolve(here, '../../browser/pkg'),
  root: here,
  port: Number(process.argv[2] ?? 8000),
});
console.log(`open ${s.url}/`);
