'use strict';
// loader.js: which platform package a machine needs, and the errors when it is missing or
// has another version. Each case copies loader.js into a fresh directory, so `require`
// resolves packages from there exactly as in an installed node_modules tree.
// (ci/steps/95-packages.sh checks the same error from a real `npm install` that skipped the
// platform package.)
const { test } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { platformKey, isMusl, PLATFORMS } = require('../loader.js');
const { version } = require('../package.json');

test('platformKey maps platform, arch and libc to the npm package suffix', () => {
  assert.strictEqual(platformKey('linux', 'x64', false), 'linux-x64-gnu');
  assert.strictEqual(platformKey('linux', 'x64', true), 'linux-x64-musl');
  assert.strictEqual(platformKey('linux', 'arm64', false), 'linux-arm64-gnu');
  assert.strictEqual(platformKey('linux', 'arm64', true), 'linux-arm64-musl');
  assert.strictEqual(platformKey('darwin', 'arm64'), 'darwin-universal');
  assert.strictEqual(platformKey('darwin', 'x64'), 'darwin-universal');
  assert.strictEqual(platformKey('win32', 'x64'), 'win32-x64-msvc');
  assert.strictEqual(platformKey('freebsd', 'x64'), 'freebsd-x64');
  assert.ok(!('freebsd-x64' in PLATFORMS));
  assert.ok(!('win32-arm64-msvc' in PLATFORMS));
});

test('the platform packages in node/npm are exactly the loader table', () => {
  const dirs = fs
    .readdirSync(path.join(__dirname, '..', 'npm'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  assert.deepStrictEqual(dirs, Object.keys(PLATFORMS).sort());
  for (const key of dirs) {
    const pkg = require(`../npm/${key}/package.json`);
    assert.strictEqual(pkg.name, `snap2p-${key}`);
    assert.strictEqual(pkg.version, version);
    assert.strictEqual(pkg.main, `snap2p.${key}.node`);
    assert.deepStrictEqual(pkg.files, [pkg.main]);
    const [platform, arch, abi] = key.split('-');
    assert.deepStrictEqual(pkg.os, [platform]);
    assert.deepStrictEqual(pkg.cpu, arch === 'universal' ? ['x64', 'arm64'] : [arch]);
    if (platform === 'linux') assert.deepStrictEqual(pkg.libc, [abi === 'musl' ? 'musl' : 'glibc']);
    else assert.strictEqual(pkg.libc, undefined);
    // every cpu of the package maps back to its key
    for (const cpu of pkg.cpu) assert.strictEqual(platformKey(platform, cpu, abi === 'musl'), key);
  }
});

test('isMusl is false on a glibc machine running a glibc Node', { skip: !process.report?.getReport()?.header?.glibcVersionRuntime }, () => {
  assert.strictEqual(isMusl(), false);
});

/** A directory holding a copy of loader.js and the main package.json, like an install. */
function fakeInstall() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snap2p-loader-'));
  fs.copyFileSync(path.join(__dirname, '..', 'loader.js'), path.join(dir, 'loader.js'));
  fs.copyFileSync(path.join(__dirname, '..', 'package.json'), path.join(dir, 'package.json'));
  return dir;
}

test('a missing platform package is an error naming it and its version', (t) => {
  const dir = fakeInstall();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { load } = require(path.join(dir, 'loader.js'));
  for (const key of ['linux-arm64-musl', 'linux-x64-gnu', 'win32-x64-msvc']) {
    assert.throws(
      () => load({ key }),
      (e) => {
        assert.strictEqual(e.code, 'ERR_SNAP2P_NATIVE_MISSING');
        assert.strictEqual(e.platformPackage, `snap2p-${key}`);
        assert.ok(e.message.includes(`snap2p-${key}@${version} is not installed`), e.message);
        assert.ok(e.message.includes(`npm install snap2p-${key}@${version}`), e.message);
        assert.strictEqual(e.cause.code, 'MODULE_NOT_FOUND');
        return true;
      },
    );
  }
});

test('a platform without a published package is an error listing the published ones', (t) => {
  const dir = fakeInstall();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const { load } = require(path.join(dir, 'loader.js'));
  assert.throws(
    () => load({ key: 'linux-riscv64-gnu' }),
    (e) => {
      assert.strictEqual(e.code, 'ERR_SNAP2P_NATIVE_MISSING');
      assert.match(e.message, /no native binary for linux-riscv64-gnu/);
      assert.match(e.message, /linux-x64-gnu, linux-x64-musl, linux-arm64-gnu, linux-arm64-musl/);
      return true;
    },
  );
});

test('a platform package of another version is refused', (t) => {
  const dir = fakeInstall();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pkgDir = path.join(dir, 'node_modules', 'snap2p-linux-arm64-gnu');
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.writeFileSync(
    path.join(pkgDir, 'package.json'),
    JSON.stringify({ name: 'snap2p-linux-arm64-gnu', version: '0.0.1', main: 'entry.js' }),
  );
  fs.writeFileSync(path.join(pkgDir, 'entry.js'), 'module.exports = { stale: true };');
  const { load } = require(path.join(dir, 'loader.js'));
  assert.throws(
    () => load({ key: 'linux-arm64-gnu' }),
    (e) => {
      assert.strictEqual(e.code, 'ERR_SNAP2P_NATIVE_VERSION');
      assert.ok(e.message.includes(`snap2p ${version} found snap2p-linux-arm64-gnu@0.0.1`), e.message);
      return true;
    },
  );
  // the same package at the right version loads
  fs.writeFileSync(
    path.join(pkgDir, 'package.json'),
    JSON.stringify({ name: 'snap2p-linux-arm64-gnu', version, main: 'entry.js' }),
  );
  assert.deepStrictEqual(load({ key: 'linux-arm64-gnu' }), { stale: true });
});
