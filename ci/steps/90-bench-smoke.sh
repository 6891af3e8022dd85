#!/usr/bin/env bash
# Benchmark harness smoke run: tiny sizes, 1 round, every workload and system. Passes only
# if every snap2p row completed and every checksum matched (the figures are not judged).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh
step "cargo clippy: the bench harness (without the comparison feature, as built below)"
(export CARGO_TARGET_DIR="${SNAP2P_BENCH_TARGET:-$SNAP2P_CACHE/target-bench}"
 cargo clippy -p snap2p-bench --all-targets -- -D warnings)
step "bench smoke (ci/bench.sh smoke)"
t0=$(date +%s)
# Without the libp2p comparison (its QUIC stack builds aws-lc: far too slow for every CI
# run); the full comparison is `ci/bench.sh` (docs/BENCHMARKS.md).
if SNAP2P_BENCH_FEATURES= timeout 900 bash ci/bench.sh smoke; then
  echo "bench smoke: $(( $(date +%s) - t0 ))s"
  echo "bench-smoke: 1 passed, 0 failed"
else
  echo "bench-smoke: 0 passed, 1 failed"
  exit 1
fi
