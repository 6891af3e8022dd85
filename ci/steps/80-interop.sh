#!/usr/bin/env bash
# Cross-language interop matrix (docs/INTEROP.md): builds each language's runner, then
# ci/interop.py runs every scenario for all listener x dialer pairs.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh

step "interop: rust runner"
main_build --example interop_runner
export SNAP2P_RUNNER_RUST="$CARGO_TARGET_DIR/debug/examples/interop_runner"
langs=rust

step "interop: python runner"
bash ci/setup/python.sh
VENV="$SNAP2P_CACHE/venv-interop"
DIST="$SNAP2P_CACHE/interop-dist"
rm -rf "$DIST"
(use_target python && "$SNAP2P_CACHE/venv/bin/maturin" build -q --release -m python/Cargo.toml -o "$DIST")
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$DIST"/snap2p-*.whl
"$VENV/bin/python" -m pip install -q 'coincurve>=20,<22'
export SNAP2P_RUNNER_PYTHON="$VENV/bin/python $SNAP2P_ROOT/examples/interop/python/runner.py"
langs="$langs,python"

# runner-swift.sh leaves the chroot's /proc and /dev bind mounts in place for the runner
# processes started by ci/interop.py (recorded in $SNAP2P_CACHE/interop-swift.mounts);
# they are removed when this step ends, whatever its outcome.
trap 'bash "$SNAP2P_ROOT/ci/interop/runner-swift.sh" --unmount || true' EXIT

for lang in node kotlin swift; do
  if [ -f "ci/interop/runner-$lang.sh" ]; then
    step "interop: $lang runner"
    # Each prints the runner command line as its last line of output.
    cmd=$(bash "ci/interop/runner-$lang.sh" | tail -n 1)
    export "SNAP2P_RUNNER_$(echo "$lang" | tr a-z A-Z)=$cmd"
    langs="$langs,$lang"
  fi
done

step "interop: browser runner (dials only: headless Chromium, the wasm entry)"
bash ci/setup/browser.sh
bash browser/build.sh "$SNAP2P_CACHE/browser-pkg"
export SNAP2P_BROWSER_PKG="$SNAP2P_CACHE/browser-pkg"
export SNAP2P_RUNNER_BROWSER="node $SNAP2P_ROOT/examples/interop/browser/runner.mjs"
langs="$langs,browser"

step "interop: matrix ($langs)"
python3 ci/interop.py --langs "$langs" ${INTEROP_WRITE_DOC:+--write-doc}
