#!/usr/bin/env bash
# Rust: formatting, lints, unit and integration tests of the core and the CLI.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy"
cargo clippy --all-targets -- -D warnings
step "cargo test"
cargo test
step "README example"
cargo run -q -p snap2p --example echo
