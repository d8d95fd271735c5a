// Printing the benchmark's results as tables, with each client's ratio to (1) and the
// issue's targets as ratios (printed, never asserted).

const NAMES = { wasm: '(1) wasm', socketio: '(2) socket.io-client', xhr: '(3) XHR', raw: '(4) raw WebSocket' };
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
    `${'workload'.padEnd(44)} ${'client'.padEnd(21)} ${fmt('ops/s', 9)} ${fmt('p50 ms', 8)} ${fmt('p99 ms', 8)} ${fmt('ops/s÷(1)', 9)} ${fmt('p50÷(1)', 8)} ${fmt('cpu ms/op', 10)} ${fmt('sync ms', 8)}`,
  );
  for (const w of workloads) {
    const rows = browser.rows.filter((r) => r.row === w).sort((a, b) => order.indexOf(a.client) - order.indexOf(b.client));
    const base = rows.find((r) => r.client === 'wasm');
    for (const r of rows) {
      lines.push(
        `${w.padEnd(44)} ${(NAMES[r.client] || r.client).padEnd(21)} ${fmt(r.opsPerS, 9)} ${fmt(r.p50Ms, 8)} ${fmt(r.p99Ms, 8)} ` +
          `${fmt(x(ratio(r.opsPerS, base?.opsPerS)), 9)} ${fmt(x(ratio(r.p50Ms, base?.p50Ms)), 8)} ${fmt(r.cpuMsPerOp.thread, 10)} ${fmt(r.syncCallMsPerOp, 8)}`,
      );
    }
  }
  lines.push('ops/s: sequential rows = 1000 / mean latency; "at once" rows = ops / wall time; fetch rows = models / s.');
  lines.push('cpu ms/op: renderer main-thread CPU (DevTools ThreadTime) per op; sync ms: time inside one sync() call (synchronous part).');
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

// The targets, as measured ratios with the target beside them.
export function targets(browser, load, size) {
  const find = (row, client) => browser?.rows.find((r) => r.row.startsWith(row) && r.client === client);
  const out = [];
  // `met` is null when the run did not measure it (a client missing, smoke sizes).
  const line = (what, value, target, met) => out.push({ what, value, target, met: value === '-' ? null : met });
  const tp = (c) => find('throughput: ', c) && browser.rows.find((r) => r.row.includes('collection.create at once') && r.client === c);
  const [w, s, xhr] = [tp('wasm'), tp('socketio'), tp('xhr')];
  const r12 = ratio(w?.opsPerS, s?.opsPerS);
  const r13 = ratio(w?.opsPerS, xhr?.opsPerS);
  line('throughput (creates at once) (1)/(2)', x(r12), '>= 1.0x', r12 >= 1.0);
  line('throughput (creates at once) (1)/(3)', x(r13), '>= 3.0x', r13 >= 3.0);
  for (const row of ['latency: save new model', 'latency: fetch model', 'latency: save patch']) {
    const r = ratio(find(row, 'wasm')?.p50Ms, find(row, 'raw')?.p50Ms);
    line(`${row} p50 (1)/(4)`, x(r), '<= 1.2x', r <= 1.2);
    const m = ratio(find(row, 'wasm')?.meanMs, find(row, 'raw')?.meanMs);
    line(`${row} mean (1)/(4) (for reference)`, x(m), '<= 1.2x', m <= 1.2);
  }
  if (size && Number.isFinite(size.ratio)) line('size (gzip) ours / socket.io-client', x(size.ratio), '< 1.0x', size.ratio < 1.0);
  const top = load?.runs.filter((r) => r.server === 'rust' && r.target_rate).sort((a, b) => b.conns - a.conns)[0];
  if (top) {
    const full = top.conns >= 5000 && top.target_rate >= 10000;
    const met = full ? top.connected >= 5000 && top.p99_ms < 50 && top.ops_per_s >= 0.95 * top.target_rate : null;
    line(`server C=${top.connected} at ${top.target_rate}/s: ops/s, p99`, `${Math.round(top.ops_per_s)} ops/s, p99 ${top.p99_ms} ms`, '5000 conns, p99 < 50 ms at 10000/s', met);
  }
  return out;
}

export function targetsTable(list) {
  return list.map((t) => `${t.met === null ? 'n/a   ' : t.met ? 'met   ' : 'MISSED'}  ${t.what.padEnd(48)} ${String(t.value).padStart(24)}   target ${t.target}`).join('\n');
}
