#!/usr/bin/env bash
# Kotlin/JVM toolchain: Java 17+ and Maven from Debian; Maven itself fetches the Kotlin
# compiler, JNA, kotlinx-coroutines and JUnit from Maven Central into ~/.m2 (reused).
# Idempotent.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "ci/setup/kotlin.sh: need root to apt-get install ${need[*]}" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
java -version 2>&1 | head -1 || true
mvn -v 2>/dev/null | head -1 || true
