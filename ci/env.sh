# Sourced by every ci/ script: where caches live (outside the repo, reused between runs).
export SNAP2P_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SNAP2P_CACHE="${SNAP2P_CACHE:-$HOME/.cache/snap2p}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SNAP2P_CACHE/target}"
# The workspace's own target dir (the rust, cli, hostile and interop suites share it: same
# crates and features, so they reuse each other's artifacts without rebuilding them).
export SNAP2P_MAIN_TARGET="${SNAP2P_MAIN_TARGET:-$CARGO_TARGET_DIR}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$SNAP2P_CACHE"
# Cargo does not rebuild a workspace crate when the checkout moves: its fingerprints hold
# paths relative to the package, and env!("CARGO_MANIFEST_DIR") is not tracked. A cache
# last used by a checkout elsewhere (a fresh clone next to this one) would then run test
# binaries that look for their files and `cargo` working dir in the old place (ENOENT).
# When the checkout using the cache changes, forget the workspace's own artifacts (every
# workspace and fuzz crate is named snap2p*); dependencies stay cached.
if [ "$(cat "$SNAP2P_CACHE/checkout" 2>/dev/null)" != "$SNAP2P_ROOT" ]; then
  find "$SNAP2P_CACHE" -maxdepth 5 -type d -name .fingerprint -prune \
    -exec sh -c 'rm -rf "$1"/snap2p*' sh {} \;
  echo "$SNAP2P_ROOT" > "$SNAP2P_CACHE/checkout"
fi
# Tests that time out must not hang CI forever.
export RUST_TEST_TIME_UNIT="${RUST_TEST_TIME_UNIT:-60000,120000}"
step() { printf '\n==== %s ====\n' "$*"; }
# Builds in the workspace's target dir what a suite runs (`main_build --example testnode`,
# `main_build --bin snap2p`), as the rust suite's `cargo test` builds it: the default
# members (core and the CLI) with their dev-dependencies (the echo_peer example is always
# in the command for that). Cargo resolves dependencies' features from the packages and
# targets a command selects, so `-p snap2p`, `-p snap2p-cli`, or a build of a binary alone
# is another feature set, compiled again beside this one: after a change to core/ that was
# a minute or more per set (2026-12-07: a whole CI run after a one-line change to core/ took
# 2250 s with the extra sets, 1569 s without them and with line tables only in dev builds;
# each set's debug artifacts were kept on disk too). The same holds for
# `cargo test --test NAME`: no `-p`.
main_build() {
  CARGO_TARGET_DIR="$SNAP2P_MAIN_TARGET" cargo build -q --example echo_peer "$@" >&2
}
# Builds core/examples/echo_peer, the Rust peer the language suites talk to, and prints its
# path. Use as
#   SNAP2P_ECHO_PEER=$(build_echo_peer); export SNAP2P_ECHO_PEER
# (a bare assignment keeps a failed build fatal under `set -e`).
build_echo_peer() {
  main_build
  echo "$SNAP2P_MAIN_TARGET/debug/examples/echo_peer"
}
# The binding suites build in their own target dirs (their crates, features and profiles
# would otherwise keep invalidating the workspace's artifacts); all of them are cached.
use_target() {
  if [ -z "${SNAP2P_SHARED_TARGET:-}" ]; then
    export CARGO_TARGET_DIR="$SNAP2P_CACHE/target-$1"
  fi
}
