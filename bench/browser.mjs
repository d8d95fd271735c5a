// The browser half of the benchmark: one headless Chromium page served by the reference
// server, the four clients of bench/page/clients.mjs doing the same Backbone work,
// interleaved batch by batch (the client order rotates every round), with the renderer's
// CPU time per batch taken from the DevTools protocol and the JS heap read at the end.
// Before any timing, a probe watches the frames each socket client sends and makes the
// socket.io-client and raw clients send a `requestId` exactly where this project's client
// does, so that every socket client costs the server the same work.

import { chromium } from 'playwright-core';
import { percentile, round, sum } from './stats.mjs';

export const CLIENTS = ['wasm', 'socketio', 'xhr', 'raw'];
// Client (1b): another build of (1), loaded only by `run.mjs --ab` (never by default).
export const AB_CLIENT = 'wasmb';

// Sizes of each workload; `rounds` batches per client, interleaved.
export const PLANS = {
  full: {
    seed: 10000,
    warmup: { latency: 10, throughput: 100, size: 3 },
    latency: { n: 50, rounds: 6 },
    throughput: { n: 1000, rounds: 5 },
    creates10k: { n: 10000, rounds: 2 },
    fetch: { rounds: 5 },
    size1k: { n: 50, rounds: 2, bytes: 1024 },
    size100k: { n: 10, rounds: 3, bytes: 100 * 1024 },
    firstFetch: { runs: 3 },
  },
  smoke: {
    seed: 300,
    warmup: { latency: 2, throughput: 10, size: 1 },
    latency: { n: 5, rounds: 1 },
    throughput: { n: 50, rounds: 1 },
    creates10k: { n: 500, rounds: 1 },
    fetch: { rounds: 1 },
    size1k: { n: 3, rounds: 1, bytes: 1024 },
    size100k: { n: 2, rounds: 1, bytes: 100 * 1024 },
    firstFetch: { runs: 1 },
  },
};

// The flags DEVELOPERS.md asks for, precise performance.memory, and no Local Network Access
// checks: a document whose headers come from the DevTools Fetch domain (see below) counts as
// public, and Chromium would then block its WebSockets to 127.0.0.1.
export const CHROMIUM_ARGS = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--enable-precise-memory-info',
  '--disable-features=LocalNetworkAccessChecks',
];
// Every client fails a request after 30 s (bench/page/clients.mjs), so a batch that takes
// longer than this is stuck.
const BATCH_TIMEOUT_MS = 120000;
// The requests whose `requestId` the probe looks at.
const METHODS = ['create', 'read', 'update', 'patch', 'delete'];
// XHR is left out of the 10,000-creates row: Chromium runs 6 XHRs at a time per host, so a
// round would take about 40 s to show what the 1,000-creates row already shows.
const BIG_BURST_CLIENTS = ['wasm', 'socketio', 'raw', 'wasmb'];

// The CRUD requests in the socket.io frames `frames` (text, as sent): [{method, requestId}],
// `requestId` true when the request's signature carries one.
export function requestsIn(frames) {
  const calls = [];
  for (const frame of frames) {
    const m = /^42\d*(\[[\s\S]*)$/.exec(frame);
    if (!m) continue;
    let args;
    try {
      args = JSON.parse(m[1]);
    } catch {
      continue;
    }
    if (!METHODS.includes(args[0])) continue;
    calls.push({ method: args[0], requestId: Boolean(args[1] && args[1].signature && args[1].signature.requestId) });
  }
  return calls;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]);
}

// The workload steps a run can be limited to (`--workloads`), in the order they run.
export const WORKLOADS = ['latency', 'throughput', 'creates10k', 'fetch', 'size1k', 'size100k'];

// Runs the browser benchmark against `baseUrl`; returns {rows, heap, errors, pageLog}.
// `workloads` limits the run to some of WORKLOADS (all by default).
export async function runBrowser(baseUrl, { plan, clients = CLIENTS, workloads = WORKLOADS, log = console.log }) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const errors = [];
  const pageLog = [];
  try {
    const page = await browser.newPage();
    // Text frames the page's WebSockets send while `capturing` (the probe, below).
    const sentFrames = [];
    let capturing = false;
    page.on('websocket', (ws) =>
      ws.on('framesent', (frame) => {
        if (capturing && typeof frame.payload === 'string') sentFrames.push(frame.payload);
      }),
    );
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && pageLog.push(`console.error: ${m.text()}`));
    // Cross-origin isolation (COOP + COEP on the page itself) gives performance.now() its fine
    // resolution (5 µs) instead of the 100 µs Chromium uses otherwise, which would quantise
    // sub-millisecond latencies. The headers are added to the HTML document only, through the
    // DevTools Fetch domain with a pattern matching nothing else (playwright's page.route
    // breaks the page's WebSockets); scripts, XHRs and WebSockets go straight to the server.
    const cdp = await page.context().newCDPSession(page);
    if (process.env.BENCH_ISOLATE !== '0') {
      await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*/bench/index.html', requestStage: 'Response' }] });
      cdp.on('Fetch.requestPaused', async (event) => {
        const headers = (event.responseHeaders || []).filter((h) => !/^cross-origin-(opener|embedder)-policy$/i.test(h.name));
        headers.push({ name: 'Cross-Origin-Opener-Policy', value: 'same-origin' }, { name: 'Cross-Origin-Embedder-Policy', value: 'require-corp' });
        try {
          const { body, base64Encoded } = await cdp.send('Fetch.getResponseBody', { requestId: event.requestId });
          const base64 = base64Encoded ? body : Buffer.from(body).toString('base64');
          await cdp.send('Fetch.fulfillRequest', { requestId: event.requestId, responseCode: event.responseStatusCode, responseHeaders: headers, body: base64 });
        } catch (e) {
          log(`note: could not add isolation headers (${e.message})`);
          await cdp.send('Fetch.continueRequest', { requestId: event.requestId }).catch(() => {});
        }
      });
    }
    await page.goto(`${baseUrl}/bench/index.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 30000 });
    const isolated = await page.evaluate(() => window.crossOriginIsolated);
    if (!isolated) log('note: page not cross-origin isolated; performance.now() has 100 µs resolution');
    await cdp.send('Performance.enable');
    const cpu = async () => {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const get = (name) => (metrics.find((m) => m.name === name) || { value: NaN }).value;
      return { script: get('ScriptDuration'), task: get('TaskDuration'), thread: get('ThreadTime') };
    };

    const initErrors = await page.evaluate((names) => window.bench.init(names), clients);
    for (const [client, message] of Object.entries(initErrors)) {
      errors.push({ client, workload: 'connect', message });
      log(`  ${client}: cannot connect: ${message.split('\n')[0]}`);
    }
    const live = clients.filter((c) => !initErrors[c]);
    log(`clients connected: ${live.join(', ') || 'none'}`);

    // Same server work: which requests of this project's client carry a requestId, then the
    // other socket clients made to do the same, and checked.
    async function probe(client) {
      sentFrames.length = 0;
      capturing = true;
      try {
        await withTimeout(page.evaluate(([c]) => window.bench.run(c, 'probe', { endPoint: `/api/probe_${c}` }), [client]), BATCH_TIMEOUT_MS, `${client} probe`);
      } finally {
        capturing = false;
      }
      return requestsIn(sentFrames);
    }
    const sameWork = { requestIdMethods: METHODS, probes: {} };
    const socketClients = live.filter((c) => c !== 'xhr');
    try {
      if (live.includes('wasm')) {
        const calls = await probe('wasm');
        sameWork.probes.wasm = calls;
        const withId = METHODS.filter((m) => calls.some((c) => c.method === m && c.requestId));
        const mixed = withId.filter((m) => calls.some((c) => c.method === m && !c.requestId));
        if (calls.length !== 6) throw new Error(`wasm probe: ${calls.length} requests seen on the wire, want 6: ${JSON.stringify(calls)}`);
        if (mixed.length) throw new Error(`wasm sends a requestId on some ${mixed.join(', ')} requests and not on others`);
        sameWork.requestIdMethods = withId;
      }
      for (const c of socketClients.filter((c) => c !== 'wasm')) {
        await page.evaluate(([name, methods]) => window.bench.configure(name, { requestIdMethods: methods }), [c, sameWork.requestIdMethods]);
        const calls = await probe(c);
        sameWork.probes[c] = calls;
        const want = sameWork.probes.wasm || calls.map((x) => ({ method: x.method, requestId: sameWork.requestIdMethods.includes(x.method) }));
        if (JSON.stringify(calls) !== JSON.stringify(want)) {
          throw new Error(`${c} does not send what wasm sends: ${JSON.stringify(calls)} vs ${JSON.stringify(want)}`);
        }
      }
      log(`same server work: ${socketClients.join(', ')} send a requestId on ${sameWork.requestIdMethods.join(', ') || 'nothing'}`);
    } catch (e) {
      errors.push({ client: 'page', workload: 'same server work', message: String(e.message || e).split('\n')[0] });
      log(`  same server work: ERROR ${String(e.message || e).split('\n')[0]}`);
    }

    const fetchEndPoint = '/api/bench_fetch';
    const fetching = workloads.includes('fetch');
    if (fetching) {
      const t0 = Date.now();
      await withTimeout(page.evaluate(([ep, n]) => window.bench.seed(ep, n), [fetchEndPoint, plan.seed]), BATCH_TIMEOUT_MS, 'seed');
      log(`seeded ${plan.seed} models in ${Date.now() - t0} ms`);
    }

    const acc = new Map(); // "row|client" -> {latencies, wallMs, ops, cpu, syncMs, syncCalls}
    const add = (row, client, data) => {
      const key = `${row}|${client}`;
      const a = acc.get(key) || { key: data.key, latencies: [], wallMs: 0, ops: 0, script: 0, task: 0, thread: 0, syncMs: 0, syncCalls: 0, batchOps: 0 };
      a.latencies.push(...(data.latencies || []));
      a.wallMs += data.wallMs || 0;
      a.ops += data.ops || 0;
      acc.set(key, a);
      return a;
    };
    const failed = new Set();

    // One batch of one workload on one client, measured; `rows` maps result -> row entries.
    async function batch(client, workload, params, rows, record = true) {
      // A client that failed a workload skips that workload's later rounds, not the others.
      if (failed.has(`${client} ${workload}`)) return;
      const before = await cpu();
      let result;
      try {
        result = await withTimeout(
          page.evaluate(([c, w, p]) => window.bench.run(c, w, p), [client, workload, params]),
          BATCH_TIMEOUT_MS,
          `${client} ${workload}`,
        );
      } catch (e) {
        failed.add(`${client} ${workload}`);
        errors.push({ client, workload, message: String(e.message || e).split('\n')[0] });
        log(`  ${client} ${workload}: ERROR ${String(e.message || e).split('\n')[0]}`);
        return;
      }
      const after = await cpu();
      if (!record) return;
      const entries = rows(result);
      const ops = sum(entries.map((e) => e.ops));
      for (const entry of entries) {
        const a = add(entry.row, client, entry);
        // The batch's CPU and sync time spread over its ops, in proportion.
        const share = entry.ops / ops;
        a.script += (after.script - before.script) * share * 1000;
        a.task += (after.task - before.task) * share * 1000;
        a.thread += (after.thread - before.thread) * share * 1000;
        a.syncMs += result.syncMs * share;
        a.syncCalls += result.syncCalls * share;
      }
    }

    const latencyRows = (r) => [
      { key: 'latency-save', row: 'latency: save new model', latencies: r.create, ops: r.create.length, wallMs: sum(r.create) },
      { key: 'latency-fetch', row: 'latency: fetch model', latencies: r.read, ops: r.read.length, wallMs: sum(r.read) },
      { key: 'latency-patch', row: 'latency: save patch', latencies: r.patch, ops: r.patch.length, wallMs: sum(r.patch) },
    ];
    const throughputRow = (key, n) => (r) => [{ key, row: `throughput: ${n} collection.create at once`, latencies: r.latencies, ops: n, wallMs: r.wallMs }];
    const fetchRow = (r) => [{ key: 'fetch-all', row: `throughput: collection.fetch of ${plan.seed} models`, latencies: [r.wallMs], ops: plan.seed, wallMs: r.wallMs }];
    const sizeRows = (key, label) => (r) => [
      { key: `${key}-save`, row: `${label} model: save`, latencies: r.create, ops: r.create.length, wallMs: sum(r.create) },
      { key: `${key}-fetch`, row: `${label} model: fetch`, latencies: r.read, ops: r.read.length, wallMs: sum(r.read) },
    ];
    const kb = (bytes) => (bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`);

    const allSteps = [
      { key: 'latency', rounds: plan.latency.rounds, run: (c, r) => batch(c, 'latency', { endPoint: `/api/lat_${c}`, n: plan.latency.n, tag: `r${r}` }, latencyRows) },
      {
        key: 'throughput',
        rounds: plan.throughput.rounds,
        run: (c, r) => batch(c, 'throughput', { endPoint: `/api/tp_${c}_${r}`, n: plan.throughput.n, tag: `r${r}` }, throughputRow('creates', plan.throughput.n)),
      },
      {
        key: 'creates10k',
        rounds: plan.creates10k.rounds,
        only: BIG_BURST_CLIENTS,
        run: (c, r) => batch(c, 'throughput', { endPoint: `/api/tpbig_${c}_${r}`, n: plan.creates10k.n, tag: `r${r}` }, throughputRow('creates-big', plan.creates10k.n)),
      },
      { key: 'fetch', rounds: plan.fetch.rounds, run: (c) => batch(c, 'fetch', { endPoint: fetchEndPoint, expect: plan.seed }, fetchRow) },
      ...['size1k', 'size100k'].map((key) => ({
        key,
        rounds: plan[key].rounds,
        run: (c, r) => batch(c, 'size', { endPoint: `/api/${key}_${c}`, n: plan[key].n, bytes: plan[key].bytes, tag: `r${r}` }, sizeRows(key, kb(plan[key].bytes))),
      })),
    ];
    const steps = allSteps.filter((s) => workloads.includes(s.key));
    const runs = (...keys) => keys.some((k) => workloads.includes(k));

    log('warming up (not recorded)');
    for (const c of live) {
      const w = plan.warmup;
      if (runs('latency')) await batch(c, 'latency', { endPoint: `/api/warm_${c}`, n: w.latency, tag: 'w' }, latencyRows, false);
      if (runs('throughput', 'creates10k')) await batch(c, 'throughput', { endPoint: `/api/warm_${c}`, n: w.throughput, tag: 'w' }, null, false);
      if (fetching) await batch(c, 'fetch', { endPoint: fetchEndPoint, expect: plan.seed }, null, false);
      if (runs('size1k', 'size100k')) await batch(c, 'size', { endPoint: `/api/warm_${c}`, n: w.size, bytes: 100 * 1024, tag: 'w' }, null, false);
    }

    const maxRounds = Math.max(...steps.map((s) => s.rounds));
    for (let r = 0; r < maxRounds; r++) {
      const order = live.slice(r % live.length).concat(live.slice(0, r % live.length));
      log(`round ${r + 1}/${maxRounds}, client order ${order.join(' ')}`);
      for (const step of steps) {
        if (r >= step.rounds) continue;
        for (const c of order) if (!step.only || step.only.includes(c)) await step.run(c, r);
      }
    }

    const heapBeforeGc = await page.evaluate(() => window.bench.heap());
    await cdp.send('HeapProfiler.collectGarbage');
    const usage = await cdp.send('Runtime.getHeapUsage');
    const heap = { afterRun: heapBeforeGc, afterGc: { usedSize: usage.usedSize, totalSize: usage.totalSize } };
    await page.evaluate(() => window.bench.close());

    const rows = [];
    for (const [key, a] of acc) {
      const [row, client] = key.split('|');
      rows.push({
        key: a.key,
        row,
        client,
        ops: a.ops,
        opsPerS: round((a.ops / a.wallMs) * 1000),
        meanMs: round(sum(a.latencies) / a.latencies.length),
        p50Ms: round(percentile(a.latencies, 50)),
        p99Ms: round(percentile(a.latencies, 99)),
        samples: a.latencies.length,
        cpuMsPerOp: { script: round(a.script / a.ops), task: round(a.task / a.ops), thread: round(a.thread / a.ops) },
        syncCallMsPerOp: a.syncCalls ? round(a.syncMs / a.syncCalls) : null,
      });
    }
    return { rows, heap, errors, pageLog, clients: live, crossOriginIsolated: isolated, sameServerWork: sameWork };
  } finally {
    await browser.close();
  }
}
