#!/usr/bin/env bash
# The multi-node benchmark, one table from one run. bss-loadgen (C WebSockets, each keeping
# PIPELINE creates in flight, creates only) against
#   1. one node on SQLite (the default),
#   2. one node on PostgreSQL,
#   3. two nodes on PostgreSQL + Redis sharing one port (--reuse-port),
# all under the same load: creates/s, p50, p99, each with its ratio to the SQLite row. Then
#   4. two nodes on PostgreSQL + Redis, each under half that load on its own collection, node A
#      frozen (SIGSTOP) for FREEZE seconds: node B's creates/s during the freeze beside its
#      rate in the seconds just before (from bss-loadgen's timeline).
# PostgreSQL and Redis are throwaway instances in a temp dir (unix sockets), started here and
# stopped by PID, like the tests' (scripts/setup.sh installs them). It stops by itself.
#
#   bash bench/multinode.sh [CONNS=200] [PIPELINE=16] [SECONDS=8] [FREEZE=6]
#
# Needs the release binaries: cargo build --release -p backbone-socket-sync-server -p bss-loadgen
# (BSS_SERVER / BSS_LOADGEN name other builds.)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-200}
PIPELINE=${2:-16}
SECONDS_PER_RUN=${3:-8}
FREEZE=${4:-6}
BEFORE=4 # seconds of the freeze run measured before the freeze
SERVER=${BSS_SERVER:-target/release/bss-server}
LOADGEN=${BSS_LOADGEN:-target/release/bss-loadgen}
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
PIDS=()      # PostgreSQL and Redis
NODE_PIDS=() # the nodes of the current setup
cleanup() {
  for pid in "${NODE_PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL: initdb refuses root, so the cluster belongs to the postgres user.
chown postgres:postgres "$DIR"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
as_pg "$PG_BIN/initdb" -D "$DIR/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
# Not through as_pg: a function run in the background is a subshell, whose PID ($!) would get
# the SIGINT of cleanup and wait on postgres forever; setpriv execs postgres under its own PID.
setpriv --reuid=postgres --regid=postgres --init-groups "$PG_BIN/postgres" -D "$DIR/pg" -p 5432 -k "$DIR" \
  -c listen_addresses= -c max_connections=200 >"$DIR/pg.log" 2>&1 &
PIDS+=($!)
until "$PG_BIN/pg_isready" -h "$DIR" -p 5432 -q; do sleep 0.05; done
redis-server --port 0 --unixsocket "$DIR/redis.sock" --save '' --appendonly no >"$DIR/redis.log" 2>&1 &
PIDS+=($!)
until [ -S "$DIR/redis.sock" ]; do sleep 0.02; done
REDIS="redis+unix://$DIR/redis.sock"
HOST_PATH=$(printf %s "$DIR" | sed 's|/|%2F|g')
pg_url() { echo "postgresql://postgres@$HOST_PATH:5432/$1"; }
createdb() { "$PG_BIN/psql" -h "$DIR" -p 5432 -U postgres -qAtc "CREATE DATABASE $1" postgres; }
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# start_node PORT DB [extra flags…]: one node on PORT (--reuse-port), its PID added to NODE_PIDS.
start_node() {
  local port=$1 db=$2 i=${#NODE_PIDS[@]}; shift 2
  RUST_LOG=warn "$SERVER" --port "$port" --db "$db" --reuse-port "$@" >"$DIR/node$i.out" 2>>"$DIR/nodes.err" &
  NODE_PIDS+=($!)
  until grep -q '^listening' "$DIR/node$i.out" 2>/dev/null; do
    kill -0 "${NODE_PIDS[-1]}" 2>/dev/null || { cat "$DIR/nodes.err" >&2; exit 1; }
    sleep 0.05
  done
}
stop_nodes() {
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid"; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  NODE_PIDS=()
}

# loadgen PORT CONNS SECONDS LABEL [flags…]: one report (JSON) on stdout. Its exit status is
# ignored: a node frozen under load may answer some writes with errors, which the report counts.
loadgen() {
  local port=$1 conns=$2 seconds=$3 label=$4; shift 4
  "$LOADGEN" --url "http://127.0.0.1:$port" --conns "$conns" --pipeline "$PIPELINE" --creates-only \
    --duration "$seconds" --label "$label" --endpoint "/api/bench_$RANDOM" "$@" 2>>"$DIR/loadgen.err" | tail -n1 || true
}

RESULTS=$DIR/results.jsonl
PORT=$(free_port)
for SETUP in "1 node, SQLite" "1 node, PostgreSQL" "2 nodes, PostgreSQL + Redis"; do
  echo "$SETUP: $CONNS WebSockets x $PIPELINE creates in flight, ${SECONDS_PER_RUN} s" >&2
  case $SETUP in
    "1 node, SQLite") start_node "$PORT" "$DIR/bench.sqlite3" ;;
    "1 node, PostgreSQL") createdb one; start_node "$PORT" "$(pg_url one)" ;;
    *) createdb two; start_node "$PORT" "$(pg_url two)" --adapter "$REDIS"; start_node "$PORT" "$(pg_url two)" --adapter "$REDIS" ;;
  esac
  loadgen "$PORT" "$CONNS" "$SECONDS_PER_RUN" "$SETUP" >>"$RESULTS"
  stop_nodes
done

# The freeze: A and B on their own ports, half the connections each, A stopped for FREEZE s.
echo "2 nodes, node A frozen for ${FREEZE} s: $((CONNS / 2)) + $((CONNS / 2)) WebSockets" >&2
createdb frozen
PORT_A=$(free_port)
start_node "$PORT_A" "$(pg_url frozen)" --adapter "$REDIS"
PORT_B=$(free_port)
start_node "$PORT_B" "$(pg_url frozen)" --adapter "$REDIS"
NODE_A=${NODE_PIDS[0]}
RUN_SECONDS=$((BEFORE + FREEZE + 4))
loadgen "$PORT_A" $((CONNS / 2)) "$RUN_SECONDS" "freeze, node A" >"$DIR/freeze-a.json" &
LOAD_A=$!
loadgen "$PORT_B" $((CONNS / 2)) "$RUN_SECONDS" "freeze, node B" --timeline-ms 100 >"$DIR/freeze-b.json" &
LOAD_B=$!
# Connecting takes a moment: wait until B has stored writes, then BEFORE seconds more.
writes_b() { curl -fsS "http://127.0.0.1:$PORT_B/_bss/stats" | node -e 'process.stdin.on("data",(d)=>console.log(JSON.parse(d).writes))'; }
for _ in $(seq 300); do [ "$(writes_b 2>/dev/null)" -gt 0 ] 2>/dev/null && break; sleep 0.1; done
sleep "$BEFORE"
STOP_MS=$(date +%s%3N)
kill -STOP "$NODE_A"
sleep "$FREEZE"
kill -CONT "$NODE_A"
CONT_MS=$(date +%s%3N)
wait "$LOAD_A" "$LOAD_B" || true
stop_nodes

node - "$RESULTS" "$DIR/freeze-b.json" "$STOP_MS" "$CONT_MS" "$BEFORE" "$CONNS" "$PIPELINE" <<'EOF'
const fs = require('fs');
const [results, freezeB, stopMs, contMs, before, conns, pipeline] = process.argv.slice(2);
const rows = fs.readFileSync(results, 'utf8').trim().split('\n').map(JSON.parse);
const base = rows.find((r) => r.label === '1 node, SQLite');
const ratio = (x, y) => (y ? (x / y).toFixed(2) : '–');
const creates = (r) => r.creates / r.duration_s;
const ms = (x) => (x >= 100 ? Math.round(x) : x.toFixed(1));
console.log(`${conns} WebSockets, each with ${pipeline} creates in flight (creates only):\n`);
console.log('| setup | creates/s | p50 ms | p99 ms | errors | creates/s vs SQLite | p50 vs SQLite | p99 vs SQLite |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.label} | ${Math.round(creates(r))} | ${ms(r.p50_ms)} | ${ms(r.p99_ms)} | ${r.errors + r.connect_errors} | ` +
    `${ratio(creates(r), creates(base))} | ${ratio(r.p50_ms, base.p50_ms)} | ${ratio(r.p99_ms, base.p99_ms)} |`);
}
// Node B's rate in [stop - before, stop] and in [stop, cont], from its timeline.
const b = JSON.parse(fs.readFileSync(freezeB, 'utf8'));
const rate = (from, to) => {
  from = Math.max(from, b.begin_unix_ms);
  let n = 0;
  b.timeline.forEach((count, i) => {
    const at = b.begin_unix_ms + i * b.timeline_ms;
    if (at >= from && at + b.timeline_ms <= to) n += count;
  });
  const ms = Math.floor((to - from) / b.timeline_ms) * b.timeline_ms;
  return ms > 0 ? (n * 1000) / ms : NaN;
};
const [stop, cont] = [+stopMs, +contMs];
const pre = rate(stop - 1000 * before, stop);
const during = rate(stop, cont);
console.log(`\nNode A frozen (SIGSTOP) for ${((cont - stop) / 1000).toFixed(1)} s, ${conns / 2} WebSockets on each node:\n`);
console.log('| node B | creates/s before the freeze | creates/s during the freeze | during / before |');
console.log('|---|---:|---:|---:|');
console.log(`| 2 nodes, PostgreSQL + Redis | ${Math.round(pre)} | ${Math.round(during)} | ${ratio(during, pre)} |`);
EOF
