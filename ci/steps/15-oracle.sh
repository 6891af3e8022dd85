#!/usr/bin/env bash
# Identity layer checked independently against stacks.js (npm registry).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
bash "$SNAP2P_ROOT/ci/oracle.sh"
