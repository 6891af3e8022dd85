#!/usr/bin/env bash
# Discovery (issue 30): signed endpoint adverts (vectors, the durable cache) and the
# Mainline DHT on a local testnet of 50 nodes on 127.0.0.1 (mainline's Testnet; nothing
# leaves loopback): in-process peers (core/tests/discovery_dht.rs: publish, resolve,
# dial, tampered / expired / wrong-key / replayed records refused, older seq never
# replaces newer across a cache restart) and `snap2p` in separate processes
# (examples/cli/tests/discovery.rs). The DHT tests are ignored in a plain `cargo test`
# (they start 100 DHT nodes); this step runs them.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$SNAP2P_ROOT"
step "cargo test --test discovery_adverts --test discovery_dht --test discovery -- --include-ignored"
cargo test --test discovery_adverts --test discovery_dht --test discovery -- --include-ignored
step "python3 ci/layers.py core/src"
python3 ci/layers.py core/src
