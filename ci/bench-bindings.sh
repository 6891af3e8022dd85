#!/usr/bin/env bash
# Prepares the benchmark's language-package senders (release builds of every binding) and
# writes, on stdout, one `export SNAP2P_BENCH_<LANG>='<command prefix>'` line per sender
# that could be built; the harness appends `ADDR TOTAL WRITE` and reads `RESULT <MiB/s> <ok>`
# (bench/src/bindings.rs). Node.js, Python, Kotlin and Swift also get `SNAP2P_BENCH_<LANG>_RECV`, their
# receivers for the receive rows. Everything else goes to stderr. A package that fails to build
# gets `SNAP2P_BENCH_<LANG>_WHY` instead and its row says "not built (why)".
# Run by ci/bench.sh for the `bindings` workload; idempotent (cached target dirs).
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
b="$SNAP2P_ROOT/bench/bindings"

ok() { printf "export SNAP2P_BENCH_%s=%q\n" "$1" "$2"; }
why() { printf "export SNAP2P_BENCH_%s_WHY=%q\n" "$1" "$2"; echo "bench-bindings: $1 not built: $2" >&2; }

# Node.js: the napi addon, release (as ci/steps/30-node.sh builds it).
if (use_target node && bash ci/setup/node.sh && cd node \
      && npx napi build --platform --release --js native.js --dts native.d.ts) >&2; then
  ok NODE "node $b/sender.mjs $SNAP2P_ROOT/node"
  ok NODE_RECV "node $b/receiver.mjs $SNAP2P_ROOT/node"
else
  why NODE "napi build failed"
fi

# Python: the release abi3 wheel in its own virtualenv.
venv="$SNAP2P_CACHE/venv-bench"
if (use_target python && bash ci/setup/python.sh \
      && rm -rf "$SNAP2P_CACHE/bench-dist" \
      && "$SNAP2P_CACHE/venv/bin/maturin" build -q --release -m python/Cargo.toml -o "$SNAP2P_CACHE/bench-dist" \
      && { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } \
      && "$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$SNAP2P_CACHE"/bench-dist/snap2p-*.whl) >&2; then
  ok PYTHON "$venv/bin/python $b/sender.py"
  ok PYTHON_RECV "$venv/bin/python $b/receiver.py"
else
  why PYTHON "maturin build or install failed"
fi

# Kotlin and Swift share the uniffi cdylib: a release build of it, loaded in place of the
# debug one the test builds bundle (JNA: jna.library.path; Swift: LD_LIBRARY_PATH).
uniffi_release="$SNAP2P_CACHE/target-uniffi/release"
if (use_target uniffi && cargo build -q --release -p snap2p-uniffi --lib) >&2; then
  if cmd=$(bash ci/interop/runner-kotlin.sh | tail -n 1) && [ -n "$cmd" ]; then
    ok KOTLIN "${cmd/java /java -Djna.library.path=$uniffi_release } bench-send"
    ok KOTLIN_RECV "${cmd/java /java -Djna.library.path=$uniffi_release } bench-recv"
  else
    why KOTLIN "the Kotlin runner did not build"
  fi
  if cmd=$(bash ci/interop/runner-swift.sh | tail -n 1) && [ -n "$cmd" ]; then
    root=${cmd#chroot }
    root=${root%% *}
    mkdir -p "$root/opt/snap2p/lib-release"
    cp -f "$uniffi_release/libsnap2p_uniffi.so" "$root/opt/snap2p/lib-release/"
    ok SWIFT "${cmd/LD_LIBRARY_PATH=\/opt\/snap2p\/lib /LD_LIBRARY_PATH=/opt/snap2p/lib-release } bench-send"
    ok SWIFT_RECV "${cmd/LD_LIBRARY_PATH=\/opt\/snap2p\/lib /LD_LIBRARY_PATH=/opt/snap2p/lib-release } bench-recv"
  else
    why SWIFT "the Swift runner did not build"
  fi
else
  why KOTLIN "release build of snap2p-uniffi failed"
  why SWIFT "release build of snap2p-uniffi failed"
fi
