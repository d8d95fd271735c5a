#!/usr/bin/env bash
# Runs every test of the repository, from a fresh machine of this kind:
#   1. installs the toolchain (scripts/setup.sh, idempotent)
#   2. formatting and clippy, host and wasm32
#   3. native Rust tests: the client's protocol codec and session machine, the server's
#      integration tests over real sockets
#   4. the wasm client in headless Chromium (wasm-bindgen-test) against a real socket.io
#      server started here on a free loopback port
#   5. the JS tests (node --test): shim, npm package, interop with socket.io-client,
#      end-to-end demo in Chromium; each starts and stops its own servers
#   6. the benchmark's smoke run (tiny sizes: it checks every client's results, never timings)
#   7. the size report
# Every stage runs even when an earlier one failed; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

bash scripts/setup.sh || exit 1

failed=()
stages=0
stage() { # stage NAME CMD...
  local name=$1; shift
  stages=$((stages + 1))
  printf '\n===== %s =====\n' "$name"
  if "$@"; then printf -- '----- %s: ok\n' "$name"; else printf -- '----- %s: FAILED\n' "$name"; failed+=("$name"); fi
}

lint() {
  cargo fmt --all -- --check &&
  cargo clippy --workspace --all-targets -q -- -D warnings &&
  cargo clippy -p backbone-socket-sync --target wasm32-unknown-unknown --all-targets -q -- -D warnings
}

browser_tests() {
  local log pid port rc
  log=$(mktemp)
  PING_INTERVAL=300 PING_TIMEOUT=200 node tests/support/socketio-server.mjs --port 0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^LISTENING \([0-9]*\).*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "${port:-}" ]; then echo "socket.io test server did not start:"; cat "$log"; kill "$pid" 2>/dev/null; return 1; fi
  echo "socket.io test server on 127.0.0.1:$port (pid $pid)"
  SOCKET_URL="http://127.0.0.1:$port" CHROMEDRIVER=/usr/bin/chromedriver \
    wasm-pack test --headless --chrome --mode no-install
  rc=$?
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return $rc
}

js_tests() {
  # Every *.test.mjs below tests/ (js: shim + npm package; server: interop + e2e demo;
  # live: live collections + fallback; fault: drops and a kill -9 mid-run), one file at a time.
  node --test --test-concurrency=1 tests/
}

abuse_test() {
  # Each abuse of issue 11 while a well-behaved client measures its p99 (server/tests/abuse.rs);
  # timing needs the release server (the bench stage has built it already).
  # Its p99 ratios are timings on a 2-core machine shared with the abuser itself, and the
  # quiet p99 they divide by varied from 1.9 to 4.1 ms between quiet runs here: a run that
  # fails on timing alone (the test says so with "abuse: only timing failed") is run again, up
  # to 3 runs, all printed; a real regression fails every time. Any other failure (a bound not
  # held, a write lost, the RSS bound) fails the stage at once.
  cargo build --release -q -p backbone-socket-sync-server || return 1
  local run out rc
  out=$(mktemp)
  for run in 1 2 3; do
    BSS_SERVER_BIN="$ROOT/target/release/bss-server" \
      cargo test -q --workspace --test abuse -- --ignored --nocapture 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] && { rm -f "$out"; return 0; }
    if ! grep -q 'abuse: only timing failed' "$out"; then
      echo "abuse test: run $run failed a functional check: not retried"
      rm -f "$out"
      return 1
    fi
    echo "abuse test: run $run of 3 failed on timing only"
  done
  rm -f "$out"
  return 1
}

stage "lint (fmt, clippy host + wasm32)" lint
stage "native tests (cargo test --workspace)" cargo test --workspace
stage "client build (wasm release + wasm-opt)" bash scripts/build-client.sh
stage "browser tests (wasm-bindgen-test in headless Chromium)" browser_tests
stage "JS tests (node --test)" js_tests
stage "benchmark smoke run (npm run bench -- --smoke)" node bench/run.mjs --smoke
stage "abuse test (release server: one client cannot hurt the others)" abuse_test
stage "size report" node scripts/size.mjs

printf '\n===== summary =====\n'
[ ${#failed[@]} -eq 0 ] || printf 'failed stage: %s\n' "${failed[@]}"
echo "stages: $((stages - ${#failed[@]})) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
