#!/usr/bin/env bash
# Builds the Kotlin interop runner (examples/interop/kotlin/Runner.kt, compiled with the
# Kotlin test sources by kotlin/pom.xml) and prints the command that runs it as the LAST
# line of stdout; everything else goes to stderr. Idempotent: reuses the cargo target dir,
# the generated bindings and ~/.m2.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target uniffi
{
  bash "$SNAP2P_ROOT/ci/setup/kotlin.sh"
  # The cdylib (bundled as a JNA resource) and the generated Kotlin bindings.
  bash "$SNAP2P_ROOT/kotlin/build-native.sh"
  cd "$SNAP2P_ROOT/kotlin"
  timeout 600 mvn -B -q -Dsnap2p.skipNative=true test-compile
  timeout 300 mvn -B -q dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile="$SNAP2P_CACHE/interop-kotlin.classpath"
} >&2
k="$SNAP2P_ROOT/kotlin/target"
test -f "$k/test-classes/io/snap2p/interop/RunnerKt.class"
test -f "$k/classes/linux-x86-64/libsnap2p_uniffi.so"
# target/classes holds linux-x86-64/libsnap2p_uniffi.so: JNA loads it from the classpath.
echo "java -Xss4m -cp $k/classes:$k/test-classes:$(cat "$SNAP2P_CACHE/interop-kotlin.classpath") io.snap2p.interop.RunnerKt"
