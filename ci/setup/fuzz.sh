#!/usr/bin/env bash
# cargo-fuzz and a toolchain that can build libFuzzer targets (idempotent, cached).
# Exports FUZZ_TOOLCHAIN (e.g. "+nightly", or "" with RUSTC_BOOTSTRAP=1 on stable).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "FUZZ_TOOLCHAIN=+nightly"
else
  # No nightly (rustup's own server is not reachable here): cargo-fuzz's -Z flags work on
  # stable with RUSTC_BOOTSTRAP=1.
  echo "FUZZ_TOOLCHAIN=+stable RUSTC_BOOTSTRAP=1"
fi
