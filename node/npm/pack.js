#!/usr/bin/env node
'use strict';
// Lays out and packs the npm packages of a release the way `napi prepublish` would:
//   node node/npm/pack.js OUT_DIR [KEY=PATH_TO_ADDON ...] [--browser=DIR] [--publish-dry-run]
// - one tarball per platform package given a binary (KEY is a directory of node/npm/, e.g.
//   linux-x64-gnu=/path/libsnap2p_node.so): node/npm/KEY/{package.json,README.md} plus the
//   binary as snap2p.KEY.node;
// - the main package (package.json `files`), with every node/npm/* package as an
//   optionalDependency at the same version (kept out of the repository's package.json so a
//   development `npm install` never looks up platform packages), without devDependencies
//   and scripts.
// --browser=DIR: the browser entry as browser/build.sh DIR built it (index.js, index.d.ts,
// snap2p_browser.js, snap2p_browser_bg.wasm), staged as the main package's browser/ (the
// "browser" export condition); every file must be there. Without it: node/browser/ when
// `npm run build:browser` filled it, else the main package leaves the entry out and says so.
// --publish-dry-run also runs `npm publish --dry-run` in each staged package (what the
// release workflow then publishes for real) and fails on any npm warning.
// Prints the tarball paths, one per line.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const nodeDir = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const out = args.find((a) => !a.includes('=') && !a.startsWith('--'));
if (!out) {
  console.error('usage: node node/npm/pack.js OUT_DIR [KEY=ADDON ...] [--publish-dry-run]');
  process.exit(2);
}
const dryRun = args.includes('--publish-dry-run');
const binaries = Object.fromEntries(
  args.filter((a) => a.includes('=') && !a.startsWith('--')).map((a) => a.split(/=(.*)/s).slice(0, 2)),
);
const browserArg = args.find((a) => a.startsWith('--browser='))?.slice('--browser='.length);
const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));
const main = readJson(path.join(nodeDir, 'package.json'));
const keys = fs
  .readdirSync(__dirname, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();
for (const k of Object.keys(binaries)) {
  if (!keys.includes(k)) throw new Error(`no platform package node/npm/${k} (have ${keys})`);
}
// loader.js's table must name exactly the platform packages that exist.
const { PLATFORMS } = require(path.join(nodeDir, 'loader.js'));
if (JSON.stringify(Object.keys(PLATFORMS).sort()) !== JSON.stringify(keys)) {
  throw new Error(`loader.js PLATFORMS ${Object.keys(PLATFORMS)} != node/npm/* ${keys}`);
}

const stage = path.join(path.resolve(out), 'stage');
fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });

function npm(cwd, ...argv) {
  // npm writes its notices (and `publish --dry-run`'s report) to stderr.
  return execFileSync('npm', argv, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function publishDryRun(dir) {
  const r = require('node:child_process').spawnSync('npm', ['publish', '--dry-run'], {
    cwd: dir,
    encoding: 'utf8',
  });
  // Without registry credentials (CI), npm always warns that publishing needs a login;
  // every other warning (auto-corrected fields, missing files, …) fails the check.
  const warnings = (r.stderr || '')
    .split('\n')
    .filter((l) => /npm (warn|error|ERR)/i.test(l))
    .filter((l) => !/requires you to be logged in .*\(dry-run\)/.test(l));
  if (r.status !== 0 || warnings.length) {
    throw new Error(`npm publish --dry-run in ${dir}: status ${r.status}\n${r.stderr}`);
  }
  const size = /package size:\s*(.*)/.exec(r.stderr);
  console.error(`npm publish --dry-run ok: ${path.basename(dir)} (${size ? size[1] : '?'})`);
}
function pack(dir) {
  const name = npm(dir, 'pack', '--silent', '--pack-destination', path.resolve(out)).trim();
  if (dryRun) publishDryRun(dir);
  return path.join(path.resolve(out), name.split('\n').pop());
}

const tarballs = [];
for (const [key, bin] of Object.entries(binaries)) {
  const dir = path.join(stage, key);
  fs.mkdirSync(dir);
  const pkg = readJson(path.join(__dirname, key, 'package.json'));
  if (pkg.version !== main.version) throw new Error(`${pkg.name} ${pkg.version} != ${main.version}`);
  for (const f of ['package.json', 'README.md']) fs.copyFileSync(path.join(__dirname, key, f), path.join(dir, f));
  fs.copyFileSync(bin, path.join(dir, pkg.main));
  tarballs.push(pack(dir));
}

const dir = path.join(stage, 'main');
fs.mkdirSync(dir);
// The browser entry (browser/*) is built by browser/build.sh (ci/steps/85-browser.sh), not
// by the native build: when it is absent, this tarball leaves it out and says so; a
// release packs after both builds (.github/workflows/release.yml).
const browserDir = browserArg ? path.resolve(browserArg) : path.join(nodeDir, 'browser');
const browserBuilt = browserArg !== undefined || fs.existsSync(path.join(browserDir, 'index.js'));
if (!browserBuilt) console.error('pack.js: node/browser/ not built: packing without the browser entry');
for (const f of main.files) {
  if (f.startsWith('browser/') && !browserBuilt) continue;
  const from = f.startsWith('browser/') ? path.join(browserDir, f.slice('browser/'.length)) : path.join(nodeDir, f);
  if (!fs.existsSync(from)) throw new Error(`pack.js: ${from} is missing (package.json files: ${f})`);
  fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
  fs.copyFileSync(from, path.join(dir, f));
}
const published = { ...main };
delete published.devDependencies;
delete published.scripts;
published.optionalDependencies = Object.fromEntries(keys.map((k) => [`${main.name}-${k}`, main.version]));
fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(published, null, 2) + '\n');
tarballs.push(pack(dir));
console.log(tarballs.join('\n'));
