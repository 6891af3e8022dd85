#!/usr/bin/env bash
# LAN and BNS discovery (issue 30): core/tests/mdns_netns.rs builds three network
# namespaces on one Linux bridge and runs three snap2p peers (core/examples/mdnsnode, each
# its own process, mDNS their only discovery): a Public peer is resolved by principal and
# dialed from two namespaces, a Private one is never found, a closed one stops answering.
# Needs root and `ip netns`; the test skips loudly without them. core/tests/bns_http.rs:
# BNS names through local Stacks API servers on loopback (recorded response shapes).
# Prints one RESULT line per check. Each mdnsnode writes its mDNS daemon's debug log to
# $SNAP2P_CACHE/mdns-logs/<pid>-<mode>.log (emptied every run): what the link said when a
# step fails.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "cargo test --test mdns_netns --test bns_http -- --include-ignored"
main_build --example mdnsnode
export SNAP2P_MDNS_LOG=debug SNAP2P_MDNS_LOG_DIR="$SNAP2P_CACHE/mdns-logs"
rm -rf "$SNAP2P_MDNS_LOG_DIR" && mkdir -p "$SNAP2P_MDNS_LOG_DIR"
set +e
cargo test --test mdns_netns --test bns_http -- --include-ignored --nocapture 2>&1 \
  | tee "$SNAP2P_CACHE/mdns.log" | grep -E '^(RESULT|test |test result|!!!!!|thread .* panicked|failures:)'
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || echo "mDNS daemons' logs: $SNAP2P_MDNS_LOG_DIR"

exit "$rc"
