#!/usr/bin/env bash
# Sets everything up and runs the demo: builds the wasm client (release) and the reference
# server (release), then starts the server on http://127.0.0.1:3000/ with the embedded SQLite
# store under ./data/. Nothing else to start. Extra arguments go to the server, e.g.
#   npm start -- --port 8080 --db /tmp/todos.sqlite3
set -euo pipefail
cd "$(dirname "$0")/.."

SETUP_FOR=demo bash scripts/setup.sh
bash scripts/build-client.sh
cargo build --release -q -p backbone-socket-sync-server

mkdir -p data
echo "[demo] starting the server; open the URL it prints (Ctrl-C stops it)" >&2
exec "${CARGO_TARGET_DIR:-target}/release/bss-server" --www www "$@"
