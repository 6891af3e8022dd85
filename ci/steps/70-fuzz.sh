#!/usr/bin/env bash
# Fuzzing: every cargo-fuzz target for a short bounded time on its committed seed corpus.
# FUZZ_SECS per target (default 12; 8 targets: under 2 minutes of fuzzing with the build
# cached; the first build of the targets takes much longer).
# A crash fails the step; the reproducer is left in fuzz/artifacts/<target>/.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT/fuzz"
eval "export $(bash "$SNAP2P_ROOT/ci/setup/fuzz.sh" | tail -n1)"
tc=${FUZZ_TOOLCHAIN%% *}
case "$FUZZ_TOOLCHAIN" in *RUSTC_BOOTSTRAP=1*) export RUSTC_BOOTSTRAP=1;; esac
export CARGO_TARGET_DIR="$SNAP2P_CACHE/fuzz-target"
secs=${FUZZ_SECS:-12}
step "cargo fuzz build ($tc)"
cargo $tc fuzz build -O
passed=0; failed=0
for t in $(cargo $tc fuzz list); do
  step "fuzz $t (${secs}s)"
  work=$(mktemp -d)   # new inputs go here; the committed corpus stays read-only
  mkdir -p "corpus/$t"
  if cargo $tc fuzz run -O "$t" "$work" "corpus/$t" -- \
       -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 2>"$work.log"; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+[[:space:]]+DONE)' "$work.log" || true
    echo "fuzz $t: ok"
    passed=$((passed+1))
  else
    tail -n 60 "$work.log"
    echo "fuzz $t: CRASH (artifact in fuzz/artifacts/$t)"
    failed=$((failed+1))
  fi
  rm -rf "$work" "$work.log"
done
echo "fuzz targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
