// Interop with the official client: the npm `socket.io-client` (WebSocket transport only)
// doing Backbone's CRUD against the Rust server, in both reply modes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { startServer, tempDir, removeDir } from './server.mjs';

let server;
let dir;

before(async () => {
  dir = tempDir();
  server = await startServer({ db: join(dir, 'interop.sqlite3'), args: ['--namespace', '/', '--namespace', '/admin'] });
});

after(async () => {
  await server?.stop();
  removeDir(dir);
});

function connect(options = {}) {
  const socket = io(server.url, { transports: ['websocket'], reconnection: false, ...options });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

function request(endPoint, extra = {}) {
  const { ctx, requestId, ...rest } = extra;
  const signature = { endPoint };
  if (ctx !== undefined) signature.ctx = ctx;
  if (requestId !== undefined) signature.requestId = requestId;
  return { signature, ...rest };
}

// Ack mode: resolves with [error, result] as the ack delivered them.
function ack(socket, method, arg) {
  return new Promise((resolve) => socket.emit(method, arg, (...reply) => resolve(reply)));
}

// Event mode: emits without an ack and waits for `<method>:<endPoint>[:<ctx>]`.
function viaEvent(socket, method, arg) {
  let name = `${method}:${arg.signature.endPoint}`;
  if (arg.signature.ctx !== undefined) name += `:${arg.signature.ctx}`;
  return new Promise((resolve) => {
    socket.once(name, resolve);
    socket.emit(method, arg);
  });
}

test('CRUD with acks', async () => {
  const socket = await connect();
  try {
    const [err, created] = await ack(socket, 'create', request('/api/acks', { item: { title: 'a', done: false } }));
    assert.equal(err, null);
    assert.deepEqual(created, { id: 1, title: 'a', done: false });
    await ack(socket, 'create', request('/api/acks', { item: { title: 'b', done: true } }));

    assert.deepEqual((await ack(socket, 'read', request('/api/acks')))[1].map((m) => m.title), ['a', 'b']);
    assert.deepEqual((await ack(socket, 'read', request('/api/acks', { data: { done: true } })))[1], [{ id: 2, title: 'b', done: true }]);
    assert.deepEqual((await ack(socket, 'read', request('/api/acks/1')))[1], created);

    const [, updated] = await ack(socket, 'update', request('/api/acks/1', { item: { id: 1, title: 'A', done: false } }));
    assert.deepEqual(updated, { id: 1, title: 'A', done: false });
    const [, patched] = await ack(socket, 'patch', request('/api/acks/1', { item: { done: true } }));
    assert.deepEqual(patched, { id: 1, title: 'A', done: true });
    assert.deepEqual(await ack(socket, 'delete', request('/api/acks/1')), [null, {}, { version: 4 }]);

    assert.deepEqual(await ack(socket, 'read', request('/api/acks/1')), [{ status: 404, message: 'not found' }]);
    const [bad] = await ack(socket, 'create', request('/api/acks/..', { item: {} }));
    assert.equal(bad.status, 400);
    const [notObject] = await ack(socket, 'create', request('/api/acks', { item: 'text' }));
    assert.equal(notObject.status, 400);
    const [unknown] = await ack(socket, 'frobnicate', request('/api/acks'));
    assert.equal(unknown.status, 400);
  } finally {
    socket.close();
  }
});

test('CRUD with event replies, ctx included', async () => {
  const socket = await connect();
  try {
    const created = await viaEvent(socket, 'create', request('/api/events', { item: { title: 'a' } }));
    assert.deepEqual(created, { id: 1, title: 'a' });
    assert.deepEqual(await viaEvent(socket, 'read', request('/api/events', { ctx: 'list' })), [created]);
    assert.deepEqual(await viaEvent(socket, 'read', request('/api/events/1')), created);
    assert.deepEqual(await viaEvent(socket, 'update', request('/api/events/1', { item: { title: 'b' } })), { id: 1, title: 'b' });
    assert.deepEqual(await viaEvent(socket, 'patch', request('/api/events/1', { item: { n: 1 } })), { id: 1, title: 'b', n: 1 });
    assert.deepEqual(await viaEvent(socket, 'delete', request('/api/events/1')), {});
    assert.deepEqual(await viaEvent(socket, 'read', request('/api/events/1')), { error: { status: 404, message: 'not found' } });
    const error = await viaEvent(socket, 'update', request('/api/events/2', { item: { id: 3 } }));
    assert.equal(error.error.status, 400);
  } finally {
    socket.close();
  }
});

test('a repeated requestId is applied once, across connections', async () => {
  const first = await connect();
  const second = await connect();
  try {
    const arg = request('/api/idem', { item: { n: 1 }, requestId: 'interop-1' });
    const [, a] = await ack(first, 'create', arg);
    const [, b] = await ack(second, 'create', arg);
    const c = await viaEvent(second, 'create', arg);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    assert.equal((await ack(first, 'read', request('/api/idem')))[1].length, 1);
  } finally {
    first.close();
    second.close();
  }
});

test('a custom namespace works the same way', async () => {
  const socket = io(`${server.url}/admin`, { transports: ['websocket'], reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  try {
    const [err, created] = await ack(socket, 'create', request('/api/admin-notes', { item: { x: 1 } }));
    assert.equal(err, null);
    assert.equal(created.id, 1);
  } finally {
    socket.close();
  }
});
