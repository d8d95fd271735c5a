#!/usr/bin/env node
// Where the page's time goes: runs one workload of one client of the benchmark page under
// the DevTools CPU profiler and prints the functions with the most self time, grouped by
// script (wasm, glue, ESM entry, Backbone, socket.io-client, jQuery, the page) and by
// function.
//
//   node bench/profile.mjs --client wasm --workload throughput [--n 1000] [--repeat 3] [--no-build]
//                          [--server-bin PATH]
//
// Workloads are those of bench/page/bench.mjs: latency, throughput, fetch, size (--bytes).

import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { repoRoot, setServerBin, startRustServer } from './servers.mjs';
import { assembleWww, build } from './setup.mjs';

const { values: f } = parseArgs({
  options: {
    client: { type: 'string', default: 'wasm' },
    workload: { type: 'string', default: 'throughput' },
    n: { type: 'string', default: '1000' },
    bytes: { type: 'string', default: '1024' },
    repeat: { type: 'string', default: '3' },
    top: { type: 'string', default: '25' },
    'no-build': { type: 'boolean', default: false },
    'server-bin': { type: 'string' },
  },
});
if (f['server-bin']) setServerBin(path.resolve(f['server-bin']));

if (!f['no-build']) build(console.log);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bss-profile-'));
const server = await startRustServer(path.join(tmp, 'p.sqlite3'), assembleWww(tmp));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}/bench/index.html`);
  await page.waitForFunction(() => window.benchReady === true);
  const errors = await page.evaluate((c) => window.bench.init([c]), f.client);
  if (Object.keys(errors).length) throw new Error(JSON.stringify(errors));
  const n = Number(f.n);
  const params = (i) => ({ endPoint: `/api/prof_${i}`, n, tag: `p${i}`, bytes: Number(f.bytes), expect: n });
  if (f.workload === 'fetch') await page.evaluate(([ep, k]) => window.bench.seed(ep, k), ['/api/prof_fetch', n]);
  const run = (i) =>
    page.evaluate(([c, w, p]) => window.bench.run(c, w, p), [f.client, f.workload, f.workload === 'fetch' ? { ...params(i), endPoint: '/api/prof_fetch' } : params(i)]);
  await run('warm');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  const t0 = Date.now();
  for (let i = 0; i < Number(f.repeat); i++) await run(i);
  const wall = Date.now() - t0;
  const { profile } = await cdp.send('Profiler.stop');

  // Self time per node = samples hitting it x the mean sampling interval.
  const dt = (profile.endTime - profile.startTime) / 1000 / profile.samples.length;
  const hits = new Map();
  for (const id of profile.samples) hits.set(id, (hits.get(id) || 0) + 1);
  const byFn = new Map();
  const byScript = new Map();
  for (const node of profile.nodes) {
    const ms = (hits.get(node.id) || 0) * dt;
    if (!ms) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const script = url ? url.replace(server.url, '').replace(/\?.*$/, '') : `(${functionName || 'native'})`;
    const fn = `${functionName || '(anonymous)'}  ${script}${url && !url.includes('.wasm') ? ':' + (lineNumber + 1) : ''}`;
    byFn.set(fn, (byFn.get(fn) || 0) + ms);
    byScript.set(script, (byScript.get(script) || 0) + ms);
  }
  const total = [...byScript.values()].reduce((a, b) => a + b, 0);
  const show = (map, k) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, ms]) => `${ms.toFixed(1).padStart(9)} ms ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${name}`)
      .join('\n');
  console.log(`${f.client} ${f.workload} n=${n} x${f.repeat}: wall ${wall} ms, profiled ${total.toFixed(0)} ms of samples`);
  console.log('\nby script:\n' + show(byScript, 15));
  console.log(`\nby function (self time, top ${f.top}):\n` + show(byFn, Number(f.top)));
  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `profile-${f.client}-${f.workload}-${Date.now()}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  console.log(`\nprofile (open in Chrome DevTools > Performance): ${path.relative(process.cwd(), file)}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
