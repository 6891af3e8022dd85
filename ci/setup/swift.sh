#!/usr/bin/env bash
# Swift 6 toolchain for Linux: a Debian 13 (trixie) chroot holding Debian's `swiftlang`
# package (Debian 12 has no Swift). Created once with debootstrap, cached outside the repo
# and reused; idempotent. Prints the chroot path on its last line.
#   SNAP2P_SWIFT_ROOT  overrides the location (default /var/cache/snap2p-swift when
#                      writable, else $SNAP2P_CACHE/swift-chroot).
set -euo pipefail
source "$(dirname "$0")/../env.sh"

if [ -n "${SNAP2P_SWIFT_ROOT:-}" ]; then
  root="$SNAP2P_SWIFT_ROOT"
elif [ -w /var/cache ]; then
  root=/var/cache/snap2p-swift
else
  root="$SNAP2P_CACHE/swift-chroot"
fi
marker="$root/.snap2p-swift-ready"
if [ -f "$marker" ] && [ -x "$root/usr/bin/swift" ]; then
  echo "$root"; exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "ci/setup/swift.sh: debootstrap and chroot need root" >&2; exit 1; }
# One setup at a time: a second run (two checkouts testing at once) would otherwise take
# the first one's half-made chroot for an interrupted one and start it again from scratch.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
if [ -f "$marker" ] && [ -x "$root/usr/bin/swift" ]; then
  echo "$root"; exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# A half-made chroot (interrupted debootstrap) is restarted from scratch.
if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/.snap2p-debootstrap-done" ]; then
  # Bind mounts left inside it (/proc, /dev, /tmp of the interop runner) go first: rm -rf
  # would otherwise descend into the host's own directories.
  if [ -d "$root" ]; then
    findmnt -R -n -l -o TARGET --target "$root" | grep -F "$root/" | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  fi
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian
  touch "$root/.snap2p-debootstrap-done"
fi

cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
}
trap cleanup EXIT
for m in proc dev; do
  if ! mountpoint -q "$root/$m"; then mount --bind "/$m" "$root/$m"; mounted+=("$root/$m"); fi
done
chroot "$root" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends swiftlang libc6-dev >/dev/null'
chroot "$root" swift --version
touch "$marker"
echo "$root"
