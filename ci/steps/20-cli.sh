#!/usr/bin/env bash
# The snap2p command: the README's demo, a release build as a user runs it. The CLI's
# process-level tests (listen/dial/chat over loopback, pseudo-terminals, wallets) run in
# the rust suite's `cargo test` (the workspace's default members are core and the CLI);
# running them here again with `-p snap2p-cli` compiled core a second time, for another
# feature set (ci/env.sh, main_build), and ran the same tests twice.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "ci/demo.sh (the README's first command)"
timeout 600 bash ci/demo.sh
step "ci/demo.sh --json"
timeout 120 bash ci/demo.sh --json > "$SNAP2P_CACHE/demo.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and all(s["ok"] for s in d["steps"]), d' "$SNAP2P_CACHE/demo.json"
