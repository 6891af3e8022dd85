#!/usr/bin/env bash
# The browser build and its test browser (idempotent; issue 31):
# - Debian's Rust 1.96 with the standard library's source (`rustc-web`, `rust-web-src`) and
#   LLVM 19's wasm-ld: rustup cannot add the wasm32 target here (its download server is
#   unreachable), so std is built for wasm32-unknown-unknown with `-Zbuild-std`
#   (shared/reference/wasm-toolchain.md);
# - wasm-bindgen-cli at exactly the version of the `wasm-bindgen` crate in browser/Cargo.lock
#   (the CLI refuses a module made by another version), from the Rust crate registry;
# - Chromium from Debian, driven by puppeteer-core (npm, pinned in browser/package-lock.json,
#   with PUPPETEER_SKIP_DOWNLOAD: puppeteer's own browser download cannot work here).
# Afterwards: $SNAP2P_CACHE/tools/bin/wasm-bindgen, /usr/bin/chromium, browser/node_modules.
set -euo pipefail
source "$(dirname "$0")/../env.sh"

need_apt=()
[ -x /usr/bin/cargo ] && /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.9' || need_apt+=(rustc-web cargo-web)

[ -x /usr/lib/llvm-19/bin/wasm-ld ] || need_apt+=(lld-19)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# certutil: the wss test puts its test CA in an NSS database Chromium reads.
command -v certutil >/dev/null || need_apt+=(libnss3-tools)
# rust-web-src's path differs between package versions: ask dpkg rather than guess.
if ! dpkg -s rust-web-src >/dev/null 2>&1; then
  case " ${need_apt[*]} " in *" rust-web-src "*) ;; *) need_apt+=(rust-web-src) ;; esac
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' \
  "$SNAP2P_ROOT/browser/Cargo.lock")
tools="$SNAP2P_CACHE/tools"
if [ "$("$tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  step "cargo install wasm-bindgen-cli $version"
  # The host toolchain (rustup's) builds the CLI; --locked: the CLI's own lockfile.
  CARGO_TARGET_DIR="$SNAP2P_CACHE/target-wasm-bindgen-cli" \
    cargo install -q --locked --root "$tools" wasm-bindgen-cli --version "$version" --force
fi

cd "$SNAP2P_ROOT/browser"
stamp=node_modules/.snap2p-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "npm ci (puppeteer-core)"
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
  echo "$want" > "$stamp"
fi
