#!/usr/bin/env bash
# Runs every test of the project, installing what they need first (idempotent).
# Usage: ci/test.sh [step-name-substring ...]   e.g. ci/test.sh rust node
# Each ci/steps/NN-name.sh is one suite; this prints a table and a closing
# "N passed, N failed" line (suites, not test cases: each suite prints its own counts).
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
# Every suite builds with cargo: check the toolchain once, before any of them.
bash ci/setup/rust.sh || exit 1

filters=("$@")
passed=0; failed=0; results=()
start_all=$(date +%s)
for script in ci/steps/*.sh; do
  name=$(basename "$script" .sh)
  if [ ${#filters[@]} -gt 0 ]; then
    match=0; for f in "${filters[@]}"; do [[ "$name" == *"$f"* ]] && match=1; done
    [ $match -eq 1 ] || continue
  fi
  step "$name"
  t0=$(date +%s)
  if bash "$script"; then
    passed=$((passed+1)); results+=("PASS  $name  $(( $(date +%s) - t0 ))s")
  else
    failed=$((failed+1)); results+=("FAIL  $name  $(( $(date +%s) - t0 ))s")
  fi
done
step "summary ($(( $(date +%s) - start_all ))s)"
printf '%s\n' "${results[@]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
