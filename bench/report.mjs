// Printing the benchmark's results as tables, with each client's ratio to (1) and the
// issue's targets as ratios (printed, never asserted).

const NAMES = { wasm: '(1) wasm', socketio: '(2) socket.io-client', xhr: '(3) XHR', raw: '(4) raw WebSocket', wasmb: '(1b) wasm, --ab build' };
const fmt = (x, width) => String(x ?? '-').padStart(width);

function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}
const x = (r) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : '-');

// The browser table: one line per (workload, client), ratios to (1).
export function browserTable(browser) {
  const lines = [];
  const order = ['wasm', 'socketio', 'xhr', 'raw'];
  const workloads = [...new Set(browser.rows.map((r) => r.row))];
  lines.push(
    `${'workload'.padEnd(44)} ${'client'.padEnd(21)} ${fmt('ops/s', 9)} ${fmt('p50 ms', 8)} ${fmt('p99 ms', 8)} ${fmt('ops/s÷(1)', 9)} ${fmt('p50÷(1)', 8)} ${fmt('cpu ms/op', 10)} ${fmt('cpu÷(2)', 8)} ${fmt('sync ms', 8)}`,
  );
  for (const w of workloads) {
    const rows = browser.rows.filter((r) => r.row === w).sort((a, b) => order.indexOf(a.client) - order.indexOf(b.client));
    const base = rows.find((r) => r.client === 'wasm');
    const sio = rows.find((r) => r.client === 'socketio');
    for (const r of rows) {
      lines.push(
        `${w.padEnd(44)} ${(NAMES[r.client] || r.client).padEnd(21)} ${fmt(r.opsPerS, 9)} ${fmt(r.p50Ms, 8)} ${fmt(r.p99Ms, 8)} ` +
          `${fmt(x(ratio(r.opsPerS, base?.opsPerS)), 9)} ${fmt(x(ratio(r.p50Ms, base?.p50Ms)), 8)} ${fmt(r.cpuMsPerOp.thread, 10)} ` +
          `${fmt(x(ratio(r.cpuMsPerOp.thread, sio?.cpuMsPerOp.thread)), 8)} ${fmt(r.syncCallMsPerOp, 8)}`,
      );
    }
  }
  lines.push('ops/s: sequential rows = 1000 / mean latency; "at once" rows = ops / wall time; fetch rows = models / s.');
  lines.push('cpu ms/op: renderer main-thread CPU (DevTools Performance.getMetrics ThreadTime, read around every batch) per op;');
  lines.push('cpu÷(2): that against socket.io-client\'s in the same row; sync ms: time inside one sync() call (synchronous part).');
  lines.push('XHR is not run in the 10,000-creates row (6 requests at a time per host: ~40 s a round to repeat the 1,000 row).');
  const same = browser.sameServerWork;
  if (same) lines.push(`Same server work: every socket client sends a requestId on ${same.requestIdMethods.join(', ') || 'nothing'} (seen on the wire in a probe).`);
  return lines.join('\n');
}

// Time to the first successful fetch on Fast 3G: one line per page.
export function firstFetchTable(ff) {
  const lines = [];
  const c = ff.conditions;
  lines.push(`conditions: latency ${c.latency} ms, down ${c.downloadThroughput} B/s, up ${c.uploadThroughput} B/s; cold loads, cache disabled; fetch of ${ff.models} models`);
  lines.push(`${'page'.padEnd(40)} ${fmt('loads', 5)} ${fmt('median ms', 10)} ${fmt('min ms', 8)} ${fmt('max ms', 8)} ${fmt('HTTP reqs', 9)} ${fmt('HTTP bytes', 11)} ${fmt('÷(2)', 7)}`);
  const sio = ff.summary.find((r) => r.client === 'socketio');
  const label = { wasm: '(1) ours, script tag', socketio: '(2) socket.io-client + Backbone.sync' };
  for (const r of ff.summary) {
    lines.push(`${label[r.client].padEnd(40)} ${fmt(r.loads, 5)} ${fmt(r.medianMs, 10)} ${fmt(r.minMs, 8)} ${fmt(r.maxMs, 8)} ${fmt(r.requests, 9)} ${fmt(r.bytes, 11)} ${fmt(x(ratio(r.medianMs, sio?.medianMs)), 7)}`);
  }
  lines.push('ms: page performance.now() at the success callback (from navigation start); HTTP reqs, bytes: responses and their encoded bytes (the server does not compress).');
  return lines.join('\n');
}

// The server table: one line per load run.
export function loadTable(load) {
  const lines = [];
  lines.push(
    `${'run'.padEnd(26)} ${fmt('conns', 6)} ${fmt('ops/s', 8)} ${fmt('p50 ms', 8)} ${fmt('p99 ms', 8)} ${fmt('max ms', 8)} ${fmt('create p99', 10)} ${fmt('read p99', 9)} ${fmt('RSS MiB', 8)} ${fmt('srv µs/op', 9)} ${fmt('errors', 7)}`,
  );
  for (const r of load.runs) {
    lines.push(
      `${r.label.padEnd(26)} ${fmt(r.connected, 6)} ${fmt(Math.round(r.ops_per_s), 8)} ${fmt(r.p50_ms, 8)} ${fmt(r.p99_ms, 8)} ${fmt(r.max_ms, 8)} ${fmt(r.create_p99_ms, 10)} ${fmt(r.read_p99_ms, 9)} ` +
        `${fmt(Math.round((r.server_rss_kib_end || 0) / 1024), 8)} ${fmt(r.server_cpu_us_per_op, 9)} ${fmt(r.errors + r.connect_errors, 7)}`,
    );
  }
  lines.push('"max" = each connection sends its next request when the last is answered; "@N/s" = fixed total rate, latency from the scheduled send time.');
  lines.push('srv µs/op: server CPU (user+sys from /proc) per op. The generator runs on the same 2 cores.');
  return lines.join('\n');
}

// The targets, as measured ratios with the target beside them. `met` is true or false
// against the target, null when the run did not measure it (a client missing) or when the
// line is reported without a goal.
export function targets(browser, load, size, firstFetch) {
  const find = (key, client) => browser?.rows.find((r) => r.key === key && r.client === client);
  const label = (key) => browser?.rows.find((r) => r.key === key)?.row || key;
  const out = [];
  const line = (what, value, target, met) => out.push({ what, value, target, met: value === '-' ? null : met });
  // Throughput-like rows: (1) / (2) in ops/s (models/s for fetch), higher is better.
  const faster = (key, vs, goal, what = label(key)) => {
    const r = ratio(find(key, 'wasm')?.opsPerS, find(key, vs)?.opsPerS);
    line(`${what} (1)/(${vs === 'socketio' ? 2 : vs === 'xhr' ? 3 : 4})`, x(r), goal === null ? 'reported (no goal)' : `>= ${goal.toFixed(1)}x`, goal === null ? null : r >= goal);
  };
  faster('size100k-save', 'socketio', 1.0, '100 KB model: save ops/s');
  faster('fetch-all', 'socketio', 1.0, `${label('fetch-all').replace('throughput: ', '')} models/s`);
  faster('creates', 'socketio', 1.0);
  faster('creates', 'xhr', 3.0);
  faster('creates-big', 'socketio', null);
  faster('creates-big', 'raw', null);
  for (const key of ['latency-save', 'latency-fetch', 'latency-patch']) {
    const r = ratio(find(key, 'wasm')?.p50Ms, find(key, 'raw')?.p50Ms);
    line(`${label(key)} p50 (1)/(4) raw WebSocket`, x(r), '<= 1.2x', r <= 1.2);
    const m = ratio(find(key, 'wasm')?.meanMs, find(key, 'raw')?.meanMs);
    line(`${label(key)} mean (1)/(4) (for reference)`, x(m), 'reported', null);
  }
  // Page CPU per op (renderer main thread): (1) / (2), lower is better, per workload. The
  // latency batch runs its three requests together, so its rows share one figure.
  // The same holds for the save + fetch rows of each model size.
  const keys = [...new Set((browser?.rows || []).map((r) => r.key))].filter((k) => !/^(latency-fetch|latency-patch|size.*-fetch)$/.test(k));
  for (const key of keys) {
    const r = ratio(find(key, 'wasm')?.cpuMsPerOp.thread, find(key, 'socketio')?.cpuMsPerOp.thread);
    const what = key === 'latency-save' ? 'latency: save + fetch + patch' : key.startsWith('size') ? label(key).replace(': save', ': save + fetch') : label(key);
    line(`page CPU/op ${what.replace('throughput: ', '')} (1)/(2)`, x(r), '<= 1.0x', r <= 1.0);
  }
  const ff = (c) => firstFetch?.summary.find((r) => r.client === c)?.medianMs;
  if (firstFetch) {
    const r = ratio(ff('wasm'), ff('socketio'));
    line('first fetch on Fast 3G, median ms (1)/(2)', x(r), 'reported (no goal)', null);
  }
  if (size && Number.isFinite(size.ratio)) line('size (gzip) ours / socket.io-client', x(size.ratio), '< 4.0x (issue 8)', size.ratio < 4.0);
  const top = load?.runs.filter((r) => r.server === 'rust' && r.target_rate).sort((a, b) => b.conns - a.conns)[0];
  if (top) {
    const full = top.conns >= 5000 && top.target_rate >= 10000;
    const met = full ? top.connected >= 5000 && top.p99_ms < 50 && top.ops_per_s >= 0.95 * top.target_rate : null;
    line(`server C=${top.connected} at ${top.target_rate}/s: ops/s, p99`, `${Math.round(top.ops_per_s)} ops/s, p99 ${top.p99_ms} ms`, '5000 conns, p99 < 50 ms at 10000/s', met);
  }
  return out;
}

export function targetsTable(list) {
  return list.map((t) => `${t.met === null ? '      ' : t.met ? 'met   ' : 'MISSED'}  ${t.what.padEnd(56)} ${String(t.value).padStart(24)}   target ${t.target}`).join('\n');
}
