#!/usr/bin/env bash
# nginx from Debian's packages, for the WebSocket reverse-proxy test (core/tests/ws_nginx.rs,
# ci/steps/77-ws-nginx.sh). Idempotent: installs only when no nginx binary is found.
# The test runs nginx itself with its own configuration in a temp dir (own pid, logs and
# temp paths, one loopback port, in the foreground); the package's own service is kept
# from starting so nothing listens on port 80.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
source "$(dirname "$0")/debian-package.sh"
find_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
bin=$(debian_install nginx)
"$bin" -v 2>&1 | head -1
echo "nginx: $bin"
