// Versions in live collections, in headless Chromium, against a socket.io server (npm
// `socket.io`) that this test scripts: it answers the page's requests with the wire format of
// versions (`ack(null, item, {version})`, or the reply event `(item, {version})`) and sends
// broadcasts `{endPoint, collection, item, version, seq}` and `resync` events in the orders a
// real server can produce only by chance: a reply overtaking a broadcast, a broadcast
// overtaking a reply, a missed version. What the page must show: it never steps back to an
// older version; a gap or a `resync` makes it read the collection again; a broadcast without a
// version is applied as before. Last, the real Rust server: two nodes over one SQLite file
// with no adapter between them, so a page on one node misses the other's writes, and the next
// version it hears shows it the gap.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { Server } from 'socket.io';
import {
  WASM, repo, launchBrowser, eventually, testPage, startServer, makeWww, tempDir, removeDir,
} from './support.mjs';

const COLLECTION = '/api/todos';
let browser;

before(async () => {
  if (!existsSync(WASM)) throw new Error('www/pkg not built (scripts/build-client.sh)');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const VENDOR = {
  '/vendor/jquery.js': 'node_modules/jquery/dist/jquery.js',
  '/vendor/underscore.js': 'node_modules/underscore/underscore.js',
  '/vendor/backbone.js': 'node_modules/backbone/backbone.js',
};

// The page: one live collection of the server's todos, a log of every title it showed.
const PAGE = testPage(`
  var params = new URLSearchParams(location.search);
  BackboneSocketSync.connect({ replies: params.get('replies') });
  window.titles = [];
  window.todos = new (Backbone.Collection.extend({ url: '${COLLECTION}' }))();
  todos.on('change:title add', function (m) { titles.push(m.get('title')); });
  BackboneSocketSync.live(todos);
  window.loaded = todos.fetch().then(function () { return true; });
  window.patch = function (title) {
    return new Promise(function (resolve) {
      todos.get(1).save({ title: title }, { patch: true,
        success: function (m, resp) { resolve({ ok: true, resp: resp }); },
        error: function (m, xhr) { resolve({ ok: false, status: xhr.status }); } });
    });
  };`);

// A scripted server on a free loopback port: serves the page, the client and Backbone; keeps
// the todos in `models`; counts collection reads; hands each patch to `onPatch(body, answer)`
// where `answer(item, version)` replies in the mode the page chose.
async function scriptedServer() {
  const http = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/page.html') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    const file = VENDOR[path] ? join(repo, VENDOR[path]) : join(repo, 'www', normalize(path));
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  const io = new Server(http, { transports: ['websocket'] });
  const server = { io, models: [{ id: 1, title: 'first' }], reads: 0, onPatch: null, patching: 0, readsWhilePatching: 0 };
  io.on('connection', (socket) => {
    // Every request: [{signature, item?}] plus an ack in ack mode.
    const answerer = (method, body, ack) => (item, version) => {
      const meta = version === undefined ? [] : [{ version }];
      if (ack) ack(null, item, ...meta);
      else socket.emit(`${method}:${body.signature.endPoint}`, item, ...meta);
    };
    socket.on('subscribe', (body, ack) => {
      socket.join(body.signature.endPoint);
      if (ack) ack(null, { ok: true });
      else socket.emit(`subscribe:${body.signature.endPoint}`, { ok: true });
    });
    socket.on('read', (body, ack) => {
      server.reads += 1;
      server.readsWhilePatching += server.patching;
      answerer('read', body, ack)(structuredClone(server.models));
    });
    socket.on('patch', (body, ack) => server.onPatch(body, answerer('patch', body, ack)));
    socket.on('echo', (ack) => ack());
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  server.url = `http://127.0.0.1:${http.address().port}`;
  // A broadcast of `item` at `version` (none: the shape of servers without versions).
  server.broadcast = (event, item, version) => {
    const body = { endPoint: `${COLLECTION}/${item.id}`, collection: COLLECTION, item };
    if (version !== undefined) Object.assign(body, { version, seq: version });
    io.to(COLLECTION).emit(event, body);
  };
  server.close = () => new Promise((resolve) => { io.close(); http.close(resolve); });
  return server;
}

async function openPage(server, replies) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  await page.goto(`${server.url}/page.html?replies=${replies}`);
  await page.evaluate(() => window.loaded);
  // Subscribed: the server's room holds the page's socket.
  await eventually(async () => (await server.io.in(COLLECTION).fetchSockets()).length === 1, 5000, 'the subscription');
  return page;
}

const titles = (page) => page.evaluate(() => window.titles);
const title = (page) => page.evaluate(() => todos.get(1).get('title'));

// Waits until the page's title log ends with `last`, then returns the log.
async function until(page, last) {
  await eventually(async () => (await titles(page)).at(-1) === last, 5000, `the page to show ${last}`);
  return titles(page);
}

for (const replies of ['ack', 'event']) {
  test(`older and equal broadcasts are ignored, newer ones and unversioned ones applied (${replies} replies)`, async () => {
    const server = await scriptedServer();
    const page = await openPage(server, replies);
    server.broadcast('updated', { id: 1, title: 'v2' }, 2);
    server.broadcast('patched', { id: 1, title: 'v1, late' }, 1);
    server.broadcast('updated', { id: 1, title: 'v2 again' }, 2);
    server.broadcast('updated', { id: 1, title: 'v3' }, 3);
    server.broadcast('updated', { id: 1, title: 'no version' });
    server.broadcast('updated', { id: 1, title: 'v4' }, 4); // the sentinel
    assert.deepEqual(await until(page, 'v4'), ['first', 'v2', 'v3', 'no version', 'v4']);
    assert.equal(server.reads, 1, 'no catch-up read: no version was missed');
    assert.deepEqual(page.errors, []);
    await page.close();
    await server.close();
  });

  test(`a reply overtaken by a broadcast, and a broadcast overtaken by a reply, never step back (${replies} replies)`, async () => {
    const server = await scriptedServer();
    const page = await openPage(server, replies);
    server.broadcast('updated', { id: 1, title: 'v1' }, 1);
    await until(page, 'v1');

    // The page's patch is stored as v2, but another client's v3 reaches the page first.
    server.onPatch = (body, answer) => {
      server.broadcast('updated', { id: 1, title: 'theirs v3' }, 3);
      setTimeout(() => answer({ ...body.item, id: 1 }, 2), 100);
    };
    const stale = await page.evaluate(() => patch('mine v2'));
    assert.equal(stale.ok, true, 'the save still succeeds');
    assert.equal(await title(page), 'theirs v3', 'the stale reply did not step back: ' + JSON.stringify([await titles(page), stale]));

    // The page's patch is stored as v5; its reply comes before the broadcast of v4.
    server.onPatch = (body, answer) => {
      answer({ ...body.item, id: 1 }, 5);
      setTimeout(() => server.broadcast('updated', { id: 1, title: 'theirs v4, late' }, 4), 50);
      setTimeout(() => server.broadcast('updated', { id: 1, title: 'v6' }, 6), 100); // the sentinel
    };
    assert.equal((await page.evaluate(() => patch('mine v5'))).ok, true);
    assert.deepEqual(await until(page, 'v6'), ['first', 'v1', 'mine v2', 'theirs v3', 'mine v5', 'v6']);
    assert.equal(server.reads, 1, 'no catch-up read');
    assert.deepEqual(page.errors, []);
    await page.close();
    await server.close();
  });

  test(`a missed version or a resync event reads the collection again (${replies} replies)`, async () => {
    const server = await scriptedServer();
    const page = await openPage(server, replies);
    server.broadcast('updated', { id: 1, title: 'v1' }, 1);
    await until(page, 'v1');

    // v2 and a create were never heard: v3 shows the gap, and the read brings the create.
    server.models = [{ id: 1, title: 'v3' }, { id: 2, title: 'missed create' }];
    server.broadcast('updated', { id: 1, title: 'v3' }, 3);
    await until(page, 'missed create');
    assert.equal(server.reads, 2, 'one catch-up read');

    // The server's feed lost changes: it says so, and the page reads again.
    server.models = [{ id: 1, title: 'v3' }, { id: 2, title: 'missed create' }, { id: 3, title: 'missed too' }];
    server.io.to(COLLECTION).emit('resync', { endPoint: COLLECTION, collection: COLLECTION });
    await until(page, 'missed too');
    assert.equal(server.reads, 3, 'one more catch-up read');
    assert.deepEqual(await page.evaluate(() => todos.pluck('title')), ['v3', 'missed create', 'missed too']);

    // A gap while the page's own patch is out may be that patch's version: the page waits for
    // its reply. The reply is v5, so v4 was missed: one read, after the reply.
    server.models = [{ id: 1, title: 'v6' }, { id: 2, title: 'missed create' }, { id: 3, title: 'missed too' }, { id: 4, title: 'v4 made me' }];
    server.onPatch = async (body, answer) => {
      server.patching = 1;
      server.broadcast('updated', { id: 1, title: 'v6' }, 6);
      await until(page, 'v6');
      // A round trip on the page's socket: a read the gap would start is in by then.
      await page.evaluate(() => new Promise((resolve) => BackboneSocketSync.socket.emit('echo', resolve)));
      server.patching = 0;
      answer({ ...body.item, id: 1 }, 5);
    };
    assert.equal((await page.evaluate(() => patch('mine v5'))).ok, true);
    await until(page, 'v4 made me');
    assert.equal(server.reads, 4, 'one more catch-up read');
    assert.equal(server.readsWhilePatching, 0, 'no read before the reply');
    assert.equal(await title(page), 'v6');
    assert.deepEqual(page.errors, []);
    await page.close();
    await server.close();
  });
}

test('with the real server, a page that missed writes on another node sees the gap and reads again', async () => {
  const dir = tempDir();
  const db = join(dir, 'versions.sqlite3');
  const www = makeWww(dir, { 'versions.html': PAGE });
  const a = await startServer(db, www);
  const b = await startServer(db, www);
  try {
    const rest = async (server, method, path, body) => {
      const res = await fetch(server.url + path, {
        method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
      });
      assert.ok(res.ok, `${method} ${path}: ${res.status}`);
      return res.json();
    };
    const first = await rest(a, 'POST', COLLECTION, { title: 'first' });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${a.url}/versions.html?replies=ack`);
    await page.evaluate(() => window.loaded);
    await page.evaluate(() => { window.reads = 0; todos.on('sync', (c) => { if (c === todos) reads += 1; }); });
    // Heard on node a: version 2, then 3 (the page's own write, its reply carrying it).
    await rest(a, 'PATCH', `${COLLECTION}/${first.id}`, { title: 'v2' });
    await until(page, 'v2');
    assert.equal((await page.evaluate(() => patch('v3 mine'))).ok, true);
    // Written on node b: nothing reaches the page.
    await rest(b, 'PATCH', `${COLLECTION}/${first.id}`, { title: 'v4 on b' });
    await rest(b, 'POST', COLLECTION, { title: 'created on b' });
    // Version 5 on node a: the page misses 4, reads the collection again and shows b's writes.
    await rest(a, 'PATCH', `${COLLECTION}/${first.id}`, { done: true });
    await until(page, 'created on b');
    assert.deepEqual(await page.evaluate(() => todos.map((m) => [m.get('title'), m.get('done') === true])),
      [['v4 on b', true], ['created on b', false]]);
    assert.equal(await page.evaluate(() => window.reads), 1, 'one catch-up read');
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await a.stop();
    await b.stop();
    removeDir(dir);
  }
});
