#!/usr/bin/env node
// Size report: the gzip -9 bytes of what a page downloads to use backbone-socket-sync (the
// wasm, wasm-bindgen's glue as it wrote it, the ES module entry and, for script-tag pages, the
// shim; the `.min` copies scripts/build-client.sh writes with terser), beside socket.io-client's
// own dist/socket.io.min.js from npm, measured in the same run, and their ratio. Target: below
// 4.0.
//
// Usage: node scripts/size.mjs [--json] [--pkg DIR]   (build first: bash scripts/build-client.sh)
// Exits 1 only when a file is missing; the ratio is reported, not enforced.

import { readFileSync, existsSync } from 'node:fs';
import { gzipSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flag = process.argv.indexOf('--pkg');
const pkg = flag > 0 ? path.relative(root, path.resolve(process.argv[flag + 1] ?? '')) : 'www/pkg';

const files = {
  wasm: [`${pkg}/backbone_socket_sync_bg.wasm`, 'wasm'],
  glue: [`${pkg}/backbone_socket_sync.js`, 'wasm-bindgen glue'],
  entry: [`${pkg}/backbone-socket-sync.min.mjs`, 'ES module entry, min'],
  shim: [`${pkg}/backbone-socket-sync.min.js`, 'script-tag shim, min'],
  peer: ['node_modules/socket.io-client/dist/socket.io.min.js', 'socket.io-client 4.8 (min)'],
};
const missing = Object.values(files).filter(([f]) => !existsSync(path.join(root, f)));
if (missing.length) {
  for (const [f] of missing) console.error(`size: missing ${f}`);
  console.error('size: build the client first (bash scripts/build-client.sh) and npm install');
  process.exit(1);
}
const m = {};
for (const [key, [file, what]] of Object.entries(files)) {
  const bytes = readFileSync(path.join(root, file));
  m[key] = { file, what, raw: bytes.length, gzip: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length };
}
const total = (what, keys) => {
  const gzip = keys.reduce((n, k) => n + m[k].gzip, 0);
  return { what, raw: keys.reduce((n, k) => n + m[k].raw, 0), gzip, ratio: gzip / m.peer.gzip };
};
const totals = {
  scriptTag: total('script-tag page (wasm + glue + entry + shim)', ['wasm', 'glue', 'entry', 'shim']),
  esm: total('ES module page (wasm + glue + entry)', ['wasm', 'glue', 'entry']),
};
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ files: m, totals, ratio: totals.scriptTag.ratio }, null, 2));
} else {
  const line = (a, b, c, d = '') => `${a.padEnd(72)} ${String(b).padStart(8)} ${String(c).padStart(8)}  ${d}`;
  console.log(line('file', 'raw B', 'gzip -9'));
  for (const r of Object.values(m)) console.log(line(`${r.file} (${r.what})`, r.raw, r.gzip));
  console.log('');
  console.log(line('total', 'raw B', 'gzip -9', 'ratio to socket.io-client (gzip; target < 4.0)'));
  for (const t of Object.values(totals)) console.log(line(t.what, t.raw, t.gzip, t.ratio.toFixed(2)));
}
