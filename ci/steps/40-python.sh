#!/usr/bin/env bash
# Python binding: lint, build the abi3 wheel and the sdist with maturin, install the wheel
# into a FRESH virtualenv, run the README example and examples/python there, then the
# pytest suite (Python<->Python, Python<->Rust peer and Python<->`snap2p` CLI over
# loopback). pytest's exit code 5 ("no tests ran") is non-zero, so under `set -e` it fails
# this step like any other failure.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target python
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh
bash ci/setup/python.sh

TOOLS="$SNAP2P_CACHE/venv"
FRESH="$SNAP2P_CACHE/venv-python-step"
DIST="$SNAP2P_CACHE/python-dist"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step "python: ruff + cargo fmt + clippy"
"$TOOLS/bin/ruff" check python examples/python examples/interop/python bench/bindings
"$TOOLS/bin/ruff" format --check python examples/python examples/interop/python bench/bindings
cargo fmt -p snap2p-python -- --check
# --no-deps: the core is linted by 10-rust.sh; this step judges the binding only.
cargo clippy -p snap2p-python --no-deps --all-targets --release -- -D warnings

step "python: maturin build (abi3 wheel) + sdist"
rm -rf "$DIST"
"$TOOLS/bin/maturin" build --release -m python/Cargo.toml -o "$DIST"
"$TOOLS/bin/maturin" sdist -m python/Cargo.toml -o "$DIST"
ls -l "$DIST"
wheel=$(ls "$DIST"/snap2p-*-abi3-*.whl)
ls "$DIST"/snap2p-*.tar.gz >/dev/null

step "python: Rust echo peer and the snap2p CLI for the interop tests"
SNAP2P_ECHO_PEER=$(build_echo_peer); export SNAP2P_ECHO_PEER
# The CLI from the workspace's target dir, where the cli suite builds the same binary.
CARGO_TARGET_DIR="$SNAP2P_MAIN_TARGET" cargo build --release -p snap2p-cli
export SNAP2P_CLI="$SNAP2P_MAIN_TARGET/release/snap2p"

step "python: install the wheel into a fresh virtualenv"
rm -rf "$FRESH"
python3 -m venv "$FRESH"
"$FRESH/bin/python" -m pip install -q "$wheel" 'pytest>=8,<10' 'pytest-asyncio>=1.0,<2' 'pytest-timeout>=2.3,<3'
# Run from an empty directory so `import snap2p` can only find the installed wheel.
cd "$WORK"
"$FRESH/bin/python" -c 'import snap2p, sys; print("snap2p", snap2p.__version__, "from", snap2p.__file__)'

step "python: README example"
"$FRESH/bin/python" - "$SNAP2P_ROOT/python/README.md" > readme_example.py <<'PY'
import re, sys
blocks = re.findall(r"```python\n(.*?)```", open(sys.argv[1]).read(), re.S)
print(blocks[0])
PY
timeout 60 "$FRESH/bin/python" readme_example.py

step "python: examples/python"
for ex in "$SNAP2P_ROOT"/examples/python/*.py; do
  echo "-- $ex"
  timeout 60 "$FRESH/bin/python" "$ex"
done

step "python: pytest"
# Still from $WORK: the tests' folder is not a package, so only python/tests joins sys.path
# and `snap2p` is the installed wheel (test_stubs checks the installed .pyi).
timeout 900 "$FRESH/bin/python" -m pytest "$SNAP2P_ROOT/python/tests" -p no:cacheprovider -q
