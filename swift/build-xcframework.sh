#!/usr/bin/env bash
# Builds snap2pFFI.xcframework (static libsnap2p_uniffi.a for iOS, iOS simulator and macOS,
# with the uniffi header and module map) and generates Sources/Snap2P/Snap2P.swift.
# Package.swift then uses the XCFramework as a binary target.
#
# RUNS ON macOS ONLY (Xcode command line tools + rustup). It is not run on the Linux CI
# machines, and no XCFramework has been built or tested there.
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin
set -euo pipefail
[ "$(uname)" = Darwin ] || { echo "build-xcframework.sh needs macOS (xcodebuild, lipo)" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
target="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

build() { # $1 = rust target
  cargo rustc --release -p snap2p-uniffi --lib --target "$1" --crate-type staticlib
}
for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin; do
  build "$t"
done

# Bindings from the host dylib (the metadata is the same for every target).
cargo build --release -p snap2p-uniffi --lib --bin uniffi-bindgen
gen="$here/build/generated"
rm -rf "$gen" && mkdir -p "$gen/include"
"$target/release/uniffi-bindgen" generate --library "$target/release/libsnap2p_uniffi.dylib" \
  --language swift --out-dir "$gen"
cp "$gen/Snap2P.swift" "$here/Sources/Snap2P/Snap2P.swift"
cp "$gen/snap2pFFI.h" "$here/Sources/snap2pFFI/snap2p_raw.h" "$gen/include/"
# XCFramework module map: no `link` line (the static library is linked by SwiftPM).
printf 'module snap2pFFI {\n    header "snap2pFFI.h"\n    header "snap2p_raw.h"\n    export *\n}\n' > "$gen/include/module.modulemap"

fat() { # $1 = output, rest = rust targets
  local out="$1"; shift
  mkdir -p "$(dirname "$out")"
  lipo -create $(for t in "$@"; do echo "$target/$t/release/libsnap2p_uniffi.a"; done) -output "$out"
}
fat "$here/build/ios-sim/libsnap2p_uniffi.a" aarch64-apple-ios-sim x86_64-apple-ios
fat "$here/build/macos/libsnap2p_uniffi.a" aarch64-apple-darwin x86_64-apple-darwin

rm -rf "$here/snap2pFFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target/aarch64-apple-ios/release/libsnap2p_uniffi.a" -headers "$gen/include" \
  -library "$here/build/ios-sim/libsnap2p_uniffi.a" -headers "$gen/include" \
  -library "$here/build/macos/libsnap2p_uniffi.a" -headers "$gen/include" \
  -output "$here/snap2pFFI.xcframework"
echo "built $here/snap2pFFI.xcframework; now: swift build / swift test (macOS) or add the package in Xcode"
