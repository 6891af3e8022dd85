#!/usr/bin/env bash
# Checks snap2p's identity layer against stacks.js (see ci/oracle/verify.mjs).
# Idempotent: installs the pinned npm packages only when needed, then runs
#   1. the committed vectors (core/tests/vectors/identity.json, grants.json),
#   2. the recorded sessions of handshake.json and rekey.json, opened frame by frame from
#      the Noise spec and docs/PROTOCOL.md alone (ci/oracle/transcript.mjs: node:crypto and
#      @noble/curves),
#   3. fresh wallets, attestations, alias cards and a wallet file generated now by Rust.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
oracle="$root/ci/oracle"

cd "$oracle"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

echo "== identity vectors"
node verify.mjs "$root/core/tests/vectors/identity.json"

echo "== permission grant vectors"
node verify.mjs --grants "$root/core/tests/vectors/grants.json"

echo "== recorded sessions: Noise XX, transport ciphers, rekeys, aes-gcm (handshake.json, rekey.json)"
node transcript.mjs "$root/core/tests/vectors/handshake.json" "$root/core/tests/vectors/rekey.json"

echo "== fresh identities from Rust"
fresh="$(mktemp)"
trap 'rm -f "$fresh"' EXIT
(cd "$root" && cargo run --quiet -p snap2p --example gen_fresh_identity -- "${FRESH_WALLETS:-6}") >"$fresh"
node verify.mjs --fresh "$fresh"
