#!/usr/bin/env bash
# Builds the Node package and the Node interop runner; prints the runner command last.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target node
bash "$SNAP2P_ROOT/ci/setup/node.sh" >&2
cd "$SNAP2P_ROOT/node"
npx napi build --platform --release --js native.js --dts native.d.ts >&2
cd "$SNAP2P_ROOT/examples/interop/node"
if [ ! -d node_modules/@noble/curves ]; then
  npm install --no-audit --no-fund --no-package-lock >&2
fi
echo "node $SNAP2P_ROOT/examples/interop/node/runner.mjs"
