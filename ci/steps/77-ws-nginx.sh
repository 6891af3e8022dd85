#!/usr/bin/env bash
# snap2p behind a real reverse proxy: Debian's nginx terminates TLS and proxies the
# WebSocket upgrade to a snap2p ws:// listener; a wss:// dialer authenticates the listener
# and streams through it (core/tests/ws_nginx.rs, ignored in a plain `cargo test`).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/nginx.sh
step "cargo test --test ws_nginx -- --include-ignored"
cargo test --test ws_nginx -- --include-ignored --nocapture 2>&1 \
  | tee "$SNAP2P_CACHE/ws-nginx.log" | grep -E '^(RESULT|test |test result|thread .* panicked|failures:)'
exit "${PIPESTATUS[0]}"
