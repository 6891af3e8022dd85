#!/usr/bin/env bash
# Node.js toolchain for the napi-rs binding (idempotent): checks Node >= 18 and npm, then
# installs node/'s pinned dev tools (@napi-rs/cli, typescript, @types/node) from the npm
# registry, skipped when node_modules already matches package-lock.json. `npm install`
# rather than `npm ci`: npm 11's lockfile omits the platform-specific optional packages of
# @napi-rs/cli for other platforms, which `npm ci` then rejects as out of sync.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
bash "$SNAP2P_ROOT/ci/setup/rust.sh"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are required (Node 20 is preinstalled on the CI image)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "Node >= 18 is required, found $(node --version)" >&2
  exit 1
fi

cd "$SNAP2P_ROOT/node"
stamp=node_modules/.snap2p-lock.sha256
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/.bin/napi ]; then
  # npm 11 rewrites the committed lockfile on a fresh install (it adds the other platforms'
  # optional packages); put it back so a CI run leaves the checkout clean and the stamp
  # stays valid for the next run.
  lock_copy=$(mktemp)
  cp package-lock.json "$lock_copy"
  # Restored on failure too, so a failed install never leaves the checkout dirty.
  trap 'cp "$lock_copy" package-lock.json && rm -f "$lock_copy"' EXIT
  npm install --no-audit --no-fund
  echo "$want" > "$stamp"
fi
