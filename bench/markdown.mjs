#!/usr/bin/env node
// The README's benchmark tables from one run's JSON: `node bench/markdown.mjs [FILE]`
// (default: the newest full run in bench/results/). Prints Markdown to paste into the
// README's "Benchmarks and size" section, so that the README shows exactly what a run
// measured: the browser rows with each client's ratio to (1), page CPU per op, the first
// fetch on Fast 3G, the server load, the targets as met or missed, and the machine's load.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './servers.mjs';

const dir = path.join(repoRoot, 'bench/results');
const file =
  process.argv[2] ||
  path.join(dir, readdirSync(dir).filter((f) => /^\d{4}-.*Z\.json$/.test(f)).sort().pop() || '');
const run = JSON.parse(readFileSync(file, 'utf8'));
const CLIENTS = ['wasm', 'socketio', 'xhr', 'raw'];
const out = [];

const num = (x, digits) => (x == null ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }));
const rowOf = (key, client) => run.browser?.rows.find((r) => r.key === key && r.client === client);
// One table line: `value(row)` for each client, with its ratio to (1) after the first.
function line(label, key, value, unit, digits) {
  const base = rowOf(key, 'wasm');
  const cells = CLIENTS.map((c) => {
    const r = rowOf(key, c);
    if (!r || value(r) == null) return '–';
    const v = value(r);
    if (c === 'wasm') return `${num(v, digits)} ${unit}`;
    const ratio = base && value(base) ? ` (${(v / value(base)).toFixed(2)}x)` : '';
    return `${num(v, digits)}${ratio}`;
  });
  out.push(`| ${label} | ${cells.join(' | ')} |`);
}

const m = run.machine;
out.push(
  `One full run (${run.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${m.cpus} cores, load average ${m.loadavgAtStart[0]} at the start and ` +
    `${m.loadavgAtEnd[0]} at the end, from other work on the machine; ${run.seconds} s; ratios are to (1) in the same run):`,
);
out.push('');
out.push('| workload | (1) wasm | (2) socket.io-client | (3) XHR | (4) raw WebSocket |');
out.push('|---|---|---|---|---|');
const fetchRow = run.browser?.rows.find((r) => r.key === 'fetch-all');
const n = (key) => (run.browser.rows.find((r) => r.key === key)?.row.match(/(\d+) collection/) || [])[1];
line('`save` new model, p50', 'latency-save', (r) => r.p50Ms, 'ms', 3);
line('`fetch` model, p50', 'latency-fetch', (r) => r.p50Ms, 'ms', 3);
line('`save` patch, p50', 'latency-patch', (r) => r.p50Ms, 'ms', 3);
line(`${num(Number(n('creates')))} \`collection.create\` at once`, 'creates', (r) => r.opsPerS, 'ops/s', 0);
line(`${num(Number(n('creates-big')))} \`collection.create\` at once`, 'creates-big', (r) => r.opsPerS, 'ops/s', 0);
line(`\`collection.fetch\` of ${num(Number((fetchRow?.row.match(/of (\d+) models/) || [])[1]))} models`, 'fetch-all', (r) => r.opsPerS, 'models/s', 0);
line('1 KB model `save`', 'size1k-save', (r) => r.opsPerS, 'ops/s', 0);
line('100 KB model `save`', 'size100k-save', (r) => r.opsPerS, 'ops/s', 0);
line('100 KB model `fetch`', 'size100k-fetch', (r) => r.opsPerS, 'ops/s', 0);
const cpu = (r) => r.cpuMsPerOp.thread * 1000;
line('page CPU per op: save + fetch + patch', 'latency-save', cpu, 'µs', 0);
line(`page CPU per op: ${num(Number(n('creates')))} creates at once`, 'creates', cpu, 'µs', 0);
line(`page CPU per op: ${num(Number(n('creates-big')))} creates at once`, 'creates-big', cpu, 'µs', 1);
line('page CPU per model: `collection.fetch`', 'fetch-all', cpu, 'µs', 1);
line('page CPU per op: 100 KB save + fetch', 'size100k-save', cpu, 'µs', 0);
if (run.firstFetch) {
  const ff = (c) => run.firstFetch.summary.find((r) => r.client === c);
  const [w, s] = [ff('wasm'), ff('socketio')];
  const cell = (r) => (r ? `${num(r.medianMs, 0)} ms, ${r.requests} requests, ${num(r.bytes, 0)} B` : '–');
  out.push(`| first fetch on Fast 3G (median of ${w?.loads ?? 0}; cold) | ${cell(w)} | ${cell(s)}${w && s ? ` (${(s.medianMs / w.medianMs).toFixed(2)}x)` : ''} | – | – |`);
}
out.push('');
out.push('Page CPU: the renderer main thread (DevTools `ThreadTime`) per op. XHR is not run in the 10,000-creates row.');
out.push(`Same server work: every socket client sent a \`requestId\` on ${run.browser.sameServerWork?.requestIdMethods.join(', ') || '–'} (checked on the wire).`);
if (run.firstFetch) {
  const c = run.firstFetch.conditions;
  out.push(`First fetch: Chromium's "Fast 3G" (${c.latency} ms, ${c.downloadThroughput} B/s down, ${c.uploadThroughput} B/s up), from navigation start to the success callback of a 20-model \`collection.fetch\`; (2) is Backbone + \`socket.io.min.js\` + the original sync inline, (1) Backbone + our script tag; the server does not compress.`);
}

if (run.load) {
  out.push('');
  out.push('| server load (`bss-loadgen`) | Rust server, SQLite (fsync per batch) | Node stub, in memory |');
  out.push('|---|---|---|');
  const lr = (server, label) => run.load.runs.find((r) => r.server === server && r.label.endsWith(label));
  const flat = (server) => [100, 1000, 5000].map((c) => num(Math.round(lr(server, `C=${c} max`)?.ops_per_s ?? NaN), 0)).join(' / ');
  out.push(`| C = 100 / 1,000 / 5,000, flat out | ${flat('rust')} ops/s | ${flat('stub')} ops/s |`);
  const fixed = (server) => {
    const r = lr(server, 'C=5000 @10000/s');
    return r ? `${num(Math.round(r.ops_per_s), 0)} ops/s, ${num(r.p50_ms, 1)} ms, ${num(r.p99_ms, 1)} ms, ${Math.round(r.server_rss_kib_end / 1024)} MiB` : '–';
  };
  out.push(`| C = 5,000 at 10,000 ops/s: ops/s, p50, p99, RSS | ${fixed('rust')} | ${fixed('stub')} |`);
}

out.push('');
out.push('| target | measured | goal | |');
out.push('|---|---|---|---|');
for (const t of run.targets) {
  out.push(`| ${t.what} | ${t.value} | ${t.target} | ${t.met === null ? '' : t.met ? 'met' : '**missed**'} |`);
}
if (run.errors?.length) {
  out.push('');
  out.push(`Errors in this run: ${run.errors.join('; ')}`);
}
console.log(out.join('\n'));
