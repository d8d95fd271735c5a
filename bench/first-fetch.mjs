// Time from page load to the first successful `collection.fetch`, with the page on Chromium's
// "Fast 3G" network emulation (DevTools' preset: 562.5 ms latency, 180,000 B/s down,
// 84,375 B/s up), for two pages that differ only in their sync:
//
//   wasm      Backbone + this project's script-tag client (bench/page/ours.mjs `script`)
//   socketio  Backbone + socket.io-client's dist/socket.io.min.js + the original design's
//             `Backbone.sync` over it, inline (bench/page/clients.mjs `makeSocketioSync`)
//
// Both pages (written by bench/setup.mjs) connect and fetch the same seeded collection as
// soon as their scripts have run; the time is the page's `performance.now()` in the success
// callback, i.e. from the start of navigation. Each load is a fresh browser context with the
// cache disabled; the clients alternate. The time is reported, never asserted; a fetch that
// fails or returns the wrong number of models is an error.

import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from './browser.mjs';
import { round } from './stats.mjs';

// DevTools' "Fast 3G" preset (front_end/core/sdk/NetworkManager.ts): 1.6 Mbit/s down and
// 750 kbit/s up at 90 %, 150 ms latency times 3.75.
export const FAST_3G = { offline: false, latency: 562.5, downloadThroughput: 180000, uploadThroughput: 84375, connectionType: 'cellular3g' };
export const FIRST_FETCH_MODELS = 20;
const ENDPOINT = '/api/first_fetch';
const PAGES = { wasm: '/bench/first-fetch-ours.html', socketio: '/bench/first-fetch-socketio.html' };

// Seeds the collection the pages fetch, over the REST twin.
async function seed(baseUrl) {
  for (let i = 0; i < FIRST_FETCH_MODELS; i++) {
    const res = await fetch(baseUrl + ENDPOINT, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: `first ${i}`, done: false }) });
    if (res.status !== 201) throw new Error(`seeding ${ENDPOINT}: HTTP ${res.status}`);
  }
}

// One cold load of `client`'s page: {ms, bytes, requests} (HTTP responses, their encoded bytes).
async function loadOnce(browser, url, client) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await cdp.send('Network.emulateNetworkConditions', FAST_3G);
    let bytes = 0;
    let requests = 0;
    cdp.on('Network.loadingFinished', (e) => {
      bytes += e.encodedDataLength;
      requests++;
    });
    await page.goto(url, { waitUntil: 'commit' });
    const handle = await page.waitForFunction(() => window.firstFetch, null, { timeout: 90000 }).catch((e) => {
      throw new Error(`${client}: no first fetch within 90 s${pageErrors.length ? ` (page: ${pageErrors.join('; ')})` : ''}: ${e.message.split('\n')[0]}`);
    });
    const result = await handle.jsonValue();
    if (result.error) throw new Error(`${client}: first fetch failed: ${result.error}`);
    if (result.models !== FIRST_FETCH_MODELS) throw new Error(`${client}: first fetch got ${result.models} models, want ${FIRST_FETCH_MODELS}`);
    return { ms: result.ms, bytes, requests };
  } finally {
    await context.close();
  }
}

// Runs `runs` cold loads per client against `baseUrl`; `requestIdMethods` is what the
// socket.io-client page's sync sends a requestId on (as this project's client does).
// Returns {runs: {client: [{ms, bytes, requests}]}, summary: [{client, loads, medianMs, minMs,
// maxMs, requests, bytes}], errors, conditions, models}.
export async function runFirstFetch(baseUrl, { runs, requestIdMethods, log = console.log }) {
  const errors = [];
  const out = { wasm: [], socketio: [] };
  await seed(baseUrl);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    for (let r = 0; r < runs; r++) {
      const order = r % 2 ? ['socketio', 'wasm'] : ['wasm', 'socketio'];
      for (const client of order) {
        if (errors.some((e) => e.client === client)) continue;
        const query = client === 'socketio' ? `?rid=${requestIdMethods.join(',')}` : '';
        try {
          out[client].push(await loadOnce(browser, baseUrl + PAGES[client] + query, client));
        } catch (e) {
          errors.push({ client, workload: 'first fetch (Fast 3G)', message: String(e.message || e).split('\n')[0] });
          log(`  ${client} first fetch: ERROR ${String(e.message || e).split('\n')[0]}`);
        }
      }
    }
  } finally {
    await browser.close();
  }
  const summary = Object.entries(out)
    .filter(([, list]) => list.length)
    .map(([client, list]) => {
      const ms = list.map((l) => l.ms).sort((a, b) => a - b);
      return { client, loads: list.length, medianMs: round(ms[Math.floor((ms.length - 1) / 2)]), minMs: round(ms[0]), maxMs: round(ms[ms.length - 1]), requests: list[list.length - 1].requests, bytes: list[list.length - 1].bytes };
    });
  return { runs: out, summary, errors, conditions: FAST_3G, models: FIRST_FETCH_MODELS };
}
