#!/usr/bin/env bash
# Builds the browser entry: the core (sans-IO, pure-Rust crypto) and this crate for
# wasm32-unknown-unknown with Debian's rustc-web and -Zbuild-std (ci/setup/browser.sh
# installs the toolchain), then wasm-bindgen's ES-module glue, then the entry itself.
# Output: $1 (default browser/pkg): index.js (the entry), snap2p_browser.js and
# snap2p_browser_bg.wasm. node/package.json's "browser" condition points at node/browser/,
# which `npm run build:browser` in node/ fills with the same files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/pkg}" && cd "${1:-$here/pkg}" && pwd)"
cache="${SNAP2P_CACHE:-$HOME/.cache/snap2p}"
target_dir="$cache/target-wasm"
bindgen="${WASM_BINDGEN:-$cache/tools/bin/wasm-bindgen}"
cd "$here"
# RUSTC_BOOTSTRAP: -Zbuild-std on Debian's stable rustc (no nightly here).
RUSTC_BOOTSTRAP=1 \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
CARGO_TARGET_DIR="$target_dir" \
PATH=/usr/bin:$PATH \
  /usr/bin/cargo build -q --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
mkdir -p "$out"
"$bindgen" --target web --no-typescript --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/snap2p_browser.wasm"
cp "$here/js/index.js" "$out/index.js"
cp "$here/js/index.d.ts" "$out/index.d.ts" 2>/dev/null || true
