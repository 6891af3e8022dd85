#!/usr/bin/env bash
# LAN and BNS discovery (issue 30): core/tests/mdns_netns.rs builds three network
# namespaces on one Linux bridge and runs three snap2p peers (core/examples/mdnsnode, each
# its own process, mDNS their only discovery): a Public peer is resolved by principal and
# dialed from two namespaces, a Private one is never found, a closed one stops answering.
# Needs root and `ip netns`; the test skips loudly without them. core/tests/bns_http.rs:
# BNS names through local Stacks API servers on loopback (recorded response shapes).
# Prints one RESULT line per check.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "cargo test -p snap2p --test mdns_netns --test bns_http -- --include-ignored"
cargo build -q -p snap2p --example mdnsnode
set +e
cargo test -p snap2p --test mdns_netns --test bns_http -- --include-ignored --nocapture 2>&1 \
  | tee "$SNAP2P_CACHE/mdns.log" | grep -E '^(RESULT|test |test result|!!!!!|thread .* panicked|failures:)'
rc=${PIPESTATUS[0]}
set -e
exit "$rc"
