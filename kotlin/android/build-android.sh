#!/usr/bin/env bash
# Cross-compiles the snap2p cdylib for Android with cargo-ndk and generates the Kotlin
# bindings, then builds the AAR. Needs the Android SDK + NDK (ANDROID_NDK_HOME) and the
# Android Gradle Plugin: run on a developer machine or an Android CI image, not here.
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
#   cargo install cargo-ndk
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
cd "$root"
# 16 KB pages: Android 15+ devices may use 16 KB pages, and Google Play requires 64-bit
# libraries whose LOAD segments are 16 KB aligned (NDK r27 still links for 4 KB by default).
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -P 24 \
  -o "$here/src/main/jniLibs" build --release -p snap2p-uniffi --lib
cargo build --release -p snap2p-uniffi --lib --bin uniffi-bindgen
target="${CARGO_TARGET_DIR:-$root/target}"
"$target/release/uniffi-bindgen" generate --library "$target/release/libsnap2p_uniffi.so" \
  --language kotlin --out-dir "$here/build/generated/uniffi"
cd "$here"
gradle assembleRelease   # -> build/outputs/aar/snap2p-android-release.aar
# Every .so of the AAR, checked for 16 KB-aligned LOAD segments (needs pyelftools).
python3 "$root/ci/elf_check.py" --page 16384 build/outputs/aar/*-release.aar
