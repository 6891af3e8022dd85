#!/usr/bin/env bash
# Host tools the build and the tests call besides the toolchains (idempotent):
# - make: tikv-jemalloc-sys builds jemalloc (the snap2p CLI's allocator,
#   examples/cli/src/alloc.rs) with its configure script and make;
# - openssl: the wss tests and the interop matrix's wss scenario make their test CA and
#   localhost certificate with it (ci/interop.py, node/test/helpers.js,
#   python/tests/conftest.py, the Kotlin WssTest, ci/steps/60-swift.sh);
# - ip (iproute2) and iptables: the network-namespace test beds (the NAT bed of
#   ci/steps/76-relay-nat.sh, the mDNS bridge of ci/steps/79-mdns.sh).
set -euo pipefail
source "$(dirname "$0")/debian-package.sh"
for tool in make openssl ip iptables; do
  find_bin() { command -v "$tool" || true; }
  case "$tool" in ip) pkg=iproute2 ;; *) pkg=$tool ;; esac
  debian_install "$pkg" >/dev/null
done
