#!/usr/bin/env bash
# Installs everything this repository needs to build and test, idempotently, from the
# package registries this machine kind reaches (see ../shared/TOOLCHAIN.md).
# Safe to run again: each step is skipped when its tool is already at the right version.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen = "=…"` pin in Cargo.toml

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# SETUP_FOR=demo skips what only the tests need (a browser and its driver, PostgreSQL, Redis).
FOR_TESTS=1; [ "${SETUP_FOR:-}" = demo ] && FOR_TESTS=0

if [ "$FOR_TESTS" = 1 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  log "installing chromium + chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# PostgreSQL and Redis for the multi-node tests: the tests start throwaway instances of
# their own (unix sockets in temp dirs), so the Debian services are never started here.
if [ "$FOR_TESTS" = 1 ] && { ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v redis-server >/dev/null; }; then
  log "installing postgresql + redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (no --locked: see TOOLCHAIN.md)"
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# The client's build (scripts/build-client.sh) is `wasm-pack build`: the demo needs it too.
if ! command -v wasm-pack >/dev/null; then
  log "installing wasm-pack"
  cargo install -q wasm-pack --locked
fi

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || \
   { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  log "installing npm dev dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; \
  else npm install --no-audit --no-fund --loglevel=error; fi
fi
log "toolchain ready"
