#!/usr/bin/env bash
# Kotlin/JVM: builds the uniffi cdylib, generates the Kotlin bindings, bundles the .so and
# runs the JUnit 5 suite (Kotlin <-> Kotlin, Kotlin <-> Rust echo peer, host signer,
# 64 MiB transfer, vectors, leak check) with Maven. The Android module is not built here.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target uniffi
cd "$SNAP2P_ROOT"
bash ci/setup/kotlin.sh
bash ci/setup/host-tools.sh # openssl: WssTest
step "cargo build -p snap2p-uniffi + uniffi-bindgen (kotlin)"
bash kotlin/build-native.sh
SNAP2P_ECHO_PEER=$(build_echo_peer); export SNAP2P_ECHO_PEER
step "mvn -q test (kotlin/)"
cd kotlin
rm -rf target/surefire-reports
status=0
mvn -B -q -Dsnap2p.skipNative=true test || status=$?
# -q hides Surefire's own summary: print it from the reports.
summary=$(cat target/surefire-reports/*.txt 2>/dev/null | grep -E '^Tests run:' || true)
echo "$summary" | sed 's/^/  /'
echo "$summary" | awk -F'[:,]' '/Tests run/ {t+=$2; f+=$4; e+=$6; s+=$8} END {printf "Kotlin (Surefire): Tests run: %d, Failures: %d, Errors: %d, Skipped: %d\n", t, f, e, s}'
if [ $status -ne 0 ]; then
  for f in target/surefire-reports/*-output.txt; do [ -s "$f" ] && { echo "--- $f"; tail -40 "$f"; }; done
fi
exit $status
