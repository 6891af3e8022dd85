#!/usr/bin/env bash
# Swift on Linux: builds the uniffi cdylib on the host, generates the Swift bindings into
# swift/Sources, and runs `swift test` in the cached Debian 13 chroot (ci/setup/swift.sh)
# against the native library. Apple targets (XCFramework) are built on macOS only.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target uniffi
cd "$SNAP2P_ROOT"
root=$(bash ci/setup/swift.sh | tail -1)

step "cargo build -p snap2p-uniffi + uniffi-bindgen (swift)"
cargo build --quiet -p snap2p-uniffi --lib --bins
bin="$CARGO_TARGET_DIR/debug"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
"$bin/uniffi-bindgen" generate --library "$bin/libsnap2p_uniffi.so" --language swift --out-dir "$gen" --no-format >/dev/null
cp -f "$gen/Snap2P.swift" swift/Sources/Snap2P/Snap2P.swift
cp -f "$gen/snap2pFFI.h" swift/Sources/snap2pFFI/snap2pFFI.h

# Inside the chroot: the repository at /snap2p, the native files at /opt/snap2p, the
# SwiftPM build cache at /var/cache/snap2p-build (kept in the cached chroot).
mkdir -p "$root/snap2p" "$root/opt/snap2p/lib" "$root/opt/snap2p/bin" "$root/var/cache/snap2p-build"
cp -f "$bin/libsnap2p_uniffi.so" "$root/opt/snap2p/lib/"
echo_peer=$(build_echo_peer)
cp -f "$echo_peer" "$root/opt/snap2p/bin/"
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do
    umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true
  done
  rm -rf "$gen"
}
trap cleanup EXIT
mount_bind() { if ! mountpoint -q "$2"; then mount --bind "$1" "$2"; mounted+=("$2"); fi; }
mount_bind /proc "$root/proc"
mount_bind /dev "$root/dev"
mount_bind "$SNAP2P_ROOT" "$root/snap2p"

step "swift test (Debian 13 chroot, $(chroot "$root" swift --version 2>/dev/null | head -1))"
status=0
timeout 450 chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
  LD_LIBRARY_PATH=/opt/snap2p/lib \
  SNAP2P_ECHO_PEER=/opt/snap2p/bin/echo_peer \
  SNAP2P_VECTORS=/snap2p/core/tests/vectors/identity.json \
  sh -c 'cd /snap2p/swift && swift test --scratch-path /var/cache/snap2p-build -Xlinker -L/opt/snap2p/lib 2>&1' \
  > "$gen/swift-test.log" || status=$?
grep -vE '^\[[0-9]+/[0-9]+\]|^Test Case .* (started|passed)' "$gen/swift-test.log" | tail -60
grep -E "Executed [0-9]+ tests" "$gen/swift-test.log" | tail -1 | sed 's/^/Swift (XCTest): /'
exit $status
