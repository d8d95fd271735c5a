// Tests of the socket.io test server itself (tests/support/socketio-server.mjs), driven by
// the real npm socket.io-client over WebSocket in both reply modes, and by a raw WebSocket
// (npm `ws`, socket.io's own dependency) where the exact wire frames matter.

import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startServer } from '../support/harness.mjs';

let server;
const sockets = [];

before(async () => {
  server = await startServer();
});
after(async () => {
  for (const s of sockets) s.close();
  const { code } = await server.stop();
  assert.equal(code, 0, 'the server exits 0 on SIGTERM');
});
beforeEach(async () => {
  await server.reset();
});

/** Connects a socket.io-client socket (websocket only, no reconnection) and waits for it. */
async function connect(nsp = '/', opts = {}) {
  const socket = io(server.url + nsp, { transports: ['websocket'], forceNew: true, reconnection: false, ...opts });
  sockets.push(socket);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** A request in ack mode: resolves `[err, result]` as the server acked them. */
function ackRequest(socket, method, body, ms = 2000) {
  return new Promise((resolve, reject) => {
    socket.timeout(ms).emit(method, body, (timeoutErr, err, result) => {
      if (timeoutErr) reject(timeoutErr);
      else resolve([err, result]);
    });
  });
}

/** A request in event mode: resolves the payload of the `<method>:<endPoint>[:<ctx>]` reply. */
function eventRequest(socket, method, body, ms = 2000) {
  const sig = body.signature;
  const name = sig.ctx === undefined ? `${method}:${sig.endPoint}` : `${method}:${sig.endPoint}:${sig.ctx}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
    socket.once(name, (payload) => {
      clearTimeout(timer);
      resolve(payload);
    });
    socket.emit(method, body);
  });
}

/** Waits for one event on an emitter-like object. */
function once(target, name, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${ms} ms`)), ms);
    target.once(name, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

const sig = (endPoint, extra = {}) => ({ signature: { endPoint, ...extra } });

test('ack mode: every method, against the in-memory store', async () => {
  const s = await connect();
  const [e1, a] = await ackRequest(s, 'create', { ...sig('/api/todos'), item: { title: 'a', done: false } });
  assert.equal(e1, null);
  assert.deepEqual(a, { title: 'a', done: false, id: 1 });
  const [, b] = await ackRequest(s, 'create', { ...sig('/api/todos'), item: { title: 'b', done: true } });
  assert.equal(b.id, 2);
  assert.deepEqual((await ackRequest(s, 'read', sig('/api/todos')))[1], [a, b]);
  assert.deepEqual((await ackRequest(s, 'read', sig('/api/todos/1')))[1], a);
  const [, u] = await ackRequest(s, 'update', { ...sig('/api/todos/1'), item: { id: 1, title: 'A' } });
  assert.deepEqual(u, { id: 1, title: 'A' }, 'update replaces');
  const [, p] = await ackRequest(s, 'patch', { ...sig('/api/todos/1'), item: { done: true } });
  assert.deepEqual(p, { id: 1, title: 'A', done: true }, 'patch merges and returns the whole model');
  assert.deepEqual(await ackRequest(s, 'delete', sig('/api/todos/1')), [null, {}]);
  const [err] = await ackRequest(s, 'read', sig('/api/todos/1'));
  assert.deepEqual(err, { status: 404, message: 'not found' });
  assert.deepEqual((await ackRequest(s, 'delete', sig('/api/todos/1')))[0].status, 404);
  // Nested collections and endpoints without the /api prefix.
  const [, n] = await ackRequest(s, 'create', { ...sig('/api/users/7/todos'), item: { t: 1 } });
  assert.equal(n.id, 1, 'ids are per collection');
  assert.deepEqual((await ackRequest(s, 'read', sig('/api/users/7/todos/1')))[1], n);
  assert.equal((await ackRequest(s, 'create', { ...sig('/todos'), item: {} }))[1].id, 1);
});

test('event mode: replies are emitted as <method>:<endPoint>[:<ctx>], errors as {error}', async () => {
  const s = await connect();
  const a = await eventRequest(s, 'create', { ...sig('/api/todos'), item: { title: 'a' } });
  assert.deepEqual(a, { title: 'a', id: 1 });
  assert.deepEqual(await eventRequest(s, 'read', sig('/api/todos')), [a]);
  const c = await eventRequest(s, 'patch', { ...sig('/api/todos/1', { ctx: 'mine' }), item: { x: 1 } });
  assert.deepEqual(c, { title: 'a', id: 1, x: 1 }, 'the ctx is appended to the reply name');
  assert.deepEqual(await eventRequest(s, 'update', { ...sig('/api/todos/1'), item: { y: 2 } }), { y: 2, id: 1 });
  assert.deepEqual(await eventRequest(s, 'delete', sig('/api/todos/1')), {});
  assert.deepEqual(await eventRequest(s, 'read', sig('/api/todos/1')), { error: { status: 404, message: 'not found' } });
  assert.deepEqual(await eventRequest(s, 'read', sig('/error/409/x')), { error: { status: 409, message: 'test error 409' } });
});

test('bad input gets 400/413 in both modes and changes nothing', async () => {
  const s = await connect(), big = 'x'.repeat(70 * 1024);
  const cases = [
    ['create', { ...sig('/api/todos'), item: [1, 2] }, 400],
    ['create', { ...sig('/api/todos'), item: 'str' }, 400],
    ['create', { ...sig('/api/todos/3'), item: {} }, 400],
    ['create', { ...sig('/api/../etc'), item: {} }, 400],
    ['create', { ...sig('api/todos'), item: {} }, 400],
    ['create', { ...sig('/' + 'a'.repeat(1100)), item: {} }, 400],
    ['read', { signature: 'nope' }, 400],
    ['update', { ...sig('/api/todos'), item: {} }, 400],
    ['delete', sig('/api/todos'), 400],
    ['create', { ...sig('/api/todos'), item: { big } }, 413],
  ];
  for (const [method, body, status] of cases) {
    const [err] = await ackRequest(s, method, body);
    assert.equal(err?.status, status, `${method} ${JSON.stringify(body).slice(0, 60)}`);
    if (typeof body.signature === 'object') {
      const reply = await eventRequest(s, method, body);
      assert.equal(reply?.error?.status, status, `event mode: ${method}`);
    }
  }
  await ackRequest(s, 'create', { ...sig('/api/todos'), item: { a: 1 } });
  const [err] = await ackRequest(s, 'update', { ...sig('/api/todos/1'), item: { id: 2 } });
  assert.equal(err.status, 400, 'an item id contradicting the endpoint');
  assert.equal((await server.stats()).items, 1);
});

test('a repeated requestId gets the first result without applying again', async () => {
  const s = await connect();
  const body = { ...sig('/api/todos', { requestId: 'r-1' }), item: { t: 'once' } };
  const [, first] = await ackRequest(s, 'create', body);
  const [, again] = await ackRequest(s, 'create', body);
  const viaEvent = await eventRequest(s, 'create', body);
  assert.deepEqual(again, first);
  assert.deepEqual(viaEvent, first);
  const st = await server.stats();
  assert.equal(st.items, 1);
  assert.equal(st.applied, 1);
  assert.equal(st.duplicates, 2);
});

test('read honours data filters, _limit and _offset', async () => {
  const s = await connect();
  for (let i = 0; i < 6; i++) await ackRequest(s, 'create', { ...sig('/api/todos'), item: { i, even: i % 2 === 0 } });
  const ids = async (data) => (await ackRequest(s, 'read', { ...sig('/api/todos'), data }))[1].map((m) => m.i);
  assert.deepEqual(await ids({ even: true }), [0, 2, 4]);
  assert.deepEqual(await ids({ _limit: 2, _offset: 3 }), [3, 4]);
  assert.deepEqual(await ids({ even: false, _limit: 1 }), [1]);
});

test('/admin serves the same store; 100 concurrent creates get distinct ids in each mode', async () => {
  const root = await connect('/');
  const admin = await connect('/admin');
  const [, a] = await ackRequest(admin, 'create', { ...sig('/api/todos'), item: { by: 'admin' } });
  assert.deepEqual((await ackRequest(root, 'read', sig('/api/todos')))[1], [a]);
  const acks = await Promise.all(
    Array.from({ length: 100 }, (_, i) => ackRequest(root, 'create', { ...sig('/api/many'), item: { i } })),
  );
  assert.equal(new Set(acks.map(([, m]) => m.id)).size, 100);
  // Event mode has one reply name per endpoint: replies come back in request order.
  const got = [];
  const done = new Promise((resolve) =>
    admin.on('create:/api/many2', (m) => {
      got.push(m);
      if (got.length === 100) resolve();
    }),
  );
  for (let i = 0; i < 100; i++) admin.emit('create', { ...sig('/api/many2'), item: { i } });
  await done;
  assert.deepEqual(got.map((m) => m.i), [...Array(100).keys()]);
  assert.equal(new Set(got.map((m) => m.id)).size, 100);
});

test('/private rejects a missing or wrong auth.token; "secret" passes', async () => {
  await assert.rejects(connect('/private'), (e) => e.message === 'unauthorized' && e.data?.status === 401);
  await assert.rejects(connect('/private', { auth: { token: 'guess' } }), /unauthorized/);
  const s = await connect('/private', { auth: { token: 'secret' } });
  const [err, m] = await ackRequest(s, 'create', { ...sig('/api/todos'), item: {} });
  assert.equal(err, null);
  assert.equal(m.id, 1);
});

test('echo acks its arguments back and emits echoed with them', async () => {
  const s = await connect();
  const echoed = once(s, 'echoed');
  const acked = await new Promise((resolve) => s.emit('echo', 1, 'two', { three: [3] }, (...args) => resolve(args)));
  assert.deepEqual(acked, [1, 'two', { three: [3] }]);
  assert.deepEqual(await echoed, [1, 'two', { three: [3] }]);
  s.emit('echo', 'no ack');
  assert.deepEqual(await once(s, 'echoed'), ['no ack']);
  assert.equal((await server.stats()).echoes, 2);
});

test('hooks: /timeout never answers, /delay answers late, /error picks the status', async () => {
  const s = await connect();
  // "Never answers" has no event of its own: a request sent after it is answered instead. The
  // server handles a socket's packets in order and the hook drops the request at once, so
  // once the later reply is here the /timeout request has been handled, without an answer.
  let answered = false;
  s.emit('read', sig('/timeout/api/todos'), () => {
    answered = true;
  });
  assert.equal((await ackRequest(s, 'read', sig('/api/todos')))[0], null);
  assert.equal(answered, false, '/timeout was answered');
  const t0 = Date.now();
  const [, m] = await ackRequest(s, 'create', { ...sig('/delay/250/api/todos'), item: { slow: true } });
  assert.ok(Date.now() - t0 >= 240, 'delayed');
  assert.deepEqual(m, { slow: true, id: 1 }, 'then handled as the rest of the endpoint');
  assert.deepEqual((await ackRequest(s, 'delete', sig('/error/404/api/todos/1')))[0], { status: 404, message: 'test error 404' });
  assert.equal((await ackRequest(s, 'read', sig('/error/500')))[0].status, 500);
  assert.equal(s.connected, true);
});

test('hooks: /disconnect sends 41, /close and /kill drop the transport', async () => {
  for (const [hook, reason] of [
    ['/disconnect/x', 'io server disconnect'],
    ['/close/x', 'transport close'],
    ['/kill/x', 'transport close'],
    ['/garbage/x', 'parse error'],
  ]) {
    const s = await connect();
    const gone = once(s, 'disconnect');
    s.emit('read', sig(hook), () => assert.fail(`${hook} must not be answered`));
    assert.equal((await gone)[0], reason, hook);
  }
});

/** A raw Engine.IO WebSocket: resolves `{ws, frames, next()}` after the open packet. */
async function rawSocket(query = '') {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket${query}`);
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    const f = data.toString();
    if (f === '2') ws.send('3'); // answer heartbeats like a client
    frames.push(f);
    waiters.splice(0).forEach((w) => w());
  });
  // The first frame matching `pred` (taken out of `frames`), waiting for new frames as they
  // arrive, for at most `ms`.
  const next = async (pred = () => true, ms = 2000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = frames.findIndex(pred);
      if (i >= 0) return frames.splice(i, 1)[0];
      if (Date.now() >= deadline || ws.readyState > WebSocket.OPEN) throw new Error(`no matching frame; got ${JSON.stringify(frames)}`);
      await new Promise((r) => {
        const timer = setTimeout(r, deadline - Date.now());
        waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  };
  const open = await next((f) => f.startsWith('0'));
  ws.on('close', () => waiters.splice(0).forEach((w) => w()));
  return { ws, frames, next, open: JSON.parse(open.slice(1)) };
}

test('raw wire: open packet, heartbeats, CONNECT_ERROR, malformed and binary frames', async () => {
  const raw = await rawSocket();
  assert.equal(raw.open.pingInterval, 300);
  assert.equal(raw.open.pingTimeout, 200);
  assert.deepEqual(raw.open.upgrades, []);
  raw.ws.send('40/private,');
  assert.equal(await raw.next((f) => f.startsWith('44')), '44/private,{"message":"unauthorized","data":{"status":401}}');
  raw.ws.send('40');
  assert.match(await raw.next((f) => f.startsWith('40')), /^40\{"sid":"[^"]+"\}$/);
  raw.ws.send('421["create",{"signature":{"endPoint":"/api/todos"},"item":{"w":1}}]');
  assert.equal(await raw.next((f) => f.startsWith('43')), '431[null,{"w":1,"id":1}]');
  raw.ws.send('42["read",{"signature":{"endPoint":"/api/todos","ctx":"c"}}]');
  assert.equal(await raw.next((f) => f.startsWith('42')), '42["read:/api/todos:c",[{"w":1,"id":1}]]');
  raw.ws.send('422["read",{"signature":{"endPoint":"/garbage/x"}}]');
  assert.equal(await raw.next((f) => f.startsWith('42')), '42[not json');
  raw.ws.send('423["read",{"signature":{"endPoint":"/binary/x"}}]');
  assert.equal(await raw.next((f) => f.startsWith('45')), '451-["binary",{"_placeholder":true,"num":0}]');
  await raw.next((f) => f === '2', 1000); // the server pings every 300 ms
  await raw.next((f) => f === '2', 1000);
  raw.ws.close();
});

test('a silent client is dropped after pingInterval + pingTimeout', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`);
  ws.on('message', () => {}); // never answers `2`
  const t0 = Date.now();
  await once(ws, 'close', 3000);
  assert.ok(Date.now() - t0 >= 400, 'not before pingInterval + pingTimeout');
});

test('a connection lives across several heartbeats', async () => {
  const s = await connect();
  const id = s.id;
  const before = (await server.stats()).pongs;
  // Five pings heard (the manager's `ping` event), each answered by the client.
  await new Promise((resolve, reject) => {
    let pings = 0;
    const timer = setTimeout(() => reject(new Error(`${pings} pings in 5 s, want 5`)), 5000);
    s.io.on('ping', () => {
      if (++pings < 5) return;
      clearTimeout(timer);
      resolve();
    });
  });
  assert.equal(s.connected, true);
  assert.equal(s.id, id);
  assert.ok((await server.stats()).pongs - before >= 3, 'the client answered at least 3 pings');
  assert.equal((await ackRequest(s, 'read', sig('/api/todos')))[0], null);
});

test('HTTP: stats/reset, REST on the same store, vendor files, www, CORS', async () => {
  const s = await connect();
  await ackRequest(s, 'create', { ...sig('/api/todos'), item: { via: 'socket' } });
  const post = await fetch(`${server.url}/api/todos`, { method: 'POST', body: JSON.stringify({ via: 'rest' }) });
  assert.deepEqual(await post.json(), { via: 'rest', id: 2 });
  assert.equal(post.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual((await ackRequest(s, 'read', sig('/api/todos/2')))[1], { via: 'rest', id: 2 });
  assert.equal((await fetch(`${server.url}/api/todos/9`)).status, 404);
  const st = await server.stats();
  assert.equal(st.items, 2);
  assert.equal(st.rest.POST, 1);
  assert.equal(st.requests.create, 1);
  assert.ok(st.connected >= 1);
  for (const lib of ['backbone', 'underscore', 'jquery']) {
    const r = await fetch(`${server.url}/vendor/${lib}.js`);
    assert.equal(r.status, 200, lib);
    assert.match(r.headers.get('content-type'), /javascript/);
    assert.ok((await r.text()).length > 10000);
  }
  assert.equal((await fetch(`${server.url}/www/..%2f..%2fpackage.json`)).status, 404, 'no way out of www/');
  const page = await (await fetch(`${server.url}/page.html?script=/vendor/backbone.js&module=/x.mjs`)).text();
  assert.match(page, /<script src="\/vendor\/backbone.js"><\/script>\n<script type="module" src="\/x.mjs">/);
  await server.reset();
  const after = await server.stats();
  assert.equal(after.items, 0);
  assert.deepEqual(after.requests, {});
});
