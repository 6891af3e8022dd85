#!/usr/bin/env bash
# Benchmarks: snap2p against rust-libp2p (TCP+noise+yamux, QUIC), plain TCP and snow over TCP.
# Builds the harness (release, with the libp2p comparison) and prints the table.
#   ci/bench.sh                 # everything, 5 rounds per figure (docs/BENCHMARKS.md)
#   ci/bench.sh smoke           # tiny sizes, 1 round (what CI runs)
#   ci/bench.sh bulk small --rounds 7 --out /tmp/table.md
# Workloads: bulk small connect streams many idle bindings (default: all).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
# Own target dir: the release build with libp2p never invalidates the test build's.
export CARGO_TARGET_DIR="${SNAP2P_BENCH_TARGET:-$SNAP2P_CACHE/target-bench}"
features="${SNAP2P_BENCH_FEATURES-compare}"
cargo build --release -p snap2p-bench ${features:+--features "$features"} >&2
exec "$CARGO_TARGET_DIR/release/snap2p-bench" "${@:-all}"
