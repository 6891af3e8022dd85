#!/usr/bin/env bash
# Swift on Linux: builds the uniffi cdylib on the host, generates the Swift bindings into
# swift/Sources, and runs `swift test` in the cached Debian 13 chroot (ci/setup/swift.sh)
# against the native library. Apple targets (XCFramework) are built on macOS only.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target uniffi
cd "$SNAP2P_ROOT"
bash ci/setup/host-tools.sh # openssl: the wss test certificates, made on the host
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
# The wss tests' PKI, made with the host's openssl (the chroot has none): a test CA and a
# certificate for localhost and 127.0.0.1 it signed (SNAP2P_TLS_DIR in the chroot).
tls="$root/opt/snap2p/tls"
rm -rf "$tls" && mkdir -p "$tls"
( cd "$tls"
  ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=snap2p test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
  openssl req "${ec[@]}" -keyout key.pem -out leaf.csr -subj /CN=localhost
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile leaf.ext
) >/dev/null 2>&1 || { echo "60-swift.sh: openssl could not make the test certificates" >&2; exit 1; }
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
  SNAP2P_TLS_DIR=/opt/snap2p/tls \
  sh -c 'cd /snap2p/swift && swift test --scratch-path /var/cache/snap2p-build -Xlinker -L/opt/snap2p/lib 2>&1' \
  > "$gen/swift-test.log" || status=$?
grep -vE '^\[[0-9]+/[0-9]+\]|^Test Case .* (started|passed)' "$gen/swift-test.log" | tail -60
grep -E "Executed [0-9]+ tests" "$gen/swift-test.log" | tail -1 | sed 's/^/Swift (XCTest): /'
exit $status
