#!/usr/bin/env bash
# Rust: formatting, lints, unit and integration tests of the core and the CLI.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
bash ci/setup/rust.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "layers: what may import what in core/src (docs/ARCHITECTURE.md)"
python3 ci/layers.py core/src
step "cargo clippy"
cargo clippy --all-targets -- -D warnings
step "cargo test"
cargo test
step "cargo doc: the core's public docs, every intra-doc link resolving"
# What docs.rs shows users: a link to a private or renamed item is an error here.
RUSTDOCFLAGS="-D warnings" cargo doc -q -p snap2p --no-deps
step "raw entry points: snap2p_raw.h is cbindgen's output for bindings/src/raw.rs; Kotlin's declarations match"
# Its own package (no snap2p dependency): another feature set of syn/serde only, never
# of anything the default members build.
cargo clippy -p snap2p-raw-header --all-targets -- -D warnings
cargo test -p snap2p-raw-header
step "cargo clippy: the uniffi crate (Swift, Kotlin)"
# Its tests and builds run in 50-kotlin and 60-swift; its lints here, with the others.
cargo clippy -p snap2p-uniffi --all-targets -- -D warnings
step "pure-rust crypto build: vector tests, and no ring / aws-lc-sys / libsecp256k1 linked"
# The browser build's feature set (docs/ARCHITECTURE.md, "Dependencies and why").
# `runtime` too: the integration tests use Peer (the browser build has no runtime; below).
pure=(-p snap2p --no-default-features --features pure-rust,runtime)
if cargo tree "${pure[@]}" -e normal | grep -E '(^|[^a-z0-9_-])(ring|aws-lc-[a-z]+|secp256k1(-sys)?) v'; then
  echo "the pure-rust feature set depends on a native crypto backend (above)" >&2
  exit 1
fi
# ...and nothing (a dev-dependency on snap2p itself with default features) turns
# `native-crypto` back on in its test build, which would test the native backends.
if cargo tree "${pure[@]}" -e features -i snap2p | grep 'feature "native-crypto"'; then
  echo "the pure-rust test build enables native-crypto (above)" >&2
  exit 1
fi
# --lib: the backends' own tests (RFC 7748 vectors, low-order points refused, AEAD equal
# to snow's, recovery equal to k256's) run against the pure-Rust implementations.
cargo test "${pure[@]}" --lib --test wire_vectors --test identity_vectors --test session_basic
step "sans-IO core (the browser build's features: no tokio runtime) checks and lints"
# Without `runtime` the crate is what browser/ compiles to wasm32 (ci/steps/85-browser.sh
# builds that); here the same feature set is checked on the host, so a module that needs
# tokio but is not behind the gate fails here too.
cargo clippy -p snap2p --no-default-features --features pure-rust --lib -- -D warnings
# Its unit tests too (the machine, codecs and identity without tokio; testing::block_on
# needs no runtime).
cargo test -p snap2p --no-default-features --features pure-rust --lib
if cargo tree -p snap2p --no-default-features --features pure-rust -e normal | grep -E '(^|[^a-z0-9_-])tokio v'; then
  echo "the sans-IO feature set depends on tokio (above)" >&2
  exit 1
fi
step "README example"
cargo run -q --example echo
