#!/usr/bin/env bash
# Rust toolchain and components (idempotent).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup first" >&2; exit 1
fi
bash "$(dirname "$0")/host-tools.sh"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
# Superseded test binaries and oversized incremental state go (ci/setup/prune-target.py).
python3 "$(dirname "$0")/prune-target.py" "$SNAP2P_CACHE"/target* "$SNAP2P_CACHE"/fuzz-target
