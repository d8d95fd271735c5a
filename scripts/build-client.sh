#!/usr/bin/env bash
# Builds the wasm client into www/pkg/ (gitignored), ready to be served or packed:
#   1. cargo rustc --profile wasm-release --target wasm32-unknown-unknown -p backbone-socket-sync
#      --crate-type cdylib (the release build of the wasm, with LTO really applied)
#   2. wasm-bindgen --target web (the CLI must equal the `=` pin in Cargo.lock)
#   3. wasm-opt from npm `binaryen` (Debian's and crates.io's reject today's rustc output)
#   4. the glue's import names shortened in the wasm and the glue (wasm-bindgen's carry hashes)
#   5. terser (npm devDependency): the glue (with the wasm's JS snippets, src/*.js, folded in)
#      and `.min` copies of the script-tag shim and the ES modules
# Idempotent; fails loudly at the first broken step; www/pkg/ is replaced only when every
# step succeeded, so a failed build never leaves half an output behind.
#
# Knobs (for size measurements; the defaults are the measured best, see the size report):
#   WASM_OPT_LEVEL=-Os    wasm-opt level (-O1..-O4, -Os, -Oz); none skips wasm-opt. -Os measured
#                         best on gzip (-Oz is smaller raw but ~40 B larger gzipped)
#   WASM_OPT_EXTRA=...    more wasm-opt flags (e.g. --converge)
#   BUILD_OUT=www/pkg     output folder (the size matrix builds elsewhere)
#   CARGO_PROFILE_WASM_RELEASE_*, CARGO_TARGET_DIR  cargo's own overrides of [profile.wasm-release]
set -euo pipefail
cd "$(dirname "$0")/.."

CRATE=backbone-socket-sync
LIB=backbone_socket_sync
OUT=${BUILD_OUT:-www/pkg}
LEVEL=${WASM_OPT_LEVEL:--Os}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
WASM_OPT=node_modules/.bin/wasm-opt

die() { printf 'build-client: %s\n' "$*" >&2; exit 1; }
step() { printf '[build-client] %s\n' "$*" >&2; }

command -v wasm-bindgen >/dev/null || die "wasm-bindgen not found: run scripts/setup.sh"
pinned=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
cli=$(wasm-bindgen --version | awk '{ print $2 }')
[ -n "$pinned" ] || die "no wasm-bindgen in Cargo.lock"
[ "$pinned" = "$cli" ] || die "wasm-bindgen CLI $cli != crate $pinned in Cargo.lock: the glue would not match"
if [ "$LEVEL" != none ] && [ ! -x "$WASM_OPT" ]; then die "$WASM_OPT missing: run scripts/setup.sh (npm binaryen)"; fi

# Several people build at once on this machine: one build at a time per target dir, so two
# runs never swap $OUT under each other (a mv into an existing folder would nest the output).
mkdir -p "$TARGET_DIR"
exec 9>"$TARGET_DIR/build-client.lock"
flock 9

# `cargo rustc --crate-type cdylib` rather than `cargo build`: with the crate's
# crate-type = ["cdylib", "rlib"], cargo does not pass `-C lto` at all (the rlib is for the
# native and browser tests), so `lto = true` in the profile silently did nothing;
# building the cdylib alone applies it (measured: wasm 36.2 -> 25.9 KB gzip, see the report).
step "cargo rustc --profile wasm-release --target wasm32-unknown-unknown -p $CRATE --crate-type cdylib"
cargo rustc --profile wasm-release --target wasm32-unknown-unknown -p "$CRATE" --crate-type cdylib
wasm=$TARGET_DIR/wasm32-unknown-unknown/wasm-release/$LIB.wasm
[ -f "$wasm" ] || die "$wasm was not produced (is the crate a cdylib?)"

parent=$(dirname "$OUT")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step "wasm-bindgen --target web"
wasm-bindgen --target web --out-dir "$tmp" "$wasm"

if [ "$LEVEL" != none ]; then
  step "wasm-opt $LEVEL"
  # strip = true in [profile.wasm-release] drops the target-features section, so the features
  # rustc's wasm32 target emits by default are named here (see ../shared/TOOLCHAIN.md).
  # The level runs twice around --flatten --rereloop (which rebuild the control flow from
  # scratch, so the second pass finds more to fold): measured ~0.18 KB gzip smaller than one
  # pass. The target-features section is metadata no browser reads (~0.1 KB).
  "$WASM_OPT" "$LEVEL" --flatten --rereloop "$LEVEL" \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    --strip-debug --strip-producers --strip-target-features ${WASM_OPT_EXTRA:-} \
    "$tmp/${LIB}_bg.wasm" -o "$tmp/${LIB}_bg.wasm.opt"
  mv "$tmp/${LIB}_bg.wasm.opt" "$tmp/${LIB}_bg.wasm"
fi

# What a production page downloads is minified with terser (npm devDependency): the glue in
# place, and `.min` copies of the documented shim and of the ES modules (the entry and the
# www/*.mjs it imports, statically or with a dynamic import(), transitively) beside it. They
# find each other and the glue by name, so those names are rewritten before minifying.
# Property names are never mangled (the glue's import object and the wasm exports are looked
# up by name); the modules' top-level names are, their exports are kept.
TERSER=node_modules/terser
[ -d "$TERSER" ] || die "$TERSER missing: npm install (devDependency terser)"
step "terser: glue, backbone-socket-sync.min.js, *.min.mjs"
node - "$tmp" "$LIB" <<'JS'
const fs = require('fs');
const { minify } = require(process.cwd() + '/node_modules/terser');
const [dir, lib] = process.argv.slice(2);
// Minifies one script (`module`: an ES module, whose top level may be mangled).
async function min(src, file, module) {
  const out = await minify(src, {
    module,
    ecma: 2020,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false },
  });
  if (typeof out.code !== 'string' || !out.code) throw new Error(`${file}: terser produced nothing`);
  return out.code + '\n';
}
// Replaces `from` by `to`, which must occur exactly once.
function rewriteOnce(src, from, to, file) {
  const n = src.split(from).length - 1;
  if (n !== 1) throw new Error(`${file}: expected ${from} once, found it ${n} times`);
  return src.replace(from, to);
}
// Folds the JS snippets the wasm imports (src/*.js, which wasm-bindgen copies under
// snippets/ and imports from the glue) into the glue itself: one file less to fetch, and the
// package's files list needs no sub-folder. A snippet may only use `export function`.
function inlineSnippets(glue) {
  const spaces = new Map();
  const nameOf = (file) => {
    if (!spaces.has(file)) {
      const src = fs.readFileSync(`${dir}/${file}`, 'utf8');
      if (/\bimport\b[^(]/.test(src.replace(/\/\/.*$/gm, ''))) throw new Error(`${file}: snippets may not import`);
      const names = [...src.matchAll(/^export function (\w+)/gm)].map((m) => m[1]);
      const body = src.replace(/^export function /gm, 'function ');
      if (/^\s*export\b/m.test(body)) throw new Error(`${file}: only 'export function' is supported`);
      spaces.set(file, { id: `__snippet${spaces.size}`, body, names });
    }
    return spaces.get(file).id;
  };
  const spec = `['"]\\./(snippets/[^'"]+)['"];?`;
  glue = glue
    .replace(new RegExp(`import\\s*\\{([^}]*)\\}\\s*from\\s*${spec}`, 'g'),
      (_, names, file) => `const {${names.replace(/\bas\b/g, ':')}} = ${nameOf(file)};`)
    .replace(new RegExp(`import\\s*\\*\\s*as\\s+(\\w+)\\s+from\\s*${spec}`, 'g'),
      (_, local, file) => `const ${local} = ${nameOf(file)};`);
  if (/\bfrom\s*['"]\.\/snippets\//.test(glue)) throw new Error('glue: a snippet import was not folded in');
  const defs = [...spaces.values()].map(({ id, body, names }) =>
    `const ${id} = (() => {\n${body}\nreturn { ${names.join(', ')} };\n})();\n`);
  // The definitions go after the glue's own imports (there are none besides the snippets).
  return defs.join('') + glue;
}

// LEB128 and names, as the wasm binary format writes them.
function leb(buf, pos) {
  let n = 0, shift = 0, b;
  do {
    b = buf[pos++];
    n += (b & 0x7f) * 2 ** shift;
    shift += 7;
  } while (b & 0x80);
  return [n, pos];
}
function encLeb(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
}
function readName(buf, pos) {
  const [len, p] = leb(buf, pos);
  return [buf.toString('utf8', p, p + len), p + len];
}
const encName = (s) => Buffer.concat([encLeb(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
function skipLimits(buf, p) {
  const flags = buf[p++];
  [, p] = leb(buf, p);
  if (flags & 1) [, p] = leb(buf, p);
  return p;
}
// The wasm with its import and export sections rewritten: `rename(module, name)` gives an
// import's new `[module, name]`, `renameExport(name)` an export's new name (undefined keeps
// it); every other section is copied byte for byte.
function renameImports(bytes, rename, renameExport) {
  const out = [bytes.subarray(0, 8)];
  for (let pos = 8; pos < bytes.length; ) {
    const id = bytes[pos];
    const [size, start] = leb(bytes, pos + 1);
    const end = start + size;
    if (id === 7) {
      let [count, p] = leb(bytes, start);
      const parts = [encLeb(count)];
      for (let i = 0; i < count; i++) {
        let name;
        [name, p] = readName(bytes, p);
        const desc = p;
        [, p] = leb(bytes, p + 1); // kind, index
        parts.push(encName(renameExport(name) ?? name), bytes.subarray(desc, p));
      }
      if (p !== end) throw new Error('wasm: export section not parsed to its end');
      const body = Buffer.concat(parts);
      out.push(Buffer.from([7]), encLeb(body.length), body);
      pos = end;
      continue;
    }
    if (id !== 2) {
      out.push(bytes.subarray(pos, end));
      pos = end;
      continue;
    }
    let [count, p] = leb(bytes, start);
    const parts = [encLeb(count)];
    for (let i = 0; i < count; i++) {
      let mod, name;
      [mod, p] = readName(bytes, p);
      [name, p] = readName(bytes, p);
      const desc = p;
      const kind = bytes[p++];
      if (kind === 0) [, p] = leb(bytes, p); // function: type index
      else if (kind === 1) p = skipLimits(bytes, p + 1); // table: reftype, limits
      else if (kind === 2) p = skipLimits(bytes, p); // memory: limits
      else if (kind === 3) p += 2; // global: valtype, mutability
      else throw new Error(`wasm: import kind ${kind} not handled`);
      const [newMod, newName] = rename(mod, name);
      parts.push(encName(newMod), encName(newName), bytes.subarray(desc, p));
    }
    if (p !== end) throw new Error('wasm: import section not parsed to its end');
    const body = Buffer.concat(parts);
    out.push(Buffer.from([2]), encLeb(body.length), body);
    pos = end;
  }
  return Buffer.concat(out);
}
// wasm-bindgen names the glue's functions `__wbg_<name>_<16 hex digits of hash>`; each name is
// written in the wasm's import section and as a key of the glue's import object, and the
// hashes barely compress (~0.8 KB gzip of wasm). They become short names, in both files; so do
// the import modules' names (`./<lib>_bg.js`, `./snippets/…/src/xhr.js`) and the wasm's exports (`__wbindgen_export3`, `socket_emit`, …), which the glue reads only as
// `wasm.<name>` (and `<lib>_bg.wasm.d.ts` lists).
function shortenImports(glue) {
  const wasmFile = `${dir}/${lib}_bg.wasm`;
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const short = (i) => {
    let s = '';
    do {
      s = letters[i % 52] + s;
      i = Math.floor(i / 52) - 1;
    } while (i >= 0);
    return s;
  };
  const names = new Map();
  const exports = new Map();
  const modules = new Map();
  const wasm = renameImports(
    fs.readFileSync(wasmFile),
    (mod, name) => {
      if (!modules.has(mod)) modules.set(mod, short(modules.size));
      if (mod !== `./${lib}_bg.js`) return [modules.get(mod), name];
      if (!names.has(name)) names.set(name, short(names.size));
      return [modules.get(mod), names.get(name)];
    },
    (name) => {
      if (name === 'memory') return undefined;
      exports.set(name, short(exports.size));
      return exports.get(name);
    },
  );
  glue = glue.replace(/\bwasm\.(\w+)\b/g, (whole, name) => {
    if (name === 'memory') return whole;
    if (!exports.has(name)) throw new Error(`glue: wasm.${name} is not an export`);
    return `wasm.${exports.get(name)}`;
  });
  // The modules are keys of the object the glue instantiates the wasm with (the snippets'
  // `import` statements name files, not wasm modules, and are left alone).
  for (const [from, to] of modules) {
    const quoted = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const key = new RegExp(`(["'])${quoted}\\1(?=\\s*:)`, 'g');
    if (!key.test(glue)) throw new Error(`glue: no key for the wasm's import module ${from}`);
    glue = glue.replace(key, to);
  }
  const dts = `${dir}/${lib}_bg.wasm.d.ts`;
  if (fs.existsSync(dts)) {
    fs.writeFileSync(dts, fs.readFileSync(dts, 'utf8').replace(/^export const (\w+):/gm,
      (whole, name) => (exports.has(name) ? `export const ${exports.get(name)}:` : whole)));
  }
  for (const [from, to] of names) {
    const key = new RegExp(`\\b${from}(?=\\s*:)`, 'g');
    const n = (glue.match(key) || []).length;
    if (n !== 1) throw new Error(`glue: import ${from} is a key ${n} times, expected once`);
    glue = glue.replace(key, to);
    if (new RegExp(`\\b${from}\\b`).test(glue)) throw new Error(`glue: ${from} is used other than as a key`);
  }
  new WebAssembly.Module(wasm); // still a valid module
  fs.writeFileSync(wasmFile, wasm);
  return glue;
}

(async () => {
  const glue = `${dir}/${lib}.js`;
  const folded = inlineSnippets(shortenImports(fs.readFileSync(glue, 'utf8')));
  fs.rmSync(`${dir}/snippets`, { recursive: true, force: true });
  fs.writeFileSync(glue, await min(folded, glue, true));

  const shim = fs.readFileSync('www/backbone-socket-sync.js', 'utf8');
  fs.writeFileSync(`${dir}/backbone-socket-sync.min.js`,
    await min(rewriteOnce(shim, "'backbone-socket-sync.mjs'", "'backbone-socket-sync.min.mjs'", 'shim'), 'shim', false));

  // The entry and the sibling modules it imports ('./name.mjs'), transitively.
  const relImport = /(\bfrom\s*|\bimport\s*\(?\s*)(['"])\.\/([\w.-]+)\.mjs\2/g;
  const modules = new Set();
  for (const todo = ['backbone-socket-sync']; todo.length; ) {
    const name = todo.pop();
    if (modules.has(name)) continue;
    modules.add(name);
    for (const m of fs.readFileSync(`www/${name}.mjs`, 'utf8').matchAll(relImport)) todo.push(m[3]);
  }
  for (const name of modules) {
    let src = fs.readFileSync(`www/${name}.mjs`, 'utf8');
    if (name === 'backbone-socket-sync') src = rewriteOnce(src, `'./pkg/${lib}.js'`, `'./pkg/${lib}.js'`, 'entry');
    src = src.replace(relImport, (_, kw, q, dep) => `${kw}${q}./${dep}.min.mjs${q}`).split("'./pkg/").join("'./");
    fs.writeFileSync(`${dir}/${name}.min.mjs`, await min(src, name, true));
  }
})().catch((e) => {
  console.error(`build-client: ${e.message}`);
  process.exit(1);
});
JS

# wasm-bindgen writes a .gitignore ("*") into its out dir, which would keep npm pack from
# shipping the output; the repository's own .gitignore already covers www/pkg/.
rm -f "$tmp/.gitignore" "$tmp/package.json"
rm -rf "$OUT"
mv -T "$tmp" "$OUT"
chmod 755 "$OUT"
trap - EXIT
step "done: $(cd "$OUT" && ls -1 | tr '\n' ' ')($(wc -c <"$OUT/${LIB}_bg.wasm") bytes of wasm)"
