#!/usr/bin/env bash
# Builds the Swift interop runner (swift/Sources/InteropRunner, product
# snap2p-interop-runner) in release mode inside the cached Swift chroot (ci/setup/swift.sh)
# and prints the command that runs it as the LAST line of stdout; everything else goes to
# stderr. Idempotent.
#
# The runner processes are started later by ci/interop.py, through `chroot`, so the bind
# mounts of /proc, /dev and /tmp (ci/interop.py's test certificates for the wss scenario
# are in a temporary directory: the runner must read them at the same path) are LEFT MOUNTED here and recorded (one mount point a line) in
# $SNAP2P_CACHE/interop-swift.mounts; ci/steps/80-interop.sh unmounts them when the matrix
# ends (or run: ci/interop/runner-swift.sh --unmount). The repository is only needed for
# the build: its bind mount is removed before this script returns.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target uniffi
record="$SNAP2P_CACHE/interop-swift.mounts"

unmount_recorded() {
  [ -f "$record" ] || return 0
  tac "$record" | while read -r m; do
    [ -n "$m" ] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
  done
  rm -f "$record"
}
if [ "${1:-}" = "--unmount" ]; then unmount_recorded; exit 0; fi

{
root=$(bash "$SNAP2P_ROOT/ci/setup/swift.sh" | tail -1)
cd "$SNAP2P_ROOT"

# The cdylib and the generated Swift bindings, as ci/steps/60-swift.sh makes them.
cargo build --quiet -p snap2p-uniffi --lib --bins
bin="$CARGO_TARGET_DIR/debug"
gen=$(mktemp -d)
"$bin/uniffi-bindgen" generate --library "$bin/libsnap2p_uniffi.so" --language swift --out-dir "$gen" --no-format >/dev/null
cmp -s "$gen/Snap2P.swift" swift/Sources/Snap2P/Snap2P.swift || cp -f "$gen/Snap2P.swift" swift/Sources/Snap2P/Snap2P.swift
cmp -s "$gen/snap2pFFI.h" swift/Sources/snap2pFFI/snap2pFFI.h || cp -f "$gen/snap2pFFI.h" swift/Sources/snap2pFFI/snap2pFFI.h
rm -rf "$gen"
mkdir -p "$root/snap2p" "$root/opt/snap2p/lib" "$root/var/cache/snap2p-build"
cp -f "$bin/libsnap2p_uniffi.so" "$root/opt/snap2p/lib/"

repo_mounted=
cleanup_repo() { [ -n "$repo_mounted" ] && { umount "$root/snap2p" 2>/dev/null || umount -l "$root/snap2p" || true; }; }
trap cleanup_repo EXIT
for m in proc dev tmp; do
  if ! mountpoint -q "$root/$m"; then
    mount --bind "/$m" "$root/$m"
    echo "$root/$m" >> "$record"
  fi
done
if ! mountpoint -q "$root/snap2p"; then mount --bind "$SNAP2P_ROOT" "$root/snap2p"; repo_mounted=1; fi

log="$SNAP2P_CACHE/interop-swift-build.log"
status=0
timeout 900 chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
  sh -c 'cd /snap2p/swift && swift build -c release --product snap2p-interop-runner --scratch-path /var/cache/snap2p-build -Xlinker -L/opt/snap2p/lib 2>&1' \
  > "$log" || status=$?
grep -vE '^\[[0-9]+/[0-9]+\]' "$log" | tail -40 || true
[ $status -eq 0 ] || { echo "runner-swift.sh: swift build failed ($status)"; exit $status; }
test -x "$root/var/cache/snap2p-build/release/snap2p-interop-runner"
} >&2
echo "chroot $root /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LD_LIBRARY_PATH=/opt/snap2p/lib /var/cache/snap2p-build/release/snap2p-interop-runner"
