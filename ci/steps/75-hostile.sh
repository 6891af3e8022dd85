#!/usr/bin/env bash
# Hostile input, faults and soak over real loopback sockets: core/tests/hostile_*.rs,
# attack_*.rs (admission under attack, issue 35), faults_*.rs (Toxiproxy, own
# byte-flipping proxy, killed processes, netns partition) and soak_*.rs (SNAP2P_SOAK_SECS,
# default 60); then the short form of the attack harness (bench/src/attack.rs) against a
# `snap2p listen` child process. Installs toxiproxy and iptables first.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/toxiproxy.sh
export SNAP2P_TOXIPROXY="$SNAP2P_CACHE/bin/toxiproxy-server"
if [ "$(id -u)" = 0 ] && ! command -v iptables >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q iptables >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iptables >/dev/null 2>&1; }) \
    || echo "!!!!! iptables could not be installed: the netns partition test will skip !!!!!"
fi
export SNAP2P_SOAK_SECS="${SNAP2P_SOAK_SECS:-60}"
main_build --example testnode --bin snap2p
tests=()
for f in core/tests/hostile_*.rs core/tests/attack_*.rs core/tests/faults_*.rs core/tests/soak_*.rs; do
  tests+=(--test "$(basename "$f" .rs)")
done
step "cargo test ${tests[*]} -- --include-ignored"
# One test binary at a time, tests inside it in parallel except where a file serialises.
set +e
cargo test "${tests[@]}" -- --include-ignored --nocapture 2>&1 | tee "$SNAP2P_CACHE/hostile.log" | grep -E '^(RESULT|test |test result|!!!!!|thread .* panicked|failures:)'
rc=${PIPESTATUS[0]}
set -e
# The attack harness, short form (about 1 min): slowloris, half-open Noise and KNOCK
# floods of 1,000 connections against the CLI listener in its own process; fails unless
# >= 99% of honest dials get in during each. Without the libp2p comparison (that build
# is slow; the full form with it is in docs/RELIABILITY.md, "Admission under attack").
step "snap2p-attack --short --only snap2p --check"
cargo build -q -p snap2p-bench --bin snap2p-attack
timeout 300 "$CARGO_TARGET_DIR/debug/snap2p-attack" --short --only snap2p --check || rc=1
# Memory after an attack (issue 35): 30 s of the reconnecting slowloris, then the
# listener's RSS must be back within 2 MiB of its baseline 10 s later (the CLI's allocator,
# examples/cli/src/alloc.rs, returns freed memory; the 10-minute form is in RELIABILITY.md).
step "snap2p-attack --only snap2p --soak-secs 30 --after-secs 10 --check"
timeout 300 "$CARGO_TARGET_DIR/debug/snap2p-attack" --only snap2p --soak-secs 30 --after-secs 10 --check || rc=1
exit "$rc"
