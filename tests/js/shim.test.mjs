// The script-tag shim (www/backbone-socket-sync.js) in headless Chromium, with the real
// Backbone, underscore and jQuery, against the real socket.io test server (short
// heartbeats, so every test also lives through several pings). Pages are served over http
// by that server; nothing here is mocked. Needs the client built into www/pkg
// (bash scripts/build-client.sh).

import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, launchChromium, repoRoot } from '../support/harness.mjs';

const built = existsSync(path.join(repoRoot, 'www/pkg/backbone_socket_sync_bg.wasm'));
let server, browser, brokenDir;
const pages = [];

before(async () => {
  assert.ok(built, 'www/pkg is missing: run bash scripts/build-client.sh first');
  // A copy of the shim and its module with no pkg/ beside them: the wasm cannot load.
  brokenDir = mkdtempSync(path.join(tmpdir(), 'bss-broken-'));
  for (const f of ['backbone-socket-sync.js', 'backbone-socket-sync.mjs']) {
    copyFileSync(path.join(repoRoot, 'www', f), path.join(brokenDir, f));
  }
  server = await startServer(['--static', `/broken=${brokenDir}`]);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  const exit = await server?.stop();
  rmSync(brokenDir, { recursive: true, force: true });
  assert.equal(exit?.code, 0);
});
beforeEach(async () => {
  await server.reset();
});

const LIBS = ['/vendor/underscore.js', '/vendor/jquery.js', '/vendor/backbone.js'];

/**
 * Opens a page with Backbone, the shim (from `shim`) and an inline script run right after
 * it, i.e. before the wasm can possibly be ready. Collects page errors and XHR requests.
 */
async function openPage({ inline = '', shim = '/www/backbone-socket-sync.js' } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  pages.push(page);
  page.errors = [];
  page.xhrs = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && page.errors.push(m.text()));
  page.on('request', (r) => {
    if (r.resourceType() === 'xhr') page.xhrs.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  const q = new URLSearchParams();
  for (const s of [...LIBS, shim]) q.append('script', s);
  q.append('inline', inline);
  await page.goto(`${server.url}/page.html?${q}`);
  return page;
}

afterEach(async () => {
  for (const p of pages.splice(0)) await p.context().close().catch(() => {});
});

test('calls made before ready are queued, go out in order once ready, and resolve', async () => {
  const page = await openPage({
    inline: `
      window.log = [];
      window.wasReady = false;
      BackboneSocketSync.ready.then(function () { wasReady = true; log.push('ready'); });
      BackboneSocketSync.socket.on('connect', function () { log.push('connect'); });
      BackboneSocketSync.socket.emit('echo', 'early', function (a) { log.push('ack:' + a); });
      BackboneSocketSync.socket.emit('connect'); // reserved: reported, and the rest goes on
      BackboneSocketSync.connect({ url: 'ws://' + location.host });
      var Todo = Backbone.Model.extend({ urlRoot: '/api/todos' });
      window.early = [1, 2, 3].map(function (i) {
        return new Todo({ n: i }).save(null, { success: function () { log.push('saved ' + i); } });
      });
      window.shape = early.map(function (x) {
        return [typeof x.then, typeof x.done, typeof x.fail, typeof x.always, typeof x.abort].join();
      });
      window.readyAtStart = wasReady;
      window.connectedAtStart = BackboneSocketSync.socket.connected;
    `,
  });
  const r = await page.evaluate(async () => {
    const api = await BackboneSocketSync.ready;
    const results = await Promise.all(window.early);
    return {
      same: api === window.BackboneSocketSync,
      ids: results.map((m) => m.id),
      ns: results.map((m) => m.n),
      log: window.log,
      shape: window.shape,
      readyAtStart: window.readyAtStart,
      connectedAtStart: window.connectedAtStart,
      connected: BackboneSocketSync.socket.connected,
      id: BackboneSocketSync.socket.id,
    };
  });
  assert.equal(r.same, true, 'ready resolves with the global');
  assert.equal(r.readyAtStart, false);
  assert.equal(r.connectedAtStart, false);
  assert.deepEqual(r.shape, Array(3).fill('function,function,function,function,function'));
  assert.deepEqual(r.ids, [1, 2, 3], 'queued calls go out in the order they were made');
  assert.deepEqual(r.ns, [1, 2, 3]);
  assert.ok(r.log.indexOf('ready') >= 0 && r.log.includes('saved 3') && r.log.includes('connect'), r.log.join());
  await page.waitForFunction(() => window.log.includes('ack:early'));
  assert.equal(r.connected, true);
  assert.equal(typeof r.id, 'string');
  assert.equal((await server.stats()).items, 3);
  assert.deepEqual(page.xhrs, [], 'no XHR for socket models');
  assert.equal(page.errors.length, 1, page.errors.join());
  assert.match(page.errors[0], /reserved/, 'the bad queued emit was reported');
});

test('a queued call aborted before ready never reaches the server; a missing url throws at once', async () => {
  const page = await openPage({
    inline: `
      window.out = {};
      var M = Backbone.Model.extend({ urlRoot: '/api/aborted' });
      var opts = { error: function (model, xhr, options) { out.errorXhr = xhr; out.textStatus = options.textStatus; } };
      var m = new M({ a: 1 });
      m.on('error', function () { out.errorEvent = true; });
      window.aborted = m.save(null, opts);
      aborted.abort();
      aborted.catch(function (x) { out.rejected = x.statusText; });
      try { new Backbone.Model({ a: 1 }).save(); } catch (e) { out.thrown = e.message; }
    `,
  });
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const left = await new (Backbone.Collection.extend({ url: '/api/aborted' }))().fetch();
    let thrownAfter;
    try {
      new Backbone.Model().fetch();
    } catch (e) {
      thrownAfter = e.message;
    }
    return { ...window.out, left, thrownAfter };
  });
  assert.equal(r.thrown, 'A "url" property or function must be specified');
  assert.equal(r.thrownAfter, 'A "url" property or function must be specified');
  assert.equal(r.errorXhr.status, 0);
  assert.equal(r.errorXhr.statusText, 'abort');
  assert.equal(r.textStatus, 'abort', 'options.textStatus set as Backbone does');
  assert.equal(r.errorEvent, true, "the model's error event fired");
  assert.equal(r.rejected, 'abort');
  assert.deepEqual(r.left, [], 'the aborted create was never sent');
  assert.equal((await server.stats()).requests.create, undefined);
});

test('Backbone.ajaxSync is the original; ajaxSync: true models and collections use XHR on the same store', async () => {
  const page = await openPage();
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const out = {};
    out.kept = typeof Backbone.ajaxSync === 'function' && Backbone.ajaxSync !== Backbone.sync;
    out.ajaxLooksOriginal = /emulateHTTP/.test(String(Backbone.ajaxSync));
    const AjaxTodo = Backbone.Model.extend({ urlRoot: '/api/todos', ajaxSync: true });
    const t = new AjaxTodo({ title: 'over xhr' });
    const xhr = t.save();
    out.isJqXHR = typeof xhr.getResponseHeader === 'function';
    await xhr;
    out.ajaxId = t.id;
    // The same model read over the socket.
    const SockTodo = Backbone.Model.extend({ urlRoot: '/api/todos' });
    const s = new SockTodo({ id: t.id });
    await s.fetch();
    out.viaSocket = s.get('title');
    // A collection with ajaxSync: its fetch, and its models' saves, go over XHR.
    const AjaxTodos = Backbone.Collection.extend({ url: '/api/todos', ajaxSync: true });
    const c = new AjaxTodos();
    await c.fetch();
    out.fetched = c.length;
    await new Promise((resolve, reject) => c.create({ title: 'child' }, { wait: true, success: resolve, error: reject }));
    await c.at(1).save({ done: true });
    out.childId = c.at(1).id;
    return out;
  });
  assert.equal(r.kept, true);
  assert.equal(r.ajaxLooksOriginal, true);
  assert.equal(r.isJqXHR, true, 'the XHR path returns jQuery’s jqXHR');
  assert.equal(r.ajaxId, 1);
  assert.equal(r.viaSocket, 'over xhr');
  assert.equal(r.fetched, 1);
  assert.equal(r.childId, 2);
  assert.deepEqual(page.xhrs, ['POST /api/todos', 'GET /api/todos', 'POST /api/todos', 'PUT /api/todos/2']);
  const st = await server.stats();
  assert.deepEqual(st.rest, { POST: 2, GET: 1, PUT: 1 });
  assert.equal(st.requests.read, 1, 'only the socket model read went over the socket');
  assert.deepEqual(page.errors, []);
});

test('socket: emit with and without ack, on, once, off', async () => {
  const page = await openPage({ inline: `BackboneSocketSync.connect();` });
  const r = await page.evaluate(async () => {
    const s = BackboneSocketSync.socket;
    await BackboneSocketSync.ready;
    // Resolves when `echoed` arrives with `tag` as its first argument.
    const echoed = (tag) =>
      new Promise((resolve) => {
        const f = (...args) => {
          if (args[0] !== tag) return;
          s.off('echoed', f);
          resolve(args);
        };
        s.on('echoed', f);
      });
    const out = { on: [], once: [] };
    const first = echoed(1);
    out.acked = await new Promise((resolve) => s.emit('echo', 1, 'two', { three: [3] }, (...args) => resolve(args)));
    out.firstEchoed = await first;
    const onFn = (tag) => out.on.push(tag);
    s.on('echoed', onFn);
    s.once('echoed', (tag) => out.once.push(tag));
    let done = echoed('b');
    s.emit('echo', 'a');
    s.emit('echo', 'b');
    out.bArgs = await done;
    s.off('echoed', onFn);
    done = echoed('c');
    s.emit('echo', 'c');
    await done;
    out.chained = s.on('x', () => {}) === s && s.off('x') === s;
    return out;
  });
  assert.deepEqual(r.acked, [1, 'two', { three: [3] }]);
  assert.deepEqual(r.firstEchoed, [1, 'two', { three: [3] }]);
  assert.deepEqual(r.bArgs, ['b']);
  assert.deepEqual(r.on, ['a', 'b'], 'on: every time until off');
  assert.deepEqual(r.once, ['a'], 'once: only the first');
  assert.equal(r.chained, true);
  assert.equal((await server.stats()).echoes, 4);
  assert.deepEqual(page.errors, []);
});

test("server events asking for an ack get an ack function; acks may time out; offline emits wait", { timeout: 60000 }, async () => {
  const page = await openPage();
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const s = BackboneSocketSync.socket;
    const out = {};
    // Made while the connection is still being opened: buffered, sent once connected.
    BackboneSocketSync.connect();
    out.wasConnected = s.connected;
    out.early = await new Promise((resolve) => s.emit('echo', 'offline', (a) => resolve(a)));
    // The server asks; the listener answers through the ack function it gets last.
    s.on('question', (q, ack) => ack('answer to ' + q, 42));
    out.answer = await new Promise((resolve) => s.emit('ask', 'life', (a) => resolve(a)));
    // An ack that never comes: the timeout calls back with an Error first.
    out.timedOut = await new Promise((resolve) =>
      s.timeout(50).emit('nobody-acks-this', (err) => resolve(err instanceof Error && err.message)));
    // An ack in time: null first, then the arguments.
    out.inTime = await new Promise((resolve) => s.timeout(5000).emit('echo', 7, (...args) => resolve(args)));
    return out;
  });
  assert.equal(r.wasConnected, false);
  assert.equal(r.early, 'offline');
  assert.deepEqual(r.answer, ['answer to life', 42]);
  assert.equal(r.timedOut, 'operation has timed out');
  assert.deepEqual(r.inTime, [null, 7]);
  assert.deepEqual(page.errors, []);
});

test('failed requests leave no unhandled rejection, whether queued before ready or not', { timeout: 60000 }, async () => {
  const page = await openPage({
    inline: `
      window.rejections = [];
      window.addEventListener('unhandledrejection', function (e) { rejections.push(String(e.reason && e.reason.statusText)); });
      window.failed = [];
      BackboneSocketSync.connect({ url: 'ws://' + location.host, timeout: 300 });
      var M = Backbone.Model.extend({ urlRoot: '/error/404/api/x' });
      // Before the wasm is ready: one with an error callback, one nobody chains, one aborted.
      new M({ a: 1 }).save(null, { error: function () { failed.push('callback'); } });
      var unchained = new M({ a: 2 });
      unchained.on('error', function () { failed.push('unchained'); }); // Backbone's own event
      unchained.save();
      new M({ a: 3 }).save(null, { error: function () { failed.push('aborted'); } }).abort();
    `,
  });
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const M = Backbone.Model.extend({ urlRoot: '/error/404/api/x' });
    // After: an error callback only, nobody chaining, a timeout, and fail() without then().
    await new Promise((resolve) => new M({ b: 1 }).save(null, { error: () => resolve() }));
    const unchained = new M({ b: 2 });
    await new Promise((resolve) => {
      unchained.once('error', () => resolve());
      unchained.save();
    });
    await new Promise((resolve) => new M().fetch({ url: '/timeout/api/t', error: () => resolve() }));
    await new Promise((resolve) => new M({ b: 3 }).save().fail(() => resolve()));
    while (!window.failed.includes('unchained')) await new Promise((resolve) => setTimeout(resolve, 10));
    // Two turns of the event loop: rejections nobody handled are reported by then.
    for (let i = 0; i < 2; i++) await new Promise((resolve) => setTimeout(resolve));
    return { rejections: window.rejections, failed: window.failed };
  });
  assert.deepEqual(r.failed.sort(), ['aborted', 'callback', 'unchained']);
  assert.deepEqual(r.rejections, []);
  assert.deepEqual(page.errors.filter((e) => !/404/.test(e)), []);
});

for (const [label, url] of [
  ['ws://', (port) => `ws://127.0.0.1:${port}`],
  ['http://', (port) => `http://127.0.0.1:${port}`],
  ['the page origin (no url)', () => undefined],
]) {
  test(`connect with ${label}`, async () => {
    const u = url(server.port);
    const page = await openPage({ inline: `BackboneSocketSync.connect(${u ? JSON.stringify({ url: u }) : ''});` });
    const r = await page.evaluate(async () => {
      await BackboneSocketSync.ready;
      const M = Backbone.Model.extend({ urlRoot: '/api/conn' });
      const m = new M({ a: 1 });
      await m.save();
      return { id: m.id, connected: BackboneSocketSync.socket.connected };
    });
    assert.deepEqual(r, { id: 1, connected: true });
    assert.equal((await server.stats()).connections, 1, 'one connection, to this server');
  });
}

for (const replies of ['ack', 'event']) {
  test(`collection create/fetch/save/destroy round trip (replies: ${replies})`, async () => {
    const page = await openPage({ inline: `BackboneSocketSync.connect({ replies: '${replies}' });` });
    const r = await page.evaluate(async () => {
      await BackboneSocketSync.ready;
      const Todo = Backbone.Model.extend({ urlRoot: '/api/rt' });
      const Todos = Backbone.Collection.extend({ url: '/api/rt', model: Todo });
      const todos = new Todos();
      const out = { requests: [] };
      todos.on('request', (model, xhr) => out.requests.push(xhr));
      const create = (attrs) =>
        new Promise((resolve, reject) => todos.create(attrs, { wait: true, success: resolve, error: (m, x) => reject(x) }));
      const a = await create({ title: 'a', done: false });
      await create({ title: 'b', done: false });
      out.created = todos.pluck('id');
      const other = new Todos();
      const fetchXhr = other.fetch();
      await fetchXhr;
      out.fetched = other.map((m) => m.get('title'));
      const saveXhr = a.save({ done: true });
      out.sameXhr = out.requests.includes(saveXhr);
      out.updated = await saveXhr;
      out.patched = await a.save({ title: 'A' }, { patch: true });
      const fresh = new Todo({ id: a.id });
      await fresh.fetch();
      out.fresh = fresh.toJSON();
      await a.destroy({ wait: true });
      out.afterDestroy = todos.length;
      await other.fetch();
      out.left = other.pluck('title');
      // Idle across a few heartbeats (300 ms), then the same connection still answers.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      out.sameSocket = BackboneSocketSync.socket.connected;
      await other.fetch();
      // Errors reach options.error with the server's status.
      const missing = new Todo({ id: 99 });
      out.err = await missing.fetch().then(
        () => null,
        (xhr) => ({ status: xhr.status, json: xhr.responseJSON }),
      );
      return out;
    });
    assert.deepEqual(r.created, [1, 2]);
    assert.deepEqual(r.fetched, ['a', 'b']);
    assert.equal(r.sameXhr, true, 'the request event carries the object save() returned');
    assert.deepEqual(r.updated, { title: 'a', done: true, id: 1 });
    assert.deepEqual(r.patched, { title: 'A', done: true, id: 1 });
    assert.deepEqual(r.fresh, { title: 'A', done: true, id: 1 });
    assert.equal(r.afterDestroy, 1);
    assert.deepEqual(r.left, ['b']);
    assert.equal(r.err.status, 404);
    assert.equal(r.sameSocket, true);
    const st = await server.stats();
    assert.ok(st.pongs >= 2, `heartbeats were answered meanwhile (${st.pongs} pongs)`);
    assert.equal(st.connections, 1, 'on one connection');
    assert.deepEqual(page.errors.filter((e) => !/404/.test(e)), []);
  });
}

test('the /private namespace: the right auth token connects, a wrong one reports connect_error', async () => {
  const page = await openPage();
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const s = BackboneSocketSync.socket;
    const out = {};
    const errored = new Promise((resolve) => s.once('connect_error', (e) => resolve({ message: e.message, data: e.data })));
    BackboneSocketSync.connect({ namespace: '/private', auth: { token: 'wrong' }, reconnection: false, timeout: 2000 });
    const pending = new (Backbone.Model.extend({ urlRoot: '/api/p' }))({ a: 1 }).save(); // waits for the namespace
    out.error = await errored;
    out.failed = await pending.then(
      () => null,
      (x) => x.statusText,
    );
    const connected = new Promise((resolve) => s.once('connect', resolve));
    BackboneSocketSync.connect({ namespace: '/private', auth: { token: 'secret' } });
    await connected;
    const m = new (Backbone.Model.extend({ urlRoot: '/api/p' }))({ a: 1 });
    await m.save();
    out.id = m.id;
    return out;
  });
  assert.deepEqual(r.error, { message: 'unauthorized', data: { status: 401 } }, 'as socket.io-client reports it');
  assert.equal(r.failed, 'unauthorized', 'a refusal saying "unauthorized" is a 401');
  assert.equal(r.id, 1);
  assert.deepEqual(page.errors, []);
});

test('auth as a function (callback or Promise) is asked at every connection; a refusal is retried', async () => {
  const page = await openPage();
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const s = BackboneSocketSync.socket;
    const out = { asked: 0, refusals: 0 };
    s.on('connect_error', () => out.refusals++);
    // Wrong on the first attempt, right from the second: the socket retries by itself.
    const connected = new Promise((resolve) => s.once('connect', resolve));
    BackboneSocketSync.connect({
      namespace: '/private',
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      auth: (cb) => cb({ token: ++out.asked === 1 ? 'wrong' : 'secret' }),
    });
    const first = new (Backbone.Model.extend({ urlRoot: '/api/p' }))({ a: 1 }).save();
    out.first = await first.then(() => 'saved', (x) => [x.status, x.statusText].join(' '));
    await connected;
    const m = new (Backbone.Model.extend({ urlRoot: '/api/p' }))({ a: 2 });
    await m.save();
    out.saved = typeof m.id;
    // A Promise-returning function works the same.
    const again = new Promise((resolve) => s.once('connect', resolve));
    BackboneSocketSync.connect({ namespace: '/private', auth: () => Promise.resolve({ token: 'secret' }) });
    await again;
    out.promise = s.connected;
    return out;
  });
  assert.equal(r.first, '401 unauthorized', 'the request waiting during the refusal fails with 401');
  assert.equal(r.refusals, 1);
  assert.equal(r.asked, 2, 'asked again at the reconnection');
  assert.equal(r.saved, 'number');
  assert.equal(r.promise, true);
  assert.deepEqual(page.errors, []);
});

test('when the wasm cannot load, ready rejects and queued calls fail instead of hanging', async () => {
  const page = await openPage({
    shim: '/broken/backbone-socket-sync.js',
    inline: `
      window.out = {};
      BackboneSocketSync.socket.on('error', function (e) { out.socketError = e.message; });
      new (Backbone.Model.extend({ urlRoot: '/api/x' }))({ a: 1 }).save(null, {
        error: function (m, xhr, options) { out.status = xhr.status; out.statusText = xhr.statusText; out.thrown = String(options.errorThrown); }
      });
    `,
  });
  const r = await page.evaluate(async () => {
    const reason = await BackboneSocketSync.ready.then(
      () => 'resolved',
      (e) => e.message,
    );
    const late = await new (Backbone.Model.extend({ urlRoot: '/api/x' }))().save().then(
      () => 'resolved',
      (x) => x.statusText,
    );
    return { reason, late, ...window.out };
  });
  assert.match(r.reason, /could not load .*\/broken\/backbone-socket-sync\.mjs/);
  assert.equal(r.status, 0);
  assert.equal(r.statusText, 'error');
  assert.match(r.thrown, /could not load/);
  assert.match(r.socketError, /could not load/);
  assert.equal(r.late, 'error', 'calls after the failure fail too');
});

test('the min shim in www/pkg (comments stripped by the build) works the same', async () => {
  const page = await openPage({
    shim: '/www/pkg/backbone-socket-sync.min.js',
    inline: `window.early = new (Backbone.Model.extend({ urlRoot: '/api/min' }))({ a: 1 }).save();`,
  });
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const saved = await window.early;
    const acked = await new Promise((resolve) => BackboneSocketSync.socket.emit('echo', 'min', resolve));
    const modules = performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname).filter((p) => /\.m?js$|\.wasm$/.test(p));
    return { saved, acked, modules };
  });
  assert.deepEqual(r.saved, { a: 1, id: 1 });
  assert.equal(r.acked, 'min');
  assert.ok(r.modules.includes('/www/pkg/backbone-socket-sync.min.mjs'), r.modules.join());
  assert.ok(!r.modules.includes('/www/backbone-socket-sync.mjs'), 'the min shim loads the min module');
  assert.deepEqual(page.errors, []);
});

test('listeners survive connect() replacing the connection; off(name) removes them all; install twice keeps the original', async () => {
  // The connect listener is added with connect(), before the first connection can open (the
  // shim queues both until the module is ready): added only once the page was loaded, it
  // missed the first `connect` whenever the socket was already up by then.
  const page = await openPage({
    inline: `BackboneSocketSync.connect(); window.connects = [];
      BackboneSocketSync.socket.on('connect', () => window.connects.push(BackboneSocketSync.socket.id));`,
  });
  const r = await page.evaluate(async () => {
    await BackboneSocketSync.ready;
    const s = BackboneSocketSync.socket;
    const got = [];
    const connects = window.connects;
    s.on('echoed', (tag) => got.push(`a:${tag}`));
    s.on('echoed', (tag) => got.push(`b:${tag}`));
    const ack = (tag) => new Promise((resolve) => s.emit('echo', tag, resolve));
    const echoed = (tag) => new Promise((resolve) => s.once('echoed', (t) => t === tag && resolve()));
    let seen = echoed('one');
    await ack('one');
    await seen;
    const firstId = s.id;
    const reconnected = new Promise((resolve) => s.once('connect', resolve));
    BackboneSocketSync.connect({ replies: 'event' }); // a new connection replaces the old
    await reconnected;
    seen = echoed('two');
    await ack('two');
    await seen;
    s.off('echoed');
    await ack('three'); // no listener left: nothing recorded
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The module is the same instance the shim loaded: installing again keeps the original.
    const m = await import('/www/backbone-socket-sync.mjs');
    const original = Backbone.ajaxSync;
    m.install(Backbone);
    return { got, firstId, secondId: s.id, connects: connects.length, kept: Backbone.ajaxSync === original, sameSocket: m.socket.id === s.id };
  });
  assert.deepEqual(r.got, ['a:one', 'b:one', 'a:two', 'b:two']);
  assert.notEqual(r.firstId, r.secondId, 'a new socket.io session');
  assert.equal(r.connects, 2, 'the connect listener moved to the new connection');
  assert.equal(r.kept, true);
  assert.equal(r.sameSocket, true);
  const st = await server.stats();
  assert.equal(st.connections, 2);
  assert.equal(st.connected, 1, 'the replaced connection was closed');
  assert.deepEqual(page.errors, []);
});
