// Live collections, reconnection and the XHR fallback, in headless Chromium against the real
// Rust server. Two demo pages: what one does appears in the other without a reload; the
// second page reaches the server through a loopback TCP proxy, so its connection can be cut
// and restored, after which it shows what it missed. Then a page with `transport: 'auto'`
// whose WebSocket cannot connect saves over XHR, and goes back to the socket once it can.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import {
  WASM, startServer, startProxy, launchBrowser, tempDir, removeDir, eventually, testPage, makeWww,
} from './support.mjs';

const skip = !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)';
let browser;
const dirs = [];
const cleanups = [];

before(async () => {
  if (!skip) browser = await launchBrowser();
});

after(async () => {
  for (const fn of cleanups.reverse()) await fn();
  await browser?.close();
  dirs.forEach(removeDir);
});

// A fresh server (and a proxy in front of it), stopped after the tests.
async function serverAndProxy() {
  const dir = tempDir();
  dirs.push(dir);
  const server = await startServer(join(dir, 'live.sqlite3'), makeWww(dir, { 'fallback.html': testPage(FALLBACK_SCRIPT) }));
  const proxy = await startProxy(server.port);
  cleanups.push(() => proxy.close(), () => server.stop());
  return { server, proxy };
}

async function openDemo(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  await page.goto(url);
  await page.waitForSelector('#todoapp[data-ready="true"]', { timeout: 15000 });
  return page;
}

// [{title, done}] as the page shows them, in order.
function shown(page) {
  return page.$$eval('#todo-list li.todo', (items) =>
    items.map((li) => ({ title: li.querySelector('.title').textContent, done: li.classList.contains('done') })));
}

// Waits until `page` shows exactly `expected`.
async function shows(page, expected, what) {
  await eventually(async () => JSON.stringify(await shown(page)) === JSON.stringify(expected), 15000, what)
    .catch(async (e) => {
      throw new Error(`${e.message}; shown: ${JSON.stringify(await shown(page))}`);
    });
}

function item(page, title) {
  return page.locator('#todo-list li.todo', { has: page.locator('.title', { hasText: title }) });
}

async function add(page, title) {
  await page.fill('#new-todo', title);
  await page.press('#new-todo', 'Enter');
  await item(page, title).waitFor({ timeout: 10000 });
}

for (const replies of ['ack', 'event']) {
  test(`two demo pages stay in step, and a cut page catches up (${replies} replies)`, { skip }, async () => {
    const { server, proxy } = await serverAndProxy();
    const query = replies === 'event' ? '/?replies=event' : '/';
    const a = await openDemo(server.url + query);
    const b = await openDemo(proxy.url + query);

    // Each kind of write made in one page appears in the other.
    await add(a, 'from a');
    await shows(b, [{ title: 'from a', done: false }], 'b to see the create');
    await add(b, 'from b');
    await shows(a, [{ title: 'from a', done: false }, { title: 'from b', done: false }], 'a to see the create');
    await item(b, 'from a').locator('.toggle').click();
    await shows(a, [{ title: 'from a', done: true }, { title: 'from b', done: false }], 'a to see the patch');
    await item(a, 'from b').locator('.title').dblclick();
    await item(a, 'from b').locator('.edit').fill('from b, edited in a');
    await item(a, 'from b').locator('.edit').press('Enter');
    await shows(b, [{ title: 'from a', done: true }, { title: 'from b, edited in a', done: false }], 'b to see the update');
    await item(a, 'from a').locator('.destroy').click();
    await shows(b, [{ title: 'from b, edited in a', done: false }], 'b to see the delete');

    // A REST write (another kind of client) reaches both.
    const rest = await fetch(server.url + '/api/todos', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'over rest', done: false, order: 9 }),
    });
    assert.equal(rest.status, 201);
    const afterRest = [{ title: 'from b, edited in a', done: false }, { title: 'over rest', done: false }];
    await shows(a, afterRest, 'a to see the REST create');
    await shows(b, afterRest, 'b to see the REST create');

    // Cut b off (its connections closed, new ones refused) and change things meanwhile.
    await b.evaluate(() => {
      window.lifecycle = [];
      for (const name of ['disconnect', 'reconnect', 'connect']) BackboneSocketSync.socket.on(name, () => window.lifecycle.push(name));
    });
    proxy.refuse(true);
    assert.ok(proxy.cut() >= 1, 'b had a connection through the proxy');
    await eventually(() => b.evaluate(() => !BackboneSocketSync.socket.connected), 5000, 'b to notice the cut');
    await add(a, 'missed create');
    await item(a, 'from b, edited in a').locator('.toggle').click();
    await item(a, 'over rest').locator('.destroy').click();
    const missed = [{ title: 'from b, edited in a', done: true }, { title: 'missed create', done: false }];
    await shows(a, missed, 'a to apply its own writes');
    // b still shows the old list: it heard nothing.
    assert.deepEqual(await shown(b), afterRest);

    // Restore the network: b reconnects, re-subscribes, fetches, and shows what it missed.
    proxy.refuse(false);
    await shows(b, missed, 'b to catch up after reconnecting');
    assert.deepEqual(await b.evaluate(() => window.lifecycle), ['disconnect', 'reconnect', 'connect']);
    // And it is live again.
    await add(a, 'after the cut');
    await shows(b, [...missed, { title: 'after the cut', done: false }], 'b to be live again');

    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    await a.close();
    await b.close();
  });
}

// A loopback port nothing listens on.
async function closedPort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// The fallback test page: its socket url and transport come from the query string.
const FALLBACK_SCRIPT = `
    var params = new URLSearchParams(location.search);
    window.failures = 0;
    BackboneSocketSync.connect({ url: params.get('socket'), transport: params.get('transport'),
      fallbackAfter: 2, reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: 3000 });
    BackboneSocketSync.socket.on('connect_error', function () { window.failures++; });
    window.items = new (Backbone.Collection.extend({ url: '/api/fallback' }))();
    window.save = function (title) {
      return new Promise(function (resolve) {
        items.create({ title: title }, { wait: true,
          success: function (m) { resolve({ ok: true, id: m.id }); },
          error: function (m, xhr) { resolve({ ok: false, status: xhr.status, statusText: xhr.statusText }); } });
      });
    };`;

// The fallback page at `origin` (whose XHRs reach the REST twin), its socket going to `socketUrl`.
async function fallbackPage(origin, socketUrl, transport) {
  const page = await browser.newPage();
  const xhrs = [];
  const headers = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/') && r.resourceType() === 'xhr') {
      xhrs.push(`${r.method()} ${new URL(r.url()).pathname}`);
      headers.push(r.headers());
    }
  });
  const query = new URLSearchParams({ socket: socketUrl, transport });
  await page.goto(`${origin}/fallback.html?${query}`);
  await page.evaluate(() => BackboneSocketSync.ready);
  return { page, xhrs, headers };
}

test("transport 'auto' saves over XHR while the socket cannot connect, and goes back to it", { skip }, async () => {
  const { server, proxy } = await serverAndProxy();
  const stored = async () => (await (await fetch(server.url + '/api/fallback')).json()).map((m) => m.title);

  // The socket points at a closed port: after 2 failed attempts, saves go over XHR.
  const closed = await fallbackPage(server.url, `ws://127.0.0.1:${await closedPort()}`, 'auto');
  await eventually(() => closed.page.evaluate(() => window.failures >= 2), 10000, 'two failed attempts');
  assert.deepEqual(await closed.page.evaluate(() => save('by xhr')), { ok: true, id: 1 });
  assert.deepEqual(closed.xhrs, ['POST /api/fallback']);
  // The XHR carries what the socket would have: the page's client id and a request id.
  assert.match(closed.headers[0]['x-client-id'] ?? '', /.+/, 'X-Client-Id');
  assert.ok((closed.headers[0]['x-request-id'] ?? '').startsWith(closed.headers[0]['x-client-id'] + '.'), 'X-Request-Id');
  assert.equal(closed.headers[0].authorization, undefined, 'no token, no Authorization');
  assert.deepEqual(await stored(), ['by xhr']);
  await closed.page.close();

  // The same with the default transport: no XHR, the save waits for the socket and times out.
  const strict = await fallbackPage(server.url, `ws://127.0.0.1:${await closedPort()}`, 'socket');
  await eventually(() => strict.page.evaluate(() => window.failures >= 2), 10000, 'two failed attempts');
  const result = await strict.page.evaluate(() => save('never'));
  assert.equal(result.ok, false);
  assert.equal(result.status, 0);
  assert.deepEqual(strict.xhrs, []);
  await strict.page.close();

  // Through a proxy that blocks WebSocket upgrades but lets XHR through: XHR; once it lets
  // the upgrade through, the socket again.
  proxy.blockUpgrades(true);
  const flaky = await fallbackPage(proxy.url, proxy.url, 'auto');
  await eventually(() => flaky.page.evaluate(() => window.failures >= 2), 10000, 'two failed attempts');
  assert.equal((await flaky.page.evaluate(() => save('while refused'))).ok, true);
  assert.equal(flaky.xhrs.length, 1);
  assert.ok(proxy.stats.blocked >= 2, `the upgrades were blocked: ${JSON.stringify(proxy.stats)}`);
  proxy.blockUpgrades(false);
  await eventually(() => flaky.page.evaluate(() => BackboneSocketSync.socket.connected), 10000, 'the socket to connect');
  assert.equal((await flaky.page.evaluate(() => save('over the socket'))).ok, true);
  assert.equal(flaky.xhrs.length, 1, 'no XHR once the socket is connected');
  assert.deepEqual(await stored(), ['by xhr', 'while refused', 'over the socket']);
  await flaky.page.close();
});
