#!/usr/bin/env bash
# toxiproxy-server, built from the Go module proxy into $SNAP2P_CACHE/bin (idempotent).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
bin="$SNAP2P_CACHE/bin/toxiproxy-server"
if [ ! -x "$bin" ]; then
  # Go comes with the CI image (/usr/local/go); else Debian's golang-go (toxiproxy needs
  # Go >= 1.17; bookworm has 1.19).
  [ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
  if ! command -v go >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
  fi
  command -v go >/dev/null 2>&1 || { echo "go not found: cannot build toxiproxy" >&2; exit 1; }
  mkdir -p "$SNAP2P_CACHE/bin"
  tmp=$(mktemp -d)
  # The module's server command is cmd/server; install it and rename.
  GOBIN="$tmp" go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0
  mv "$tmp/server" "$bin"
  rm -rf "$tmp"
fi
echo "toxiproxy-server: $bin"
