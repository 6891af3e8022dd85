#!/usr/bin/env bash
# A musl CPython for the musllinux wheel (ci/steps/95-packages.sh, full form); idempotent,
# cached under $SNAP2P_CACHE/musl-python. Prints the interpreter's path as its last line.
#
# Why built here: the registries this project reaches carry no musl Python (no Alpine, no
# python-build-standalone), and a musllinux wheel must be loaded by a musl process to be
# tested at all. CPython 3.11.2 from Debian's python3.11 source package (deb-src, fetched
# with a private apt list under the cache, the system's apt configuration untouched),
# compiled by Debian's musl-gcc (musl 1.2.3, the musl of musllinux_1_2) and dynamically
# linked to musl (/lib/ld-musl-x86_64.so.1), so it can dlopen extension modules. Modules
# needing libraries Debian has no musl build of (ssl, ctypes, sqlite …) are left
# out; asyncio, sockets and threads (what snap2p and its tests use) are in.
# Cost, once: 2.5 minutes on the quiet 2-core machine (zlib and CPython, 2026-12-05); the
# first attempt took 93 minutes under a load average of about 17, and its extension modules
# failed as described at musl-cc below. Still not built: _ctypes, _lzma, _uuid, nis, ssl,
# sqlite (no musl builds of their libraries). The interpreter check at the end (asyncio,
# socket, threading, binascii, zlib, zipfile) fails the script if one of those is missing.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
command -v musl-gcc >/dev/null || { echo "musl-gcc missing (ci/setup/packaging.sh installs musl-tools)" >&2; exit 1; }

D="$SNAP2P_CACHE/musl-python"
PREFIX="$D/x86_64"
STAMP_WANT="musl-python-3.11.2-v2"
if [ "$(cat "$PREFIX/.snap2p-stamp" 2>/dev/null)" = "$STAMP_WANT" ]; then
  echo "$PREFIX/bin/python3"
  exit 0
fi
rm -rf "$D"
mkdir -p "$D/apt/parts" "$D/apt/lists/partial" "$D/apt/cache" "$D/src" "$D/bin"
cat > "$D/apt/parts/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_private=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$D/apt/parts"
  -o "Dir::State::Lists=$D/apt/lists" -o "Dir::Cache=$D/apt/cache")
apt-get "${apt_private[@]}" update -qq 2>&1 | grep -v 'unsandboxed' || true
(cd "$D/src" && apt-get "${apt_private[@]}" source --download-only python3.11 zlib 2>&1 | grep -v 'unsandboxed' | tail -1)
tar -C "$D/src" -xzf "$D"/src/python3.11_3.11.2.orig.tar.gz
tar -C "$D/src" -xf "$(ls "$D"/src/zlib_*.orig.tar.* | head -1)"
# musl-gcc is gcc with musl's headers and libraries; asked for its multiarch it answers
# gcc's (x86_64-linux-gnu), which CPython's configure (`--print-multiarch`) rejects next to
# the musl triplet, and from which setup.py (`-print-multiarch`) adds
# -I/usr/include/x86_64-linux-gnu: glibc's headers, and every extension module failed
# (`linux/errno.h` not found; seen on the first build). Both forms get musl's.
cat > "$D/bin/musl-cc" <<'EOF'
#!/bin/sh
for a in "$@"; do case "$a" in -print-multiarch | --print-multiarch) echo x86_64-linux-musl; exit 0 ;; esac; done
exec musl-gcc "$@"
EOF
chmod +x "$D/bin/musl-cc"
# zlib for musl first (Debian's zlib source package, static, into the prefix): CPython's
# setup.py finds the host's zlib.h and builds binascii with USE_ZLIB_CRC32, which musl-gcc
# (musl's headers only) cannot compile: binascii, zlib and so zipfile, importlib.resources
# and pytest were missing (seen 2026-12-05).
(
  cd "$D"/src/zlib-*/
  CFLAGS="-O2 -fPIC" CC="$D/bin/musl-cc" ./configure --prefix="$PREFIX" --static > "$D/zlib.log" 2>&1 &&
    nice -n 10 make -j"$(nproc)" >> "$D/zlib.log" 2>&1 && make install >> "$D/zlib.log" 2>&1 ||
    { tail -20 "$D/zlib.log"; exit 1; }
)
(
  cd "$D/src/Python-3.11.2"
  CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib" CC="$D/bin/musl-cc" ./configure --prefix="$PREFIX" --disable-test-modules --without-ensurepip > "$D/configure.log" 2>&1 ||
    { tail -20 "$D/configure.log"; exit 1; }
  nice -n 10 make -j"$(nproc)" > "$D/make.log" 2>&1 || { tail -40 "$D/make.log"; exit 1; }
  make install > "$D/install.log" 2>&1 || { tail -20 "$D/install.log"; exit 1; }
)
rm -rf "$D/src" "$D/apt"
"$PREFIX/bin/python3" -c 'import asyncio, socket, threading, binascii, zlib, zipfile, sys; print("musl python", sys.version.split()[0])'
# The proof it is a musl process: its interpreter is musl's loader.
readelf -l "$PREFIX/bin/python3.11" | grep -q 'ld-musl-x86_64.so.1'
echo "$STAMP_WANT" > "$PREFIX/.snap2p-stamp"
echo "$PREFIX/bin/python3"
