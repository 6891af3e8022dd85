#!/usr/bin/env bash
# Node.js binding (napi-rs): build the addon and the Rust interop peer, lint, type-check,
# run node --test, then `npm pack` both packages and run the README example from a fresh
# install in an empty directory.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
use_target node
bash "$SNAP2P_ROOT/ci/setup/node.sh"
bash "$SNAP2P_ROOT/ci/setup/host-tools.sh" # openssl: the wss tests
cd "$SNAP2P_ROOT/node"

step "node: cargo fmt + clippy (snap2p-node)"
cargo fmt -p snap2p-node -- --check
cargo clippy -p snap2p-node --all-targets -- -D warnings

step "node: napi build --platform --release"
npx napi build --platform --release --js native.js --dts native.d.ts
SNAP2P_ECHO_PEER=$(build_echo_peer); export SNAP2P_ECHO_PEER

step "node: tsc (index.d.ts against test/types/usage.ts)"
npx tsc -p test/types

step "node: node --test"
node --test --test-timeout=180000 --test-concurrency=2 test/*.test.js

step "node: npm pack + install into an empty directory + README example"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The platform package of this machine and the main package (with every platform package
# as an optionalDependency), laid out as the release publishes them (node/npm/pack.js).
node npm/pack.js "$work/pkg" linux-x64-gnu=snap2p.linux-x64-gnu.node >/dev/null
ls "$work/pkg"/*.tgz
mkdir "$work/app"
cp "$SNAP2P_ROOT/examples/node/readme-example.js" "$work/app/"
(
  cd "$work/app"
  npm init -y >/dev/null
  npm install --no-audit --no-fund --offline "$work"/pkg/snap2p-linux-x64-gnu-*.tgz "$work"/pkg/snap2p-0*.tgz
  test ! -e node_modules/snap2p/snap2p.linux-x64-gnu.node # the binary comes from the platform package
  timeout 60 node readme-example.js
)
echo "node: packed tarballs install and run the README example"
