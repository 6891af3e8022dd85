#!/usr/bin/env bash
# Before/after of a change: two snap2p-bench binaries (built from two commits) run the same
# workloads alternately, round by round (A B, B A, A B, …), snap2p rows only; prints each
# row's median and min–max for both and the after/before ratio of medians.
#   ci/bench-ab.sh BEFORE_COMMIT [ROUNDS] [WORKLOADS…]     (default: 5, bulk small connect streams idle)
# Builds both binaries in their own target dirs under ~/.cache/snap2p (release, no libp2p).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$SNAP2P_ROOT"
before=${1:?usage: ci/bench-ab.sh BEFORE_COMMIT [ROUNDS] [WORKLOADS...]}
rounds=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))
workloads=("${@:-bulk small connect streams idle}")
# shellcheck disable=SC2206
workloads=(${workloads[*]})
tree="$SNAP2P_CACHE/ab-before"
rm -rf "$tree"; git worktree prune
git worktree add -q --detach "$tree" "$before"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT
(cd "$tree" && CARGO_TARGET_DIR="$SNAP2P_CACHE/target-ab-before" cargo build -q --release -p snap2p-bench)
CARGO_TARGET_DIR="$SNAP2P_CACHE/target-ab-after" cargo build -q --release -p snap2p-bench
A="$SNAP2P_CACHE/target-ab-before/release/snap2p-bench"
B="$SNAP2P_CACHE/target-ab-after/release/snap2p-bench"
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
  for side in $order; do
    bin=$A; [ "$side" = B ] && bin=$B
    "$bin" "${workloads[@]}" --rounds 1 --only snap2p --out "$out/$side-$r.md" > "$out/$side-$r.log" 2>&1
  done
  echo "round $r/$rounds done" >&2
done
python3 - "$out" "$rounds" "$before" <<'PY'
import glob, statistics, sys
out, rounds, before = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for side in "AB":
    for f in sorted(glob.glob(f"{out}/{side}-*.md")):
        for line in open(f):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 5 or cells[1] != "snap2p":
                continue
            try:
                v = float(cells[2])
            except ValueError:
                continue
            rows.setdefault((cells[0], cells[4]), {"A": [], "B": []})[side].append(v)
print(f"before = {before}, after = working tree; {rounds} rounds alternated (A B, B A, ...)")
print()
print("| workload | unit | before median (range) | after median (range) | after/before |")
print("|---|---|---|---|---|")
for (w, unit), v in rows.items():
    a, b = v["A"], v["B"]
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"| {w} | {unit} | {ma:.4g} ({min(a):.4g}–{max(a):.4g}) | {mb:.4g} ({min(b):.4g}–{max(b):.4g}) | {mb/ma:.2f}× |")
PY
