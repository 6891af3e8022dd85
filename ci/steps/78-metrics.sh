#!/usr/bin/env bash
# Metrics: a real Prometheus server (Debian's package) scrapes `snap2p listen --metrics`
# while peers connect, and its HTTP API shows the session and byte counters move
# (examples/cli/tests/metrics.rs, ignored in a plain `cargo test`).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
SNAP2P_PROMETHEUS=$(bash ci/setup/prometheus.sh | tail -1 | sed 's/^prometheus: //')
export SNAP2P_PROMETHEUS
step "cargo test --test metrics -- --include-ignored"
cargo test --test metrics -- --include-ignored --nocapture 2>&1 \
  | tee "$SNAP2P_CACHE/metrics.log" | grep -E '^(RESULT|test |test result|thread .* panicked|failures:)'
exit "${PIPESTATUS[0]}"
