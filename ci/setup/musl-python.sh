#!/usr/bin/env bash
# A musl CPython for the musllinux wheels (ci/steps/95-packages.sh, full form); idempotent,
# cached under $SNAP2P_CACHE/musl-python/<arch>. Usage: musl-python.sh [x86_64|aarch64].
# Prints as its last line: x86_64, the interpreter's path (it runs here); aarch64, the
# prefix to copy to /opt/musl-python in the arm64 chroot (bin/python3 there, under qemu).
#
# Why built here: the registries this project reaches carry no musl Python (no Alpine, no
# python-build-standalone), and a musllinux wheel must be loaded by a musl process to be
# tested at all. CPython 3.11.2 from Debian's python3.11 source package (deb-src, fetched
# with a private apt list under the cache, the system's apt configuration untouched),
# compiled against Debian 12's musl 1.2.3 (the musl of musllinux_1_2) and dynamically
# linked to it (/lib/ld-musl-<arch>.so.1), so it can dlopen extension modules. x86_64: by
# Debian's musl-gcc. aarch64: cross-compiled (a native build under qemu would take many
# times as long) by Debian's aarch64-linux-gnu-gcc with musl-gcc's recipe (a specs file:
# musl's headers, start files and libc instead of glibc's) over Debian 12's musl-dev:arm64,
# with the host's python3.11 (the same 3.11.2) as the build Python.
# Modules needing libraries Debian has no musl build of (ssl, ctypes, sqlite …) are left
# out; asyncio, sockets and threads (what snap2p and its tests use) are in.
# Cost, once: x86_64 2.5 minutes on the quiet 2-core machine (zlib and CPython, 2026-12-05);
# the first attempt took 93 minutes under a load average of about 17, and its extension
# modules failed as described at musl-cc below. Still not built: _ctypes, _lzma, _uuid, nis,
# ssl, sqlite (no musl builds of their libraries). The interpreter check at the end
# (asyncio, socket, threading, binascii, zlib, zipfile; aarch64: in the arm64 chroot) fails
# the script if one of those is missing.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
ARCH="${1:-x86_64}"
case "$ARCH" in x86_64 | aarch64) ;; *) echo "musl-python.sh: x86_64 or aarch64, not $ARCH" >&2; exit 2 ;; esac
D="$SNAP2P_CACHE/musl-python"
PREFIX="$D/$ARCH"
STAMP_WANT="musl-python-3.11.2-v2"
result() { if [ "$ARCH" = x86_64 ]; then echo "$PREFIX/bin/python3"; else echo "$PREFIX"; fi; }
if [ "$(cat "$PREFIX/.snap2p-stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then result; exit 0; fi
if [ "$ARCH" = x86_64 ]; then
  command -v musl-gcc >/dev/null || { echo "musl-gcc missing (ci/setup/packaging.sh installs musl-tools)" >&2; exit 1; }
else
  command -v aarch64-linux-gnu-gcc >/dev/null || { echo "aarch64-linux-gnu-gcc missing (ci/setup/packaging.sh)" >&2; exit 1; }
  # The interpreter check runs in the arm64 chroot (it has musl's loader).
  ARM64_ROOT=$(SNAP2P_PACKAGES_FULL=1 bash "$(dirname "$0")/packaging.sh" | tail -1)
fi
W="$D/work-$ARCH"
[ -n "$SNAP2P_CACHE" ] && [ -n "$W" ] || exit 1
rm -rf "$PREFIX" "$W"
mkdir -p "$W/src" "$W/bin" "$PREFIX"
source "$(dirname "$0")/private-apt.sh"
private_apt "$W/apt" bookworm "deb deb-src"
(cd "$W/src" && apt-get "${apt_private[@]}" source --download-only python3.11 zlib 2>&1 | grep -v 'unsandboxed' | tail -1)
tar -C "$W/src" -xzf "$W"/src/python3.11_3.11.2.orig.tar.gz
tar -C "$W/src" -xf "$(ls "$W"/src/zlib_*.orig.tar.* | head -1)"
cross=()
zlib_env=()
if [ "$ARCH" = x86_64 ]; then
  CC_REAL=musl-gcc
else
  # musl-gcc's recipe for aarch64: Debian 12's musl-dev:arm64 unpacked as the sysroot, the
  # Linux UAPI headers from the arm64 cross package (musl's own scsi/ headers win).
  S="$W/sysroot"
  (cd "$W/src" && apt-get "${apt_private[@]}" download musl:arm64 musl-dev:arm64 2>&1 | grep -v 'unsandboxed' | tail -1)
  for deb in "$W"/src/musl*_arm64.deb; do dpkg-deb -x "$deb" "$S"; done
  mkdir -p "$W/uapi"
  for h in linux asm asm-generic mtd rdma sound video xen drm misc; do
    if [ -e "/usr/aarch64-linux-gnu/include/$h" ]; then ln -s "/usr/aarch64-linux-gnu/include/$h" "$W/uapi/$h"; fi
  done
  L="$S/usr/lib/aarch64-linux-musl"
  I="-nostdinc -isystem $S/usr/include/aarch64-linux-musl -isystem $W/uapi -isystem include%s"
  {
    printf '%%rename cpp_options old_cpp_options\n\n'
    printf '*cpp_options:\n%s %%(old_cpp_options)\n\n' "$I"
    printf '*cc1:\n%%(cc1_cpu) %s\n\n' "$I"
    # libc.so is in musl:arm64's /lib/aarch64-linux-musl (musl-dev has libc.a beside the
    # start files): without that directory the link took libc.a, a static interpreter whose
    # dlopen answers "Dynamic loading not supported" (seen 2026-12-05).
    printf '*link_libgcc:\n-L%s -L%s -L .%%s\n\n' "$S/lib/aarch64-linux-musl" "$L"
    printf '*libgcc:\nlibgcc.a%%s %%:if-exists(libgcc_eh.a%%s)\n\n'
    printf '*startfile:\n%%{!shared: %s/Scrt1.o} %s/crti.o crtbeginS.o%%s\n\n' "$L" "$L"
    printf '*endfile:\ncrtendS.o%%s %s/crtn.o\n\n' "$L"
    printf '*link:\n-dynamic-linker /lib/ld-musl-aarch64.so.1 -nostdlib %%{shared:-shared} %%{static:-static} %%{rdynamic:-export-dynamic}\n\n'
  } > "$W/bin/musl-gcc.specs"
  printf '#!/bin/sh\nexec aarch64-linux-gnu-gcc "$@" -specs "%s"\n' "$W/bin/musl-gcc.specs" > "$W/bin/musl-gcc-aarch64"
  chmod +x "$W/bin/musl-gcc-aarch64"
  CC_REAL="$W/bin/musl-gcc-aarch64"
  # Cross-compiling: configure cannot run its test programs; these are the answers for Linux.
  cross=(--host=aarch64-linux-musl --build=x86_64-linux-gnu --with-build-python=/usr/bin/python3.11
    --enable-ipv6 ac_cv_file__dev_ptmx=yes ac_cv_file__dev_ptc=no
    AR=aarch64-linux-gnu-ar RANLIB=aarch64-linux-gnu-ranlib READELF=aarch64-linux-gnu-readelf)
  zlib_env=(AR=aarch64-linux-gnu-ar RANLIB=aarch64-linux-gnu-ranlib CHOST=aarch64-linux-musl)
fi
# musl-gcc is gcc with musl's headers and libraries; asked for its multiarch it answers
# gcc's (x86_64-linux-gnu), which CPython's configure (`--print-multiarch`) rejects next to
# the musl triplet, and from which setup.py (`-print-multiarch`) adds
# -I/usr/include/x86_64-linux-gnu: glibc's headers, and every extension module failed
# (`linux/errno.h` not found; seen on the first build). Both forms get musl's. For aarch64
# they get an empty answer: 3.11.2's configure derives the triplet aarch64-linux-gnu from the
# compiler whatever the libc (x86_64: x86_64-linux-musl) and stops when the multiarch
# differs ("internal configure error for the platform triplet", seen 2026-12-05); empty,
# the comparison is skipped and no multiarch include directory is added. The triplet only
# names version-specific extension files; abi3 wheels (`_snap2p.abi3.so`) do not use it.
multiarch="$ARCH-linux-musl"
[ "$ARCH" = aarch64 ] && multiarch=""
{
  printf '#!/bin/sh\n'
  printf 'for a in "$@"; do case "$a" in -print-multiarch | --print-multiarch) echo "%s"; exit 0 ;; esac; done\n' "$multiarch"
  printf 'exec %s "$@"\n' "$CC_REAL"
} > "$W/bin/musl-cc"
chmod +x "$W/bin/musl-cc"
# zlib for musl first (Debian's zlib source package, static, into the prefix): CPython's
# setup.py finds the host's zlib.h and builds binascii with USE_ZLIB_CRC32, which musl-gcc
# (musl's headers only) cannot compile: binascii, zlib and so zipfile, importlib.resources
# and pytest were missing (seen 2026-12-05).
(
  cd "$W"/src/zlib-*/
  env "${zlib_env[@]}" CFLAGS="-O2 -fPIC" CC="$W/bin/musl-cc" ./configure --prefix="$PREFIX" --static > "$W/zlib.log" 2>&1 &&
    nice -n 10 make -j"$(nproc)" >> "$W/zlib.log" 2>&1 && make install >> "$W/zlib.log" 2>&1 ||
    { tail -20 "$W/zlib.log"; exit 1; }
)
# aarch64: configured for its place in the chroot (/opt/musl-python), installed here (DESTDIR).
inst_prefix="$PREFIX"
[ "$ARCH" = aarch64 ] && inst_prefix=/opt/musl-python
(
  cd "$W/src/Python-3.11.2"
  CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib" CC="$W/bin/musl-cc" ./configure --prefix="$inst_prefix" \
    --disable-test-modules --without-ensurepip "${cross[@]}" > "$W/configure.log" 2>&1 ||
    { tail -20 "$W/configure.log"; exit 1; }
  nice -n 10 make -j"$(nproc)" > "$W/make.log" 2>&1 || { tail -40 "$W/make.log"; exit 1; }
  if [ "$ARCH" = x86_64 ]; then
    make install > "$W/install.log" 2>&1 || { tail -20 "$W/install.log"; exit 1; }
  else
    make install DESTDIR="$W/dest" > "$W/install.log" 2>&1 || { tail -20 "$W/install.log"; exit 1; }
    rm -rf "$PREFIX" && mv "$W/dest/opt/musl-python" "$PREFIX"
  fi
)
grep -A3 -E 'Failed to build these modules|necessary bits to build these' "$W/make.log" || true
rm -rf "$W"
check='import asyncio, socket, threading, binascii, zlib, zipfile, sys, sysconfig; print("musl python", sys.version.split()[0], sysconfig.get_config_var("MULTIARCH"))'
if [ "$ARCH" = x86_64 ]; then
  "$PREFIX/bin/python3" -c "$check"
else
  rm -rf "$ARM64_ROOT/opt/musl-python"
  cp -a "$PREFIX" "$ARM64_ROOT/opt/musl-python"
  chroot "$ARM64_ROOT" /opt/musl-python/bin/python3 -c "$check"
  rm -rf "$ARM64_ROOT/opt/musl-python"
fi
# The proof it is a musl process: its interpreter is musl's loader.
readelf -l "$PREFIX/bin/python3.11" | grep -q "ld-musl-$ARCH.so.1"
echo "$STAMP_WANT" > "$PREFIX/.snap2p-stamp"
result
