#!/usr/bin/env bash
# Prometheus from Debian's packages, for the metrics test (examples/cli/tests/metrics.rs,
# ci/steps/78-metrics.sh). Idempotent: installs only when no prometheus binary is found.
# The test runs prometheus itself (own config, storage in a temp dir, one loopback port);
# the package's own service is kept from starting, so nothing listens on port 9090.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
source "$(dirname "$0")/debian-package.sh"
find_bin() { command -v prometheus 2>/dev/null || { [ -x /usr/bin/prometheus ] && echo /usr/bin/prometheus; } || true; }
bin=$(debian_install prometheus)
"$bin" --version 2>&1 | head -1
echo "prometheus: $bin"
