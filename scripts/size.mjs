#!/usr/bin/env node
// Size report: the gzip -9 bytes of everything a page downloads to use backbone-socket-sync
// (the wasm, its wasm-bindgen glue, the ES module entry and, for script-tag pages, the
// shim), beside socket.io-client's own dist/socket.io.min.js from npm, measured in the same
// run, and their ratio. Target: below 1.0, the whole sync replacement lighter than
// socket.io-client alone.
//
// The headline is what a production page downloads: the `.min` shim and modules that
// scripts/build-client.sh writes into www/pkg (the documented sources minified by terser).
// The base page counts only the modules the entry imports statically; a module it loads with
// a dynamic import() when a feature is first used (live.mjs) is listed as optional, with a
// total of its own for pages that use it. The documented www/ sources are measured too, for
// a page that loads them as they are.
//
// Usage: node scripts/size.mjs [--json] [--pkg DIR]   (build first: bash scripts/build-client.sh)
//   --pkg DIR  measure another build output instead of www/pkg
// Exits 1 only when a file is missing; the ratio is reported, not enforced.

import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { gzipSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkgFlag = process.argv.indexOf('--pkg');
const pkg = pkgFlag > 0 ? path.relative(root, path.resolve(process.argv[pkgFlag + 1] ?? '')) : 'www/pkg';

// The ES modules: the entry and whatever sibling modules the build found it importing
// (each has a `.min.mjs` in the build output and a documented source in www/).
const moduleNames = existsSync(path.join(root, pkg))
  ? readdirSync(path.join(root, pkg)).filter((f) => f.endsWith('.min.mjs')).map((f) => f.slice(0, -'.min.mjs'.length))
  : [];
if (!moduleNames.includes('backbone-socket-sync')) moduleNames.unshift('backbone-socket-sync');
moduleNames.sort((a, b) => (a === 'backbone-socket-sync' ? -1 : b === 'backbone-socket-sync' ? 1 : a.localeCompare(b)));

const files = {
  wasm: { file: `${pkg}/backbone_socket_sync_bg.wasm`, what: 'wasm' },
  glue: { file: `${pkg}/backbone_socket_sync.js`, what: 'wasm-bindgen glue' },
  minShim: { file: `${pkg}/backbone-socket-sync.min.js`, what: 'script-tag shim, min' },
  shim: { file: 'www/backbone-socket-sync.js', what: 'script-tag shim' },
};
for (const name of moduleNames) {
  const what = name === 'backbone-socket-sync' ? 'ES module entry' : 'ES module';
  files[`min:${name}`] = { file: `${pkg}/${name}.min.mjs`, what: `${what}, min` };
  files[`doc:${name}`] = { file: `www/${name}.mjs`, what };
}
// Labels once it is known which modules are optional (below).
function labelLazy(lazy) {
  for (const name of lazy) {
    files[`min:${name}`].what += ', optional (import() on use)';
    files[`doc:${name}`].what += ', optional (import() on use)';
  }
}
// Which modules every page downloads: the entry and what it imports statically
// (`from './x.min.mjs'`), transitively. The others are only reached by a dynamic `import()`
// (e.g. live.mjs, on the first `live(collection)`), so a page that does not use them never
// downloads them: they are reported apart, as optional.
const staticNames = new Set();
for (const todo = ['backbone-socket-sync']; todo.length; ) {
  const name = todo.pop();
  const file = path.join(root, pkg, `${name}.min.mjs`);
  if (staticNames.has(name) || !existsSync(file)) continue;
  staticNames.add(name);
  const src = readFileSync(file, 'utf8');
  for (const m of src.matchAll(/\b(?:from|import)\s*(['"])\.\/([\w.-]+)\.min\.mjs\1/g)) todo.push(m[2]);
}
const lazyNames = moduleNames.filter((n) => !staticNames.has(n));
const minModules = moduleNames.filter((n) => staticNames.has(n)).map((n) => `min:${n}`);
const docModules = moduleNames.filter((n) => staticNames.has(n)).map((n) => `doc:${n}`);
const peer = { file: 'node_modules/socket.io-client/dist/socket.io.min.js', what: 'socket.io-client 4.8 (min)' };

labelLazy(lazyNames);

const missing = [...Object.values(files), peer].filter((f) => !existsSync(path.join(root, f.file)));
if (missing.length) {
  for (const f of missing) console.error(`size: missing ${f.file}`);
  console.error('size: build the client first (bash scripts/build-client.sh) and npm install');
  process.exit(1);
}

/** Raw and gzip -9 byte counts of one file. */
function measure(entry) {
  const bytes = readFileSync(path.join(root, entry.file));
  return { ...entry, raw: bytes.length, gzip: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length };
}

const m = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, measure(f)]));
const ref = measure(peer);
/** The sum of some measured files, and its ratio to socket.io-client. */
const total = (what, keys) => {
  const raw = keys.reduce((n, k) => n + m[k].raw, 0);
  const gzip = keys.reduce((n, k) => n + m[k].gzip, 0);
  return { what, files: keys.map((k) => m[k].file), raw, gzip, ratio: gzip / ref.gzip };
};
const totals = {
  scriptTag: total('script tag, min (wasm + glue + .min.mjs + .min.js)', ['wasm', 'glue', ...minModules, 'minShim']),
  esm: total('ES module, min (wasm + glue + .min.mjs)', ['wasm', 'glue', ...minModules]),
  scriptTagDocumented: total('script tag, documented www/ sources', ['wasm', 'glue', ...docModules, 'shim']),
};
// Each optional module on top of the script-tag page, for a page that uses it.
for (const name of lazyNames) {
  totals[`with:${name}`] = total(`script tag, min, + optional ${name}.min.mjs (when used)`, [
    'wasm', 'glue', ...minModules, 'minShim', `min:${name}`,
  ]);
}

if (process.argv.includes('--json')) {
  const list = Object.values(m).map(({ file, raw, gzip }) => ({ file, raw, gzip }));
  const socketIoClient = { file: ref.file, raw: ref.raw, gzip: ref.gzip };
  console.log(JSON.stringify({ files: list, totals, socketIoClient, ratio: totals.scriptTag.ratio }, null, 2));
} else {
  const line = (a, b, c, d) => `${a.padEnd(70)} ${String(b).padStart(8)} ${String(c).padStart(8)}  ${d}`;
  console.log(line('file', 'raw B', 'gzip -9', ''));
  for (const r of Object.values(m)) console.log(line(`${r.file} (${r.what})`, r.raw, r.gzip, ''));
  console.log(line(`${ref.file.replace('node_modules/', '')} (${ref.what})`, ref.raw, ref.gzip, ''));
  console.log('');
  console.log(line('total', 'raw B', 'gzip -9', 'ratio to socket.io-client (gzip; target < 1.0)'));
  for (const t of Object.values(totals)) console.log(line(t.what, t.raw, t.gzip, t.ratio.toFixed(3)));
}
