#!/usr/bin/env bash
# The snap2p command: the README's demo (release build, as a user runs it) and the CLI's
# process-level tests (listen/dial/chat over loopback, pseudo-terminals, wallets).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "ci/demo.sh (the README's first command)"
timeout 600 bash ci/demo.sh
step "ci/demo.sh --json"
timeout 120 bash ci/demo.sh --json > "$SNAP2P_CACHE/demo.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and all(s["ok"] for s in d["steps"]), d' "$SNAP2P_CACHE/demo.json"
step "cargo test -p snap2p-cli"
timeout 900 cargo test -p snap2p-cli
