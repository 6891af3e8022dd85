#!/usr/bin/env bash
# Builds the snap2p uniffi cdylib for the host (Linux x86-64), bundles it as a JNA resource
# and generates the Kotlin bindings. Run by Maven (generate-sources); by hand:
#   kotlin/build-native.sh [OUT_DIR]   (default kotlin/target/generated-sources/uniffi)
# Cargo profile: $SNAP2P_CARGO_PROFILE (default dev, shared with the Rust CI step).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../ci/env.sh"
out="${1:-$here/target/generated-sources/uniffi}"
profile="${SNAP2P_CARGO_PROFILE:-dev}"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cd "$SNAP2P_ROOT"
cargo build --quiet --profile "$profile" -p snap2p-uniffi --lib --bins
lib="$CARGO_TARGET_DIR/$dir/libsnap2p_uniffi.so"
mkdir -p "$here/src/main/resources/linux-x86-64" "$out"
cp -f "$lib" "$here/src/main/resources/linux-x86-64/libsnap2p_uniffi.so"
rm -rf "$out/io/snap2p/snap2p.kt"
"$CARGO_TARGET_DIR/$dir/uniffi-bindgen" generate --library "$lib" --language kotlin --out-dir "$out" --no-format >/dev/null
test -f "$out/io/snap2p/snap2p.kt"
