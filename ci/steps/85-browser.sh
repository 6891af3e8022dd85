#!/usr/bin/env bash
# snap2p in the browser (issue 31): builds the wasm entry (browser/build.sh), checks its
# size, then real headless Chromium (Debian's, through puppeteer-core) dials native
# listeners: the interop runners of Rust, Python and Node (docs/INTEROP.md), over ws:// and
# wss:// (a test CA in an NSS database the browser reads), 3 streams × 4 MiB with SHA-256
# at both ends, stealth with and without an invite, an allowlist refusal (4); and the
# examples/browser chat page against `snap2p listen --ws`; through a `snap2p relay` (its
# WebSocket listener) to native peers reserved on it (spliced and stream circuits, a
# refusal); the page's AliasCard at the listener; wallet signatures with bitcoin-style
# headers (core/tests/vectors/wallet-signatures.json). The pages load the entry from the
# npm package packed with it (node/npm/pack.js --browser), installed from its tarball.
# SNAP2P_BROWSER_LANGS (default rust,python,node) picks the listener languages.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/browser.sh

step "browser: cargo fmt + clippy (snap2p-browser, its own workspace; host target)"
# Linted on the host with the workspace's toolchain (the wasm build below uses Debian's
# rustc-web, which has no clippy); the crate's code has no target-specific parts.
(cd browser && cargo fmt --check \
  && CARGO_TARGET_DIR="$SNAP2P_CACHE/target-browser-lint" cargo clippy --all-targets -- -D warnings)

step "browser: wasm build (rustc-web, -Zbuild-std) and wasm-bindgen"
bash browser/build.sh "$SNAP2P_CACHE/browser-pkg"
export SNAP2P_BROWSER_PKG="$SNAP2P_CACHE/browser-pkg"
raw=$(stat -c %s "$SNAP2P_BROWSER_PKG/snap2p_browser_bg.wasm")
gz=$(gzip -9 -c "$SNAP2P_BROWSER_PKG/snap2p_browser_bg.wasm" | wc -c)
echo "wasm bundle: $raw bytes raw, $gz bytes gzip -9 (target: at most 409600 gzip)"
if [ "$gz" -gt 409600 ]; then
  echo "the wasm bundle is over 400 KiB gzip" >&2
  exit 1
fi

step "browser: the npm package's browser entry (node/npm/pack.js --browser, conditional export)"
# The main package packed with this build staged as its browser/ (what the release
# publishes), installed from the tarball into an empty directory: the "browser" export
# condition must resolve to its entry, and the pages below load the entry from there.
npm_out=$(mktemp -d)
trap 'rm -rf "$npm_out"' EXIT
main_tgz=$(node node/npm/pack.js "$npm_out" --browser="$SNAP2P_BROWSER_PKG" | tail -n 1)
# A listing file, not `tar | grep -q`: under pipefail grep's early exit fails tar (SIGPIPE).
tar tzf "$main_tgz" > "$npm_out/listing"
for f in index.js index.d.ts snap2p_browser.js snap2p_browser_bg.wasm; do
  grep -qx "package/browser/$f" "$npm_out/listing" || { echo "$main_tgz lacks browser/$f" >&2; exit 1; }
done
mkdir "$npm_out/app"
(cd "$npm_out/app" && npm init -y >/dev/null &&
  npm install --no-audit --no-fund --offline --omit=optional "$main_tgz" >/dev/null 2>&1)
entry=$(cd "$npm_out/app" && node --conditions=browser -p "require.resolve('snap2p')")
[ "$entry" = "$npm_out/app/node_modules/snap2p/browser/index.js" ] || {
  echo "the browser condition resolves snap2p to $entry" >&2; exit 1; }
export SNAP2P_BROWSER_PKG="$npm_out/app/node_modules/snap2p/browser"
echo "packed $(basename "$main_tgz"); browser condition -> node_modules/snap2p/browser/index.js"

langs="${SNAP2P_BROWSER_LANGS:-rust,python,node}"
step "browser: listener runners ($langs)"
main_build --example interop_runner --bin snap2p
export SNAP2P_CLI="$CARGO_TARGET_DIR/debug/snap2p"
export SNAP2P_RUNNER_RUST="$CARGO_TARGET_DIR/debug/examples/interop_runner"
case ",$langs," in *,python,*)
  bash ci/setup/python.sh
  VENV="$SNAP2P_CACHE/venv-interop"
  DIST="$SNAP2P_CACHE/interop-dist"
  rm -rf "$DIST"
  (use_target python && "$SNAP2P_CACHE/venv/bin/maturin" build -q --release -m python/Cargo.toml -o "$DIST")
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$DIST"/snap2p-*.whl
  "$VENV/bin/python" -m pip install -q 'coincurve>=20,<22'
  export SNAP2P_RUNNER_PYTHON="$VENV/bin/python $SNAP2P_ROOT/examples/interop/python/runner.py"
  ;;
esac
case ",$langs," in *,node,*)
  SNAP2P_RUNNER_NODE=$(bash ci/interop/runner-node.sh | tail -n 1)
  export SNAP2P_RUNNER_NODE
  ;;
esac

step "browser: headless Chromium against native listeners"
cd browser
node --test --test-timeout=600000 --test-concurrency=1 test/browser.test.mjs test/example.test.mjs
