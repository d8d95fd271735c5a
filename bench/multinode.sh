#!/usr/bin/env bash
# The multi-node benchmark: bss-loadgen (C connections, create + read, ack mode) against
#   1. one node on SQLite (the default),
#   2. one node on PostgreSQL,
#   3. two nodes on PostgreSQL + Redis sharing one port (--reuse-port),
# flat out and at a fixed rate, and prints a markdown table with each run's ratio to the
# SQLite node. PostgreSQL and Redis are throwaway instances in a temp dir (unix sockets),
# started here and stopped by PID, like the tests' (scripts/setup.sh installs them).
#
#   bash bench/multinode.sh [CONNS=1000] [SECONDS=8] [RATE=5000]
#
# Needs the release binaries: cargo build --release -p backbone-socket-sync-server -p bss-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-1000}
SECONDS_PER_RUN=${2:-8}
RATE=${3:-5000}
SERVER=target/release/bss-server
LOADGEN=target/release/bss-loadgen
[ -x "$SERVER" ] && [ -x "$LOADGEN" ] || {
  echo "build first: cargo build --release -p backbone-socket-sync-server -p bss-loadgen" >&2
  exit 1
}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -n "$PG_BIN" ] && command -v redis-server >/dev/null || {
  echo "postgresql and redis-server are missing: run bash scripts/setup.sh" >&2
  exit 1
}

DIR=$(mktemp -d /tmp/bss-multinode-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# PostgreSQL: initdb refuses root, so the cluster belongs to the postgres user.
chown postgres:postgres "$DIR"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
as_pg "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
# Not through as_pg: a function run in the background is a subshell, whose PID ($!) would get
# the SIGINT of cleanup and wait on postgres forever; setpriv execs postgres under its own PID.
setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/postgres" -D "$DIR/pg" -p 5432 -k "$DIR" -c listen_addresses= -c max_connections=200 \
  >"$DIR/pg.log" 2>&1 &
PIDS+=($!)
until "$PG_BIN/pg_isready" -h "$DIR" -p 5432 -q; do sleep 0.05; done
redis-server --port 0 --unixsocket "$DIR/redis.sock" --save '' --appendonly no >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
until [ -S "$DIR/redis.sock" ]; do sleep 0.02; done
HOST_PATH=$(printf %s "$DIR" | sed 's|/|%2F|g')
pg_url() { echo "postgresql://postgres@$HOST_PATH:5432/$1"; }
createdb() { "$PG_BIN/psql" -h "$DIR" -p 5432 -U postgres -qAtc "CREATE DATABASE $1" postgres; }
PORT=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")

# start_nodes N DB [extra flags…]: N nodes on $PORT; their PIDs in NODE_PIDS.
start_nodes() {
  local n=$1 db=$2; shift 2
  NODE_PIDS=()
  for i in $(seq 1 "$n"); do
    RUST_LOG=warn "$SERVER" --port "$PORT" --db "$db" --reuse-port "$@" >"$DIR/node$i.out" 2>>"$DIR/nodes.err" &
    NODE_PIDS+=($!)
    until grep -q '^listening' "$DIR/node$i.out" 2>/dev/null; do
      kill -0 "${NODE_PIDS[-1]}" 2>/dev/null || { cat "$DIR/nodes.err" >&2; exit 1; }
      sleep 0.05
    done
  done
}
stop_nodes() {
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid"; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
rss_mib() { # summed VmRSS of the nodes
  local kib=0
  for pid in "${NODE_PIDS[@]}"; do
    kib=$((kib + $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")))
  done
  echo $((kib / 1024))
}

RESULTS=$DIR/results.jsonl
run() { # run LABEL [--rate R]
  local label=$1; shift
  local json
  json=$("$LOADGEN" --url "http://127.0.0.1:$PORT" --conns "$CONNS" --duration "$SECONDS_PER_RUN" \
    --label "$label" --endpoint "/api/bench_$RANDOM" "$@" 2>>"$DIR/loadgen.err" | tail -n1)
  node -e 'const r=JSON.parse(process.argv[1]); r.rss_mib=+process.argv[2]; r.setup=process.argv[3]; console.log(JSON.stringify(r))' \
    "$json" "$(rss_mib)" "$SETUP" >>"$RESULTS"
  echo "  $label: $(node -e 'const r=JSON.parse(process.argv[1]); console.log(`${Math.round(r.ops_per_s)} ops/s p50 ${r.p50_ms} ms p99 ${r.p99_ms} ms errors ${r.errors + r.connect_errors}`)' "$json")" >&2
}

for SETUP in "1 node, SQLite" "1 node, PostgreSQL" "2 nodes, PostgreSQL + Redis"; do
  echo "$SETUP (C=$CONNS)" >&2
  case $SETUP in
    "1 node, SQLite") start_nodes 1 "$DIR/bench.sqlite3" ;;
    "1 node, PostgreSQL") createdb one; start_nodes 1 "$(pg_url one)" ;;
    *) createdb two; start_nodes 2 "$(pg_url two)" --adapter "redis+unix://$DIR/redis.sock" ;;
  esac
  run "$SETUP, max"
  run "$SETUP, @$RATE/s" --rate "$RATE"
  stop_nodes
done

node - "$RESULTS" <<'EOF'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const base = (label) => rows.find((r) => r.setup === '1 node, SQLite' && r.label.endsWith(label));
console.log('| setup | load | ops/s | p50 ms | p99 ms | RSS MiB (nodes) | errors | ops/s vs SQLite | p99 vs SQLite |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const load = r.label.slice(r.setup.length + 2);
  const b = base(load);
  const ratio = (x, y) => (y ? (x / y).toFixed(2) : '–');
  console.log(`| ${r.setup} | ${load} | ${Math.round(r.ops_per_s)} | ${r.p50_ms} | ${r.p99_ms} | ${r.rss_mib} | ${r.errors + r.connect_errors} | ${ratio(r.ops_per_s, b.ops_per_s)} | ${ratio(r.p99_ms, b.p99_ms)} |`);
}
EOF
