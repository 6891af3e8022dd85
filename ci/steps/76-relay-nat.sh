#!/usr/bin/env bash
# The NAT test bed of issue 28 (docs/NAT.md): core/tests/relay_nat.rs builds network
# namespaces with real Linux NAT (iptables MASQUERADE, MASQUERADE --random-fully, and a
# firewall without NAT) and runs a relayed session between two homes for each pair of
# kinds, bytes checked by SHA-256. Needs root, ip and iptables (ci/setup/host-tools.sh, run by ci/setup/rust.sh, installs them);
# the test skips loudly without them. Prints one RESULT line per pair.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "cargo test --test relay --test relay_nat -- --include-ignored"
main_build --example relaynode
set +e
cargo test --test relay --test relay_nat -- --include-ignored --nocapture 2>&1 \
  | tee "$SNAP2P_CACHE/relay-nat.log" | grep -E '^(RESULT|test |test result|!!!!!|thread .* panicked|failures:)'
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
