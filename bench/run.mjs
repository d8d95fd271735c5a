#!/usr/bin/env node
// The benchmark: `node bench/run.mjs` (full, under 10 minutes on 2 cores) or
// `node bench/run.mjs --smoke` (tiny sizes, well under a minute, run by the test command).
//
//   1. builds the wasm client (scripts/build-client.sh), the reference server and the load
//      generator in release;
//   2. starts the reference server on a free loopback port, on a fresh SQLite file, serving a
//      temporary folder made of www/, the vendor scripts and bench/page/;
//   3. in one headless Chromium page, runs the four clients — (1) this project's wasm sync,
//      (2) Backbone.sync over socket.io-client, (3) Backbone's XHR sync on the REST twin,
//      (4) a raw WebSocket client with no Backbone — through the same workloads, interleaved
//      (bench/browser.mjs); then times a cold page load to its first successful `fetch` on
//      "Fast 3G" network emulation, socket.io-client's page vs ours (bench/first-fetch.mjs);
//   4. loads the reference server and the Node stub with bench/loadgen (bench/load.mjs);
//   5. runs the load-and-abuse test at the full scale (bench/abuse.mjs: every abuse of
//      issue 11 while a well-behaved client measures its p99; not in --smoke: npm test runs it
//      small);
//   6. prints the size report (scripts/size.mjs), the tables and the targets as ratios, and
//      writes everything to bench/results/<timestamp>.json (its path is printed).
//
// Exits non-zero when a client or load run errors or gets a wrong result (a wrong count, a
// missing id, an attribute that did not round-trip). Timings are reported, never asserted.
//
// Options: --smoke, --no-build (use what is built), --skip-browser, --skip-load,
//          --skip-first-fetch, --skip-abuse,
//          --clients wasm,socketio,xhr,raw, --server-bin PATH (another bss-server build, to
//          measure a server change before it lands), --workloads latency,throughput,creates10k,
//          fetch,size1k,size100k (only those browser rows, while iterating; such a run is saved
//          as `-partial` and never taken for the README), --ab DIR (another build of this
//          client, a build-client.sh output folder, run beside (1) as (1b) in the same page),
//          --rounds N (every workload's rounds; with --ab, for small differences)

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runAbuse } from './abuse.mjs';
import { AB_CLIENT, CLIENTS, PLANS, runBrowser, WORKLOADS } from './browser.mjs';
import { runFirstFetch } from './first-fetch.mjs';
import { LOAD_PLANS, runLoad } from './load.mjs';
import { browserTable, firstFetchTable, loadTable, targets, targetsTable } from './report.mjs';
import { repoRoot, setServerBin, startRustServer } from './servers.mjs';
import { assembleWww, build } from './setup.mjs';

const { values: flags } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'skip-browser': { type: 'boolean', default: false },
    'skip-load': { type: 'boolean', default: false },
    'skip-first-fetch': { type: 'boolean', default: false },
    'skip-abuse': { type: 'boolean', default: false },
    clients: { type: 'string', default: CLIENTS.join(',') },
    workloads: { type: 'string', default: WORKLOADS.join(',') },
    'server-bin': { type: 'string' },
    ab: { type: 'string' },
    rounds: { type: 'string' },
  },
});
if (flags['server-bin']) setServerBin(path.resolve(flags['server-bin']));
const mode = flags.smoke ? 'smoke' : 'full';
const clients = flags.clients.split(',').filter(Boolean);
// --ab DIR: another build of this client (a build-client.sh output folder) runs beside (1) as
// (1b), interleaved in the same page: its ÷(1) column is the A/B ratio of the two builds.
if (flags.ab) clients.splice(clients.includes('wasm') ? clients.indexOf('wasm') + 1 : 0, 0, AB_CLIENT);
const unknown = clients.filter((c) => !CLIENTS.includes(c) && c !== AB_CLIENT);
if (unknown.length) {
  console.error(`bench: unknown client(s) ${unknown.join(', ')}; known: ${CLIENTS.join(', ')}`);
  process.exit(2);
}
const workloads = flags.workloads.split(',').filter(Boolean);
const unknownWorkloads = workloads.filter((w) => !WORKLOADS.includes(w));
if (unknownWorkloads.length) {
  console.error(`bench: unknown workload(s) ${unknownWorkloads.join(', ')}; known: ${WORKLOADS.join(', ')}`);
  process.exit(2);
}
const partial = workloads.length < WORKLOADS.length || Boolean(flags.ab || flags.rounds);
const log = (...a) => console.log(...a);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;

function sizeReport() {
  try {
    const text = execFileSync(process.execPath, ['scripts/size.mjs'], { cwd: repoRoot, encoding: 'utf8' });
    const json = JSON.parse(execFileSync(process.execPath, ['scripts/size.mjs', '--json'], { cwd: repoRoot, encoding: 'utf8' }));
    return { text, ...json };
  } catch (e) {
    return { text: `size report unavailable: ${String(e.message).split('\n')[0]}`, error: String(e.message) };
  }
}

async function main() {
  const results = { mode, workloads, startedAt: new Date(started).toISOString(), machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version } };
  const errors = [];
  if (!flags['no-build']) build(log);
  // Other work on this machine skews every number: say so in the output and the JSON.
  results.machine.loadavgAtStart = os.loadavg().map((x) => Number(x.toFixed(2)));
  if (results.machine.loadavgAtStart[0] > 1) {
    log(`note: load average ${results.machine.loadavgAtStart[0]} on ${os.cpus().length} cores before the run: timings will be noisy`);
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bss-bench-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  let server;
  try {
    // The page and the stub serve www/: only the browser and load runs need it built.
    const www = flags['skip-browser'] && flags['skip-load'] ? null : assembleWww(tmp, { ab: flags.ab });
    if (!flags['skip-browser']) {
      server = await startRustServer(path.join(tmp, 'bench.sqlite3'), www);
      log(`== browser (${mode}): reference server ${server.url} (pid ${server.pid}), clients ${clients.join(', ')}  [${elapsed()}]`);
      try {
        results.browser = await runBrowser(server.url, { plan: withRounds(PLANS[mode], flags.rounds), clients, workloads, log });
      } catch (e) {
        log(`  browser: ERROR ${e.message}`);
        results.browser = { rows: [], errors: [{ client: 'page', workload: 'setup', message: e.message }], pageLog: [] };
      }
      errors.push(...results.browser.errors.map((e) => `browser ${e.client} ${e.workload}: ${e.message}`));
      if (results.browser.errors.length && results.browser.pageLog.length) log(results.browser.pageLog.slice(0, 20).join('\n'));
      if (!flags['skip-first-fetch'] && clients.includes('wasm') && clients.includes('socketio')) {
        const runs = PLANS[mode].firstFetch.runs;
        log(`== first fetch on Fast 3G (${mode}): ${runs} cold load(s) per page, alternating  [${elapsed()}]`);
        const requestIdMethods = results.browser.sameServerWork?.requestIdMethods || [];
        results.firstFetch = await runFirstFetch(server.url, { runs, requestIdMethods, log });
        errors.push(...results.firstFetch.errors.map((e) => `browser ${e.client} ${e.workload}: ${e.message}`));
      }
      await server.stop();
      server = undefined;
    }
    if (!flags['skip-load']) {
      log(`== server load (${mode}): bss-loadgen vs bss-server (SQLite) and the Node stub  [${elapsed()}]`);
      results.load = await runLoad(LOAD_PLANS[mode], www, { log });
      errors.push(...results.load.errors.map((e) => `load ${e.run}: ${e.message}`));
    }
    if (!flags.smoke && !flags['skip-abuse']) {
      log(`== load-and-abuse test at full scale (server/tests/abuse.rs, ABUSE_SCALE=full)  [${elapsed()}]`);
      results.abuse = await runAbuse({ scale: 'full', log });
      if (!results.abuse.ok) errors.push(`abuse test failed:\n${results.abuse.tail}`);
    }
  } finally {
    if (server) await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  results.size = sizeReport();
  results.targets = targets(results.browser, results.load, results.size, results.firstFetch);
  results.errors = errors;
  results.seconds = Math.round((Date.now() - started) / 1000);
  results.machine.loadavgAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));

  log('\n== size (scripts/size.mjs)');
  log(results.size.text.trimEnd());
  if (results.browser) {
    log(`\n== browser: one page, one server, clients interleaved (${mode})`);
    log(browserTable(results.browser));
    if (results.browser.heap) {
      const h = results.browser.heap;
      log(`JS heap after the run: used ${(h.afterRun?.usedJSHeapSize / 2 ** 20).toFixed(1)} MiB (performance.memory); after GC ${(h.afterGc.usedSize / 2 ** 20).toFixed(1)} MiB used of ${(h.afterGc.totalSize / 2 ** 20).toFixed(1)} MiB (Runtime.getHeapUsage)`);
    }
  }
  if (results.firstFetch) {
    log('\n== time from page load to the first successful fetch, Fast 3G (reported, never asserted)');
    log(firstFetchTable(results.firstFetch));
  }
  if (results.load) {
    log(`\n== server load (${mode})`);
    log(loadTable(results.load));
  }
  if (results.abuse) {
    log('\n== one client cannot hurt the others: each abuse at full scale (victim p99 against a quiet phase just before it)');
    log(results.abuse.table ?? '(no table: the test failed before it)');
    if (results.abuse.victim) log(results.abuse.victim);
  }
  log('\n== targets (ratios, reported, not asserted)');
  log(targetsTable(results.targets));

  const dir = path.join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.startedAt.replace(/[:.]/g, '-')}${mode === 'smoke' ? '-smoke' : ''}${partial ? '-partial' : ''}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  log(`\nload average at start ${results.machine.loadavgAtStart.join(' ')}, at end ${results.machine.loadavgAtEnd.join(' ')} (${os.cpus().length} cores)`);
  log(`results: ${path.relative(process.cwd(), file)}   (${results.seconds} s)`);
  if (errors.length) {
    log(`\nFAILED: ${errors.length} error(s)`);
    for (const e of errors) log(`  ${e}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  process.exit(1);
});

// The plan with every workload's rounds set to `rounds` (--rounds N: more batches per client,
// for an A/B of small differences), or as it is.
function withRounds(plan, rounds) {
  if (!rounds) return plan;
  const n = Number(rounds);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --rounds ${rounds}: want a positive integer`);
  return Object.fromEntries(Object.entries(plan).map(([k, v]) => [k, v && typeof v === 'object' && 'rounds' in v ? { ...v, rounds: n } : v]));
}
