#!/usr/bin/env bash
# The README's first command: the demo on a fresh machine. Installs what its build needs
# (the Rust toolchain check and host tools: `make` for the CLI's jemalloc; idempotent, the
# same scripts ci/test.sh runs), then runs `snap2p demo`.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh >&2
exec cargo run -q --release -p snap2p-cli -- demo "$@"
