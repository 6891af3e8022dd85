'use strict';
// Finds the native addon for this machine. `npm install snap2p` installs, of the main
// package's optionalDependencies, only the platform package whose `os`/`cpu`/`libc` match
// (snap2p-linux-x64-gnu, snap2p-linux-arm64-musl, …); this file picks that package. A
// development checkout uses the addon `napi build --platform` leaves next to this file
// (snap2p.<platform>.node) instead.
//
// Written by hand rather than napi-rs's generated loader so that a machine without its
// binary gets one clear error that names the package to install (the usual
// "Cannot find native binding" reports of napi-rs users hide it in `cause`).

const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const PACKAGE = 'snap2p';

/**
 * The platform packages the release publishes: npm `platform-arch[-abi]` key -> where the
 * binary is built (docs/PACKAGING.md). Must match node/npm/* and package.json's `napi.targets`.
 */
const PLATFORMS = Object.freeze({
  'linux-x64-gnu': 'x86_64-unknown-linux-gnu',
  'linux-x64-musl': 'x86_64-unknown-linux-musl',
  'linux-arm64-gnu': 'aarch64-unknown-linux-gnu',
  'linux-arm64-musl': 'aarch64-unknown-linux-musl',
  'darwin-universal': 'universal-apple-darwin',
  'win32-x64-msvc': 'x86_64-pc-windows-msvc',
});

/** True when this Linux process runs on musl libc (Alpine) rather than glibc. */
function isMusl() {
  // glibc's Node reports the C library it runs on; musl builds of Node leave it out.
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
  if (report?.header) return !report.header.glibcVersionRuntime;
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    return false;
  }
}

/**
 * The platform key (`linux-x64-gnu`, …) for a platform, an architecture and, on Linux, a
 * C library; whether snap2p publishes a package for it is `key in PLATFORMS`.
 */
function platformKey(platform = process.platform, arch = process.arch, musl) {
  if (platform === 'darwin') return 'darwin-universal'; // one fat binary: x64 and arm64
  if (platform === 'win32') return `win32-${arch}-msvc`;
  if (platform === 'linux') {
    const libc = (musl ?? isMusl()) ? 'musl' : 'gnu';
    return `linux-${arch}-${libc}`;
  }
  return `${platform}-${arch}`;
}

/** An Error (code ERR_SNAP2P_NATIVE_MISSING) that says which package this machine needs. */
function missingError(key, version, cause) {
  const supported = Object.keys(PLATFORMS).join(', ');
  let message;
  if (!(key in PLATFORMS)) {
    message =
      `snap2p has no native binary for ${key} (${process.platform}/${process.arch}). ` +
      `Published platforms: ${supported}.`;
  } else {
    const pkg = `${PACKAGE}-${key}`;
    message =
      `snap2p could not load its native binary for ${key}: the package ${pkg}@${version} ` +
      `is not installed. npm installs it as an optional dependency of ${PACKAGE}; it is ` +
      `missing when the install skipped optional dependencies (--omit=optional, ` +
      `--no-optional) or node_modules was copied from another platform. ` +
      `Fix: npm install ${pkg}@${version}`;
  }
  const err = new Error(message, cause ? { cause } : undefined);
  err.code = 'ERR_SNAP2P_NATIVE_MISSING';
  err.platformPackage = `${PACKAGE}-${key}`;
  return err;
}

/**
 * Loads the addon: `./snap2p.<key>.node` of a development build, else the platform
 * package. `dir` and `requireFn` exist for the tests (a fresh install, a foreign key).
 */
function load({ key = platformKey(), dir = __dirname, requireFn = require } = {}) {
  const local = join(dir, `${PACKAGE}.${key}.node`);
  if (existsSync(local)) return requireFn(local);
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const pkg = `${PACKAGE}-${key}`;
  let binding;
  try {
    binding = requireFn(pkg);
  } catch (e) {
    // Only "the package is not there" becomes the missing-package error; a binary that is
    // there but fails to load (wrong glibc, corrupt file) keeps its own message.
    if (e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes(pkg)) {
      throw missingError(key, version, e);
    }
    throw e;
  }
  const installed = JSON.parse(readFileSync(requireFn.resolve(`${pkg}/package.json`), 'utf8')).version;
  if (installed !== version) {
    const err = new Error(
      `snap2p ${version} found ${pkg}@${installed}: the native binary must have the same ` +
        `version. Fix: npm install ${pkg}@${version}`,
    );
    err.code = 'ERR_SNAP2P_NATIVE_VERSION';
    throw err;
  }
  return binding;
}

module.exports = { load, platformKey, isMusl, PLATFORMS };
