#!/usr/bin/env bash
# Builds the wasm client into www/pkg/ (gitignored), ready to be served or packed:
#   1. wasm-pack build --target web (cargo's [profile.wasm-release], then wasm-bindgen; the CLI
#      must equal the `=` pin in Cargo.lock, so wasm-pack never downloads one)
#   2. wasm-opt from npm `binaryen`, as one step (wasm-pack cannot download its own here, and
#      Debian's and crates.io's reject today's rustc output: see ../shared/TOOLCHAIN.md)
#   3. terser (npm devDependency): `.min` copies of the hand-written script-tag shim and ES
#      module entry. wasm-bindgen's output is shipped as it wrote it.
# Idempotent; fails loudly at the first broken step; www/pkg/ is replaced only when every
# step succeeded, so a failed build never leaves half an output behind.
#
# Knobs (for size measurements):
#   WASM_OPT_LEVEL=-Os    wasm-opt level (-O1..-O4, -Os, -Oz); none skips wasm-opt
#   BUILD_OUT=www/pkg     output folder (relative to the repository, or absolute)
set -euo pipefail
cd "$(dirname "$0")/.."

LIB=backbone_socket_sync
OUT=${BUILD_OUT:-www/pkg}
LEVEL=${WASM_OPT_LEVEL:--Os}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WASM_OPT=node_modules/.bin/wasm-opt

die() { printf 'build-client: %s\n' "$*" >&2; exit 1; }
step() { printf '[build-client] %s\n' "$*" >&2; }

command -v wasm-pack >/dev/null || die "wasm-pack not found: run scripts/setup.sh"
command -v wasm-bindgen >/dev/null || die "wasm-bindgen not found: run scripts/setup.sh"
pinned=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
cli=$(wasm-bindgen --version | awk '{ print $2 }')
[ "$pinned" = "$cli" ] || die "wasm-bindgen CLI $cli != crate $pinned in Cargo.lock: the glue would not match"
if [ "$LEVEL" != none ] && [ ! -x "$WASM_OPT" ]; then die "$WASM_OPT missing: run scripts/setup.sh (npm binaryen)"; fi
[ -d node_modules/terser ] || die "node_modules/terser missing: run scripts/setup.sh"

# Several people build at once on this machine: one build at a time per target dir, so two
# runs never swap $OUT under each other.
mkdir -p "$TARGET_DIR"
exec 9>"$TARGET_DIR/build-client.lock"
flock 9

parent=$(dirname "$OUT")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.pkg.XXXXXX")
case $tmp in /*) ;; *) tmp=$PWD/$tmp ;; esac # wasm-pack needs an absolute --out-dir
trap 'rm -rf "$tmp"' EXIT

step "wasm-pack build --target web --profile wasm-release"
wasm-pack --quiet build --target web --mode no-install --no-pack --no-opt \
  --profile wasm-release --out-dir "$tmp" --out-name "$LIB"

if [ "$LEVEL" != none ]; then
  step "wasm-opt $LEVEL"
  # strip = true in [profile.wasm-release] drops the target-features section, so the features
  # rustc's wasm32 target emits by default are named here (see ../shared/TOOLCHAIN.md).
  "$WASM_OPT" "$LEVEL" \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    --strip-debug --strip-producers \
    "$tmp/${LIB}_bg.wasm" -o "$tmp/${LIB}_bg.wasm.opt"
  mv "$tmp/${LIB}_bg.wasm.opt" "$tmp/${LIB}_bg.wasm"
fi

# What a production page downloads may use `.min` copies of the two hand-written files
# (terser; their comments and whitespace go). They find each other by name: the shim loads
# the `.min.mjs` entry, which sits beside the glue in pkg/.
step "terser: backbone-socket-sync.min.js, backbone-socket-sync.min.mjs"
node - "$tmp" "$LIB" <<'JS'
const fs = require('fs');
const { minify } = require(process.cwd() + '/node_modules/terser');
const [dir, lib] = process.argv.slice(2);
// Replaces `from` by `to`, which must occur exactly once.
function rewriteOnce(src, from, to, file) {
  const n = src.split(from).length - 1;
  if (n !== 1) throw new Error(`${file}: expected ${from} once, found it ${n} times`);
  return src.replace(from, to);
}
async function min(src, file, module) {
  const out = await minify(src, { module, ecma: 2020, compress: { passes: 2 }, mangle: true, format: { comments: false } });
  if (typeof out.code !== 'string' || !out.code) throw new Error(`${file}: terser produced nothing`);
  return out.code + '\n';
}
(async () => {
  const shim = fs.readFileSync('www/backbone-socket-sync.js', 'utf8');
  fs.writeFileSync(`${dir}/backbone-socket-sync.min.js`,
    await min(rewriteOnce(shim, "'backbone-socket-sync.mjs'", "'backbone-socket-sync.min.mjs'", 'shim'), 'shim', false));
  const entry = fs.readFileSync('www/backbone-socket-sync.mjs', 'utf8');
  fs.writeFileSync(`${dir}/backbone-socket-sync.min.mjs`,
    await min(entry.split(`'./pkg/${lib}.js'`).join(`'./${lib}.js'`), 'entry', true));
})().catch((e) => {
  console.error(`build-client: ${e.message}`);
  process.exit(1);
});
JS

# wasm-pack writes a .gitignore ("*") into its out dir, which would keep npm pack from
# shipping the output; the repository's own .gitignore already covers www/pkg/.
rm -f "$tmp/.gitignore" "$tmp/README.md"
rm -rf "$OUT"
mv -T "$tmp" "$OUT"
chmod 755 "$OUT"
trap - EXIT
step "done: $(cd "$OUT" && ls -1 | tr '\n' ' ')($(wc -c <"$OUT/${LIB}_bg.wasm") bytes of wasm)"
