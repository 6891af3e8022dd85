#!/usr/bin/env bash
# Benchmarks: snap2p against rust-libp2p (TCP+noise+yamux, QUIC), plain TCP and snow over TCP.
# Builds the harness (release, with the libp2p comparison) and prints the table.
#   ci/bench.sh                 # everything, 5 rounds per figure (docs/BENCHMARKS.md)
#   ci/bench.sh smoke           # tiny sizes, 1 round (what CI runs)
#   ci/bench.sh bulk small --rounds 7 --out /tmp/table.md
# Workloads: bulk small connect streams many idle idle-default relay reservations opens bindings (default: all).
# `all` and `bindings` first build the Node/Python/Kotlin/Swift senders (ci/bench-bindings.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
# Own target dir: the release build with libp2p never invalidates the test build's.
export CARGO_TARGET_DIR="${SNAP2P_BENCH_TARGET:-$SNAP2P_CACHE/target-bench}"
features="${SNAP2P_BENCH_FEATURES-compare}"
bench_target="$CARGO_TARGET_DIR"
cargo build --release -p snap2p-bench ${features:+--features "$features"} >&2
# The language-package rows need release builds of every binding (ci/bench-bindings.sh);
# SNAP2P_BENCH_BINDINGS=0 skips them (their rows then say "not built").
args=("${@:-all}")
case " ${args[*]} " in
  *" smoke "*) ;;
  *" all "*|*" bindings "*)
    if [ "${SNAP2P_BENCH_BINDINGS:-1}" != 0 ]; then
      trap 'bash "$SNAP2P_ROOT/ci/interop/runner-swift.sh" --unmount || true' EXIT
      env_file="$SNAP2P_CACHE/bench-bindings.env"
      bash ci/bench-bindings.sh > "$env_file"
      source "$env_file"
    fi ;;
esac
"$bench_target/release/snap2p-bench" "${args[@]}"
