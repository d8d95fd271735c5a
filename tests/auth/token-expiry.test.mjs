// A page whose token expires, in headless Chromium against the real server with
// --auth-secret-file: the server disconnects its socket at the token's `exp`, and the page,
// whose `auth` is a function handing out a fresh short-lived token (minted by `bss-server
// token --ttl 3s`), reconnects with a new one while it keeps writing; writes in flight at the
// expiry are sent again and none is lost or doubled. Then what happens without a fresh token:
// an `auth` object holding the first token (the disconnection is final, as socket.io-client's
// "io server disconnect" is), and an `auth` function that keeps returning the expired token
// (every reconnection is refused: what waits fails with 401, and it keeps trying with backoff).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  WASM, serverBinary, startServer, launchBrowser, tempDir, removeDir, testPage, makeWww,
} from '../live/support.mjs';

const skip = !existsSync(WASM) && 'www/pkg not built (scripts/build-client.sh)';
const run = promisify(execFile);
const WAIT = 60000; // generous: the machine is shared; nothing here waits that long when well

let browser;
let server;
let dir;
let secret;

// A token for `sub` from the documented subcommand, with its `exp` (seconds).
async function mint(sub, ttl) {
  const { stdout } = await run(serverBinary(), ['token', '--sub', sub, '--ttl', ttl, '--auth-secret-file', secret]);
  const token = stdout.trim();
  const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  return { token, exp };
}

// The test page. `?auth=` picks the form of `auth`: `fresh` a function `(cb) => cb({token})`
// minting a new token each time, `fixed` the object `{token}` of one token minted first,
// `stale` a function returning a Promise of that first token every time. Once `start()` is
// called it creates a todo every 40 ms (every third one then patched), and in the last 200 ms
// of the current token's life it keeps 3 writes outstanding, so that writes are in flight
// when the server disconnects. Each write records how often each of its callbacks ran.
const PAGE = `
    var params = new URLSearchParams(location.search);
    var mode = params.get('auth');
    var log = window.log = { auth: 0, tokens: [], connects: 0, attempts: 0, reconnects: 0,
      disconnects: [], connectErrors: [], unhandled: [] };
    window.addEventListener('unhandledrejection', function (e) { log.unhandled.push(String(e.reason)); });
    var exp = 0;
    var first = null;
    function token(t) { log.auth++; log.tokens.push(t.token); exp = t.exp * 1000; return { token: t.token }; }
    var options = { reconnectionDelay: 300, reconnectionDelayMax: 500, timeout: 30000 };
    // The module first, then the first token: a slow page load never eats into its life.
    window.started = BackboneSocketSync.ready.then(function () { return mintToken(); }).then(function (t) {
      first = t;
      if (mode === 'fixed') options.auth = token(first);
      if (mode === 'stale') options.auth = function () { return Promise.resolve(token(first)); };
      if (mode === 'fresh') options.auth = function (cb) { mintToken().then(function (t) { cb(token(t)); }); };
      BackboneSocketSync.connect(options);
      var socket = BackboneSocketSync.socket;
      socket.on('connect', function () { log.connects++; });
      socket.on('reconnect_attempt', function () { log.attempts++; });
      socket.on('reconnect', function () { log.reconnects++; });
      socket.on('connect_error', function (e) { log.connectErrors.push(e.message); });
      socket.on('disconnect', function (reason) {
        log.disconnects.push({ reason: reason, outstanding: outstanding });
        epoch++;
      });
    });

    var todos = new (Backbone.Collection.extend({ url: '/api/expiry' }))();
    var writes = window.writes = [];
    var epoch = 0, n = 0, outstanding = 0, timer = null, stopped = false;
    window.pendingWrites = function () { return outstanding; };
    function record(kind, title) {
      var w = { kind: kind, title: title, ok: 0, err: 0, epoch: epoch,
        connected: BackboneSocketSync.socket.connected };
      writes.push(w);
      outstanding++;
      return w;
    }
    function settle(w, xhr) {
      if (xhr) { w.err++; w.status = xhr.status; w.statusText = xhr.statusText; } else w.ok++;
      w.settledEpoch = epoch;
      outstanding--;
      burst();
    }
    function create() {
      var i = ++n, title = 'w' + i;
      var w = record('create', title);
      todos.create({ title: title, done: false }, { wait: true,
        success: function (m) { settle(w); if (i % 3 === 0 && !stopped) patch(m); },
        error: function (m, xhr) { settle(w, xhr); } });
    }
    function patch(m) {
      var w = record('patch', m.get('title'));
      m.save({ done: true }, { patch: true, wait: true,
        success: function () { settle(w); },
        error: function (m, xhr) { settle(w, xhr); } });
    }
    function burst() {
      while (!stopped && BackboneSocketSync.socket.connected && exp && Date.now() >= exp - 200 && outstanding < 3) create();
    }
    window.start = function () { timer = setInterval(function () { create(); burst(); }, 40); };
    window.stop = function () { stopped = true; clearInterval(timer); };`;

before(async () => {
  if (skip) return;
  dir = tempDir();
  secret = join(dir, 'secret');
  writeFileSync(secret, randomBytes(40).toString('base64') + '\n');
  const www = makeWww(dir, { 'expiry.html': testPage(PAGE) });
  // No leeway: the socket is disconnected at `exp` itself, and a token past it is refused.
  server = await startServer(join(dir, 'expiry.sqlite3'), www, ['--auth-secret-file', secret, '--auth-leeway', '0']);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) removeDir(dir);
});

// Opens the page for `sub` with `auth` mode `mode`; resolves once it connected and started.
async function open(sub, mode) {
  const page = await browser.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.exposeFunction('mintToken', () => mint(sub, '3s'));
  await page.goto(`${server.url}/expiry.html?auth=${mode}`);
  await page.evaluate(() => window.started);
  await page.waitForFunction(() => window.log.connects === 1, null, { timeout: WAIT });
  await page.evaluate(() => window.start());
  return page;
}

// Stops writing and waits until every write has settled; returns the page's records.
async function finish(page) {
  await page.evaluate(() => window.stop());
  try {
    await page.waitForFunction(() => window.pendingWrites() === 0, null, { timeout: WAIT });
  } catch (e) {
    // What never settled, and what the page saw: the failure names the write and the epoch.
    const state = await page.evaluate(() => ({
      unsettled: window.writes.filter((w) => w.ok + w.err === 0),
      log: Object.assign({}, window.log, { tokens: window.log.tokens.length }),
    }));
    throw new Error(`writes never settled: ${JSON.stringify({ ...state, pageErrors: page.errors })}`, { cause: e });
  }
  return page.evaluate(() => ({ log: window.log, writes: window.writes }));
}

// `sub`'s stored todos, read over REST with a valid token.
async function stored(sub) {
  const response = await fetch(`${server.url}/api/expiry`, {
    headers: { Authorization: `Bearer ${(await mint(sub, '1h')).token}` },
  });
  assert.equal(response.status, 200);
  return response.json();
}

// Each title once: the stored titles sorted, and any stored twice.
function titles(models) {
  const list = models.map((m) => m.title).sort();
  return { list, doubled: list.filter((t, i) => t === list[i - 1]) };
}

test('a page whose token expires reconnects with a fresh one and loses no write', { skip }, async () => {
  const expiredBefore = server.expiries();
  const page = await open('alice', 'fresh');
  // Three expiries: the server disconnects, the page reconnects with a new token, each time.
  await page.waitForFunction(() => window.log.connects >= 4, null, { timeout: WAIT });
  const { log, writes } = await finish(page);

  assert.ok(log.disconnects.length >= 3, JSON.stringify(log.disconnects));
  for (const d of log.disconnects) assert.equal(d.reason, 'io server disconnect');
  assert.ok(server.expiries() - expiredBefore >= 3, `the server disconnected at exp: ${server.expiries()}`);
  assert.ok(log.reconnects >= 3 && log.connects >= 4, JSON.stringify(log));
  // Asked at every connection, and a new token each time it connected.
  assert.ok(log.auth >= log.connects, `auth called ${log.auth} times for ${log.connects} connections`);
  assert.ok(new Set(log.tokens).size >= log.connects, `${new Set(log.tokens).size} distinct tokens`);
  assert.deepEqual(log.connectErrors, [], 'no fresh token was refused');

  // Writes were in flight across an expiry, and others were queued while reconnecting.
  const across = writes.filter((w) => w.connected && w.settledEpoch > w.epoch);
  const queued = writes.filter((w) => !w.connected);
  assert.ok(log.disconnects.some((d) => d.outstanding > 0), JSON.stringify(log.disconnects));
  assert.ok(across.length > 0, 'a write in flight across an expiry');
  assert.ok(queued.length > 0, 'a write made while reconnecting');
  // Every write succeeded, exactly once.
  const wrong = writes.filter((w) => w.ok !== 1 || w.err !== 0);
  assert.deepEqual(wrong, [], `${wrong.length} of ${writes.length} writes`);

  // The store holds each create once, and each patch.
  const models = await stored('alice');
  const created = writes.filter((w) => w.kind === 'create').map((w) => w.title).sort();
  const { list, doubled } = titles(models);
  assert.deepEqual(doubled, []);
  assert.deepEqual(list, created);
  const patched = new Set(writes.filter((w) => w.kind === 'patch').map((w) => w.title));
  assert.deepEqual(models.filter((m) => m.done).map((m) => m.title).sort(), [...patched].sort());

  assert.deepEqual(page.errors, []);
  assert.deepEqual(log.unhandled, []);
  console.log(`# ${writes.length} writes (${across.length} in flight across an expiry, ${queued.length} made while`
    + ` reconnecting), ${log.connects} connections, ${server.dedupeHits()} replayed by the server's dedupe`);
  await page.close();
});

test('with the first token as a fixed object, the expiry ends the connection', { skip }, async () => {
  const page = await open('bob', 'fixed');
  await page.waitForFunction(() => window.log.disconnects.length === 1, null, { timeout: WAIT });
  // The session is over: a write made now fails at once, never reaching a server.
  const late = await page.evaluate(() => new Promise((resolve) => {
    new Backbone.Model({ title: 'late' }, { collection: null }).save(null, {
      url: '/api/expiry', success: () => resolve('success'), error: (m, xhr) => resolve(`${xhr.status} ${xhr.statusText}`),
    });
  }));
  assert.equal(late, '0 disconnect');
  const { log, writes } = await finish(page);

  assert.deepEqual(log.disconnects.map((d) => d.reason), ['io server disconnect']);
  assert.equal(log.attempts, 0, 'no reconnection');
  assert.equal(log.connects, 1);
  assert.equal(log.auth, 1);
  const wrong = writes.filter((w) => w.ok + w.err !== 1);
  assert.deepEqual(wrong, [], 'each write settled once');
  // What was answered before the expiry succeeded; everything after failed with 'disconnect'.
  const after = writes.filter((w) => w.settledEpoch > 0);
  assert.ok(after.length > 0);
  for (const w of after) assert.deepEqual([w.ok, w.status, w.statusText], [0, 0, 'disconnect'], JSON.stringify(w));
  await checkStored('bob', writes);
  assert.deepEqual(page.errors, []);
  assert.deepEqual(log.unhandled, []);
  await page.close();
});

test('an auth function that returns the expired token: every reconnection is refused with 401', { skip }, async () => {
  const page = await open('carol', 'stale');
  // Refused at least twice: it keeps trying (auth is a function), with its backoff.
  await page.waitForFunction(() => window.log.connectErrors.length >= 2, null, { timeout: WAIT });
  const { log, writes } = await finish(page);

  assert.deepEqual(log.disconnects.map((d) => d.reason), ['io server disconnect']);
  assert.equal(log.connects, 1, 'never let in again');
  assert.ok(log.connectErrors.every((m) => m === 'unauthorized'), JSON.stringify(log.connectErrors));
  assert.ok(log.auth >= 3 && log.attempts >= 2, JSON.stringify(log));
  assert.equal(new Set(log.tokens).size, 1);
  const wrong = writes.filter((w) => w.ok + w.err !== 1);
  assert.deepEqual(wrong, [], 'each write settled once');
  // Every write that waited past the expiry failed with 401 unauthorized.
  const after = writes.filter((w) => w.settledEpoch > 0);
  assert.ok(after.length > 0);
  for (const w of after) assert.deepEqual([w.ok, w.status, w.statusText], [0, 401, 'unauthorized'], JSON.stringify(w));
  await checkStored('carol', writes);
  assert.deepEqual(page.errors, []);
  assert.deepEqual(log.unhandled, []);
  await page.close();
});

// `sub`'s store holds every create that succeeded, once, and nothing that was never written.
// (A create in flight at the expiry may be stored although the page was told it failed: the
// server applied it, its answer was lost with the connection, and the page could not ask again.)
async function checkStored(sub, writes) {
  const { list, doubled } = titles(await stored(sub));
  assert.deepEqual(doubled, []);
  const issued = new Set(writes.filter((w) => w.kind === 'create').map((w) => w.title));
  for (const title of list) assert.ok(issued.has(title), `${title} was never written`);
  const stored_ = new Set(list);
  for (const w of writes) if (w.kind === 'create' && w.ok) assert.ok(stored_.has(w.title), `${w.title} succeeded but is not stored`);
}
