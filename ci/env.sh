# Sourced by every ci/ script: where caches live (outside the repo, reused between runs).
export SNAP2P_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SNAP2P_CACHE="${SNAP2P_CACHE:-$HOME/.cache/snap2p}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SNAP2P_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$SNAP2P_CACHE"
# Tests that time out must not hang CI forever.
export RUST_TEST_TIME_UNIT="${RUST_TEST_TIME_UNIT:-60000,120000}"
step() { printf '\n==== %s ====\n' "$*"; }
# Each suite builds in its own target dir (different crates, features and profiles would
# otherwise keep invalidating each other's artifacts); all of them are cached.
use_target() {
  if [ -z "${SNAP2P_SHARED_TARGET:-}" ]; then
    export CARGO_TARGET_DIR="$SNAP2P_CACHE/target-$1"
  fi
}
