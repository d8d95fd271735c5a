// The XHR fallback against a server with authentication on, in headless Chromium: a page with
// `transport: 'auto'` whose WebSocket cannot connect saves through `Backbone.ajaxSync`, and
// the REST twin sees `Authorization: Bearer` with the page's token and stores the todo under
// that user: with `auth` an object, and with `auth` a function (which the socket never got
// to call, since it never opened). A page with no token gets 401 and stores nothing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  WASM, serverBinary, startServer, launchBrowser, tempDir, removeDir, testPage, makeWww,
} from '../live/support.mjs';

const skip = !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)';
const run = promisify(execFile);

// The page: its socket url, `auth` form (`object`, `function` or none) and token come from
// the query string; `save(title)` creates a todo and resolves how it went.
const PAGE = `
    var params = new URLSearchParams(location.search);
    var token = params.get('token');
    var options = { url: params.get('socket'), transport: 'auto', fallbackAfter: 2,
      reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: 5000 };
    if (params.get('auth') === 'object') options.auth = { token: token };
    if (params.get('auth') === 'function') options.auth = function (cb) { cb({ token: token }); };
    window.failures = 0;
    BackboneSocketSync.connect(options);
    BackboneSocketSync.socket.on('connect_error', function () { window.failures++; });
    window.items = new (Backbone.Collection.extend({ url: '/api/private' }))();
    window.save = function (title) {
      return new Promise(function (resolve) {
        items.create({ title: title }, { wait: true,
          success: function (m) { resolve({ ok: true, id: m.id }); },
          error: function (m, xhr) { resolve({ ok: false, status: xhr.status }); } });
      });
    };`;

let browser;
let server;
let dir;
let secret;

before(async () => {
  if (skip) return;
  dir = tempDir();
  secret = join(dir, 'secret');
  writeFileSync(secret, randomBytes(40).toString('base64') + '\n');
  const www = makeWww(dir, { 'fallback.html': testPage(PAGE) });
  server = await startServer(join(dir, 'fallback.sqlite3'), www, ['--auth-secret-file', secret]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) removeDir(dir);
});

async function mint(sub) {
  const { stdout } = await run(serverBinary(), ['token', '--sub', sub, '--ttl', '1h', '--auth-secret-file', secret]);
  return stdout.trim();
}

// A loopback port nothing listens on.
async function closedPort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// The page served by the server (so its XHRs reach the REST twin), its socket pointed at a
// closed port; resolves once two connection attempts failed (the fallback is on). Collects
// the headers of the page's api XHRs.
async function fallbackPage(auth, token) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.apiHeaders = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/') && r.resourceType() === 'xhr') page.apiHeaders.push(r.headers());
  });
  const query = new URLSearchParams({ socket: `ws://127.0.0.1:${await closedPort()}`, auth: auth ?? '', token: token ?? '' });
  await page.goto(`${server.url}/fallback.html?${query}`);
  await page.waitForFunction(() => window.failures >= 2, null, { timeout: 15000 });
  return page;
}

// `sub`'s stored titles, over REST with a valid token.
async function stored(sub) {
  const response = await fetch(`${server.url}/api/private`, { headers: { Authorization: `Bearer ${await mint(sub)}` } });
  assert.equal(response.status, 200);
  return (await response.json()).map((m) => m.title);
}

for (const auth of ['object', 'function']) {
  test(`the fallback's XHR carries the Bearer token of an auth ${auth}, and the write is the user's`, { skip }, async () => {
    const sub = `user-of-${auth}`;
    const token = await mint(sub);
    const page = await fallbackPage(auth, token);
    assert.deepEqual(await page.evaluate(() => save('over xhr')), { ok: true, id: 1 });
    assert.equal(page.apiHeaders.length, 1, 'one XHR');
    assert.equal(page.apiHeaders[0].authorization, `Bearer ${token}`);
    assert.deepEqual(await stored(sub), ['over xhr']);
    assert.deepEqual(await stored('someone-else'), [], 'another user does not see it');
    assert.deepEqual(page.errors, []);
    await page.close();
  });
}

test('a page with no token gets 401 from the REST twin and stores nothing', { skip }, async () => {
  const page = await fallbackPage(null, null);
  assert.deepEqual(await page.evaluate(() => save('refused')), { ok: false, status: 401 });
  assert.equal(page.apiHeaders.length, 1, 'one XHR, not retried');
  assert.equal(page.apiHeaders[0].authorization, undefined);
  assert.deepEqual(page.errors, []);
  await page.close();
  // Nothing was stored for anyone: with authentication on, an anonymous write has no owner.
  assert.deepEqual(await stored('anonymous'), []);
});
