#!/usr/bin/env bash
# nginx from Debian's packages, for the WebSocket reverse-proxy test (core/tests/ws_nginx.rs,
# ci/steps/77-ws-nginx.sh). Idempotent: installs only when no nginx binary is found.
# The test runs nginx itself with its own configuration in a temp dir (own pid, logs and
# temp paths, one loopback port, in the foreground); the package's own service is stopped
# and disabled right after the install so nothing listens on port 80.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
find_nginx() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }
bin=$(find_nginx)
if [ -z "$bin" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "nginx not found, and apt-get as root is not available to install it" >&2
    exit 1
  fi
  # policy-rc.d 101: the package's postinst must not start the system nginx (port 80).
  prc=/usr/sbin/policy-rc.d; had_prc=0; [ -e "$prc" ] && had_prc=1
  [ $had_prc = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; }
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >/dev/null 2>&1; }
  install || { apt-get update -q >/dev/null 2>&1 && install; } || { [ $had_prc = 1 ] || rm -f "$prc"; echo "apt-get could not install nginx" >&2; exit 1; }
  [ $had_prc = 1 ] || rm -f "$prc"
  bin=$(find_nginx)
fi
[ -n "$bin" ] || { echo "nginx still not found after the install" >&2; exit 1; }
"$bin" -v 2>&1 | head -1
echo "nginx: $bin"
