#!/usr/bin/env bash
# Prometheus from Debian's packages, for the metrics test (examples/cli/tests/metrics.rs,
# ci/steps/78-metrics.sh). Idempotent: installs only when no prometheus binary is found.
# The test runs prometheus itself (own config, storage in a temp dir, one loopback port);
# the package's own service is kept from starting (policy-rc.d 101) so nothing listens
# on its default port 9090.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
find_prom() { command -v prometheus 2>/dev/null || { [ -x /usr/bin/prometheus ] && echo /usr/bin/prometheus; } || true; }
bin=$(find_prom)
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "prometheus not found, and apt-get as root is not available to install it" >&2
    exit 1
  fi
  prc=/usr/sbin/policy-rc.d; had_prc=0; [ -e "$prc" ] && had_prc=1
  [ $had_prc = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; }
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1; }
  install || { apt-get update -q >/dev/null 2>&1 && install; } || { [ $had_prc = 1 ] || rm -f "$prc"; echo "apt-get could not install prometheus" >&2; exit 1; }
  [ $had_prc = 1 ] || rm -f "$prc"
  bin=$(find_prom)
fi
[ -n "$bin" ] || { echo "prometheus still not found after the install" >&2; exit 1; }
"$bin" --version 2>&1 | head -1
echo "prometheus: $bin"
