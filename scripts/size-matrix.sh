#!/usr/bin/env bash
# Measures the release-profile and wasm-opt choices against each other (npm run size reports
# the one build the repository ships; this compares the alternatives to it): for each profile
# variant (one choice changed from the baseline at a time, through cargo's
# CARGO_PROFILE_WASM_RELEASE_* overrides, in a target dir of its own so the shared one is left
# alone) and each wasm-opt level, the gzip -9 bytes of the wasm and of everything a
# script-tag page downloads (wasm + glue + .mjs + shim), as one table.
# Slow (a full release build per variant). It builds a snapshot of the committed HEAD
# (git archive), so work in progress in the tree cannot change the source between two
# variants; www/pkg and the shared target dir are not touched.
#
# Usage: bash scripts/size-matrix.sh [LEVELS...]     (default levels: none -O2 -O3 -O4 -Os -Oz)
#        ONLY=REGEX bash scripts/size-matrix.sh ...   (only the variants whose name matches)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(none -O2 -O3 -O4 -Os -Oz)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/size-matrix}
out=$(mktemp -d)
snap=$(mktemp -d)
trap 'rm -rf "$out" "$snap"' EXIT
git archive HEAD | tar -x -C "$snap"
ln -s "$repo/node_modules" "$snap/node_modules"
cd "$snap"
echo "source: $(git -C "$repo" log -1 --format='%h %s' | cut -c1-80)"

# name|env assignments (baseline = the [profile.wasm-release] in Cargo.toml: opt-level "z",
# lto, codegen-units 1, panic abort, strip)
variants=(
  "baseline|"
  "opt-level=s|CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=s"
  "opt-level=3|CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=3"
  "opt-level=2|CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=2"
  "lto=false|CARGO_PROFILE_WASM_RELEASE_LTO=false"
  "lto=thin|CARGO_PROFILE_WASM_RELEASE_LTO=thin"
  "codegen-units=16|CARGO_PROFILE_WASM_RELEASE_CODEGEN_UNITS=16"
  "strip=false|CARGO_PROFILE_WASM_RELEASE_STRIP=false"
)

printf '%-18s %-6s %10s %10s %14s\n' variant wasm-opt 'wasm B' 'wasm gz' 'all gz (tag)'
for v in "${variants[@]}"; do
  name=${v%%|*}
  assignments=${v#*|}
  [[ -z "${ONLY:-}" || "$name" =~ $ONLY ]] || continue
  for level in "${levels[@]}"; do
    dir=$out/$name$level
    if ! env $assignments WASM_OPT_LEVEL="$level" BUILD_OUT="$dir" bash scripts/build-client.sh >"$out/log" 2>&1; then
      printf '%-18s %-6s %s\n' "$name" "$level" "build failed: $(tail -n 3 "$out/log" | tr '\n' ' ')"
      continue
    fi
    node scripts/size.mjs --json --pkg "$dir" |
      node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const w=j.files.wasm;
        console.log(process.argv[1].padEnd(18)+" "+process.argv[2].padEnd(6)+" "+String(w.raw).padStart(10)+" "+String(w.gzip).padStart(10)+" "+String(j.totals.scriptTag.gzip).padStart(14))})' \
        "$name" "$level"
  done
done
