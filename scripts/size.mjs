#!/usr/bin/env node
// Size report: the gzip -9 bytes of everything a page downloads to use backbone-socket-sync
// (the wasm, its wasm-bindgen glue, the ES module entry and, for script-tag pages, the
// shim), beside socket.io-client's own dist/socket.io.min.js from npm, measured in the same
// run, and their ratio. Target: below 1.0, the whole sync replacement lighter than
// socket.io-client alone.
//
// Usage: node scripts/size.mjs [--json] [--pkg DIR]   (build first: bash scripts/build-client.sh)
//   --pkg DIR  measure the wasm and glue of another build output instead of www/pkg
// Exits 1 only when a file is missing; the ratio is reported, not enforced.

import { readFileSync, existsSync } from 'node:fs';
import { gzipSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const pkgFlag = process.argv.indexOf('--pkg');
const pkg = pkgFlag > 0 ? path.relative(root, path.resolve(process.argv[pkgFlag + 1] ?? '')) : 'www/pkg';

/** What a script-tag page downloads; the ES module path is the same minus the shim. */
const ours = [
  { file: `${pkg}/backbone_socket_sync_bg.wasm`, what: 'wasm' },
  { file: `${pkg}/backbone_socket_sync.js`, what: 'wasm-bindgen glue' },
  { file: 'www/backbone-socket-sync.mjs', what: 'ES module entry' },
  { file: 'www/backbone-socket-sync.js', what: 'script-tag shim', scriptTagOnly: true },
];
const peer = { file: 'node_modules/socket.io-client/dist/socket.io.min.js', what: 'socket.io-client 4.8 (min)' };

const missing = [...ours, peer].filter((f) => !existsSync(path.join(root, f.file)));
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

const rows = ours.map(measure);
const ref = measure(peer);
const sum = (list, key) => list.reduce((n, r) => n + r[key], 0);
const totals = {
  scriptTag: { raw: sum(rows, 'raw'), gzip: sum(rows, 'gzip') },
  esm: { raw: sum(rows.filter((r) => !r.scriptTagOnly), 'raw'), gzip: sum(rows.filter((r) => !r.scriptTagOnly), 'gzip') },
};
const ratio = totals.scriptTag.gzip / ref.gzip;
const ratioEsm = totals.esm.gzip / ref.gzip;

if (process.argv.includes('--json')) {
  const files = rows.map(({ file, raw, gzip }) => ({ file, raw, gzip }));
  const socketIoClient = { file: ref.file, raw: ref.raw, gzip: ref.gzip };
  console.log(JSON.stringify({ files, totals, socketIoClient, ratio, ratioEsm }, null, 2));
} else {
  const line = (a, b, c, d) => `${a.padEnd(42)} ${b.padEnd(27)} ${String(c).padStart(8)} ${String(d).padStart(8)}`;
  console.log(line('file', 'what', 'raw B', 'gzip -9'));
  for (const r of rows) console.log(line(r.file, r.what, r.raw, r.gzip));
  console.log(line('total, script tag (all of the above)', '', totals.scriptTag.raw, totals.scriptTag.gzip));
  console.log(line('total, ES module (without the shim)', '', totals.esm.raw, totals.esm.gzip));
  console.log(line(ref.file.replace('node_modules/', ''), ref.what, ref.raw, ref.gzip));
  console.log(`ratio (gzip, ours / socket.io-client): script tag ${ratio.toFixed(3)}, ES module ${ratioEsm.toFixed(3)} (target < 1.0)`);
}
