#!/usr/bin/env bash
# Builds the snap2p uniffi cdylib for the host (Linux x86-64), bundles it as a JNA resource
# and generates the Kotlin bindings. Run by Maven (generate-sources); by hand:
#   kotlin/build-native.sh [OUT_DIR]   (default kotlin/target/generated-sources/uniffi)
# With SNAP2P_UNIFFI_LIB (and SNAP2P_UNIFFI_BINDGEN) set: no build, bindings from that library.
# Cargo profile: $SNAP2P_CARGO_PROFILE (default dev, shared with the Rust CI step).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../ci/env.sh"
out="${1:-$here/target/generated-sources/uniffi}"
profile="${SNAP2P_CARGO_PROFILE:-dev}"
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
cd "$SNAP2P_ROOT"
if [ -n "${SNAP2P_UNIFFI_LIB:-}" ]; then
  # A library built elsewhere (ci/steps/95-packages.sh: the release builds, bundled by the
  # jar from their own directory): only generate the bindings from it, with its bindgen.
  lib="$SNAP2P_UNIFFI_LIB"
  bindgen="${SNAP2P_UNIFFI_BINDGEN:?SNAP2P_UNIFFI_BINDGEN: the uniffi-bindgen built with it}"
  mkdir -p "$out"
else
  cargo build --quiet --profile "$profile" -p snap2p-uniffi --lib --bins
  lib="$CARGO_TARGET_DIR/$dir/libsnap2p_uniffi.so"
  bindgen="$CARGO_TARGET_DIR/$dir/uniffi-bindgen"
  mkdir -p "$here/src/main/resources/linux-x86-64" "$out"
  cp -f "$lib" "$here/src/main/resources/linux-x86-64/libsnap2p_uniffi.so"
fi
rm -rf "$out/io/snap2p/snap2p.kt"
"$bindgen" generate --library "$lib" --language kotlin --out-dir "$out" --no-format >/dev/null
test -f "$out/io/snap2p/snap2p.kt"
# Keep the core's threads attached to the JVM after they resume a coroutine. uniffi resumes
# a suspended call (a stream write that waited for flow-control credit, a read) by calling
# a JNA callback from the Rust thread that woke it; JNA attaches that thread to the JVM for
# the call and by default detaches it afterwards, creating a java.lang.Thread each time
# (~20 % of a Kotlin sender's CPU in perf). A CallbackThreadInitializer with detach=false
# keeps the (long-lived) runtime threads attached as daemons; JNA detaches them when they
# exit. uniffi has no hook for this, so the generated object gets an init block; the build
# fails if uniffi's output ever stops matching.
anchor='internal object uniffiRustFutureContinuationCallbackImpl: UniffiRustFutureContinuationCallback {'
grep -qF "$anchor" "$out/io/snap2p/snap2p.kt" || { echo "build-native.sh: uniffi continuation callback not found" >&2; exit 1; }
sed -i "s|^$anchor\$|$anchor\n    init { Native.setCallbackThreadInitializer(this, com.sun.jna.CallbackThreadInitializer(true, false, \"snap2p-runtime\")) }|" "$out/io/snap2p/snap2p.kt"
grep -q 'CallbackThreadInitializer(true, false' "$out/io/snap2p/snap2p.kt"
