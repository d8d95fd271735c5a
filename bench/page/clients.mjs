// The four clients the benchmark compares, each doing the same Backbone work against the
// same server:
//
//   wasm      this project's wasm `sync` (ack mode), through the ESM entry (./ours.mjs says
//             where it is)
//   socketio  the original design in plain JS: a `Backbone.sync` emitting over npm
//             socket.io-client (websocket transport only) and waiting for the ack
//   xhr       Backbone's own `Backbone.sync` (jQuery XHR) against the REST twin
//   raw       the ceiling: a hand-written raw `WebSocket` client sending the same socket.io
//             frames and matching acks by id, with no Backbone in between
//
// Every client exposes the same small surface to the workloads (workloads.mjs):
// `create(endPoint, attrs)`, `read(endPoint, id)`, `patch(endPoint, id, attrs)`,
// `createMany(endPoint, list)` (issued all at once) and `fetchAll(endPoint)`; the Backbone
// ones do it with `model.save`, `model.fetch`, `save(..., {patch: true})`,
// `collection.create` and `collection.fetch`; `update(endPoint, id, attrs)` and
// `destroy(endPoint, id)` complete the set for the probe that checks which requests carry a
// `requestId`. Time spent inside the sync call itself (synchronous part) is added to
// `syncMs` of the client.
//
// Same server work: the reference server records the `requestId` of every write (its dedupe
// table, written in the write's own transaction, and looked up first), so a client sending
// one does more server work than one that does not. The socket.io-client and raw clients therefore send a
// `requestId` on exactly the methods this project's client does: bench/browser.mjs watches
// the frames each client sends in a probe and configures them (`requestIdMethods`).

/* global Backbone, _, io */

import { OURS } from './ours.mjs';

// Per-request timeout of every client (the wasm client's is set to the same in `connect`):
// long enough that a 10,000-create burst on a loaded 2-core machine does not time out.
export const REQUEST_TIMEOUT_MS = 30000;

// The methods that carry a `requestId` until the probe says otherwise: all of them.
const ALL_METHODS = ['create', 'read', 'update', 'patch', 'delete'];

// A Backbone client: Model and Collection classes whose `sync` is `syncFn`, timed.
function backboneClient(name, syncFn) {
  const client = { name, syncMs: 0, syncCalls: 0 };
  function timedSync(method, model, options) {
    const t0 = performance.now();
    try {
      return syncFn.call(this, method, model, options);
    } finally {
      client.syncMs += performance.now() - t0;
      client.syncCalls++;
    }
  }
  const Model = Backbone.Model.extend({ sync: timedSync });
  const Collection = Backbone.Collection.extend({ model: Model, sync: timedSync });

  // Backbone's callbacks as a promise; rejects with a readable Error on `error`.
  function settle(run) {
    return new Promise((resolve, reject) => {
      run({
        success: (model) => resolve(model),
        error: (_m, xhr) => reject(new Error(`${name}: ${xhr && xhr.status} ${xhr && xhr.statusText} ${xhr && xhr.responseText}`)),
      });
    });
  }

  client.create = (endPoint, attrs) =>
    settle((cb) => {
      const model = new Model(attrs);
      model.urlRoot = endPoint;
      if (model.save(null, cb) === false) cb.error(model, { statusText: 'invalid' });
    }).then((m) => m.toJSON());
  client.read = (endPoint, id) =>
    settle((cb) => {
      const model = new Model({ id });
      model.urlRoot = endPoint;
      model.fetch(cb);
    }).then((m) => m.toJSON());
  client.patch = (endPoint, id, attrs) =>
    settle((cb) => {
      const model = new Model({ id });
      model.urlRoot = endPoint;
      model.save(attrs, { ...cb, patch: true });
    }).then((m) => m.toJSON());
  client.update = (endPoint, id, attrs) =>
    settle((cb) => {
      const model = new Model({ id });
      model.urlRoot = endPoint;
      model.save(attrs, cb);
    }).then((m) => m.toJSON());
  client.destroy = (endPoint, id) =>
    settle((cb) => {
      const model = new Model({ id });
      model.urlRoot = endPoint;
      model.destroy(cb);
    }).then(() => ({ id }));
  // All creates are issued before any reply can arrive; resolves with each one's latency.
  client.createMany = (endPoint, list) => {
    const collection = new Collection();
    collection.url = endPoint;
    return Promise.all(
      list.map((attrs) => {
        const t0 = performance.now();
        return settle((cb) => collection.create(attrs, cb)).then((m) => ({ ms: performance.now() - t0, id: m.id }));
      }),
    ).then((done) => ({ done, length: collection.length }));
  };
  client.fetchAll = (endPoint) => {
    const collection = new Collection();
    collection.url = endPoint;
    return settle((cb) => collection.fetch(cb)).then((c) => ({ length: c.length, first: c.first() && c.first().id }));
  };
  client.close = () => {};
  return client;
}

// (1) This project: the wasm `sync` from the ESM entry, connected in ack mode. `run.mjs --ab`
// also loads another build of it from `/ab/backbone-socket-sync.mjs` as client `wasmb` (its
// own module instance, so its own socket), to compare two builds in one page.
export async function wasmClient(entry = OURS.esm, name = 'wasm') {
  const esm = await import(entry);
  esm.connect({ url: location.origin, replies: 'ack', timeout: REQUEST_TIMEOUT_MS });
  await new Promise((resolve, reject) => {
    if (esm.socket.connected) return resolve();
    esm.socket.once('connect', resolve);
    esm.socket.once('connect_error', (e) => reject(new Error('wasm connect_error ' + JSON.stringify(e))));
    setTimeout(() => reject(new Error('wasm client: no connect within 10 s')), 10000);
  });
  const client = backboneClient(name, (method, model, options) => esm.sync(method, model, options));
  // The probe sets what the other socket clients send; the wasm sends what it sends.
  if (name !== 'wasm') client.configure = () => {};
  client.close = () => esm.socket.close();
  return client;
}

// (2) The original design: Backbone.sync over npm socket.io-client, ack per request.
export async function socketioClient() {
  const socket = io(location.origin, { transports: ['websocket'] });
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const options = { requestIdMethods: ALL_METHODS, timeoutMs: REQUEST_TIMEOUT_MS };
  const client = backboneClient('socketio', makeSocketioSync(socket, options));
  client.configure = ({ requestIdMethods }) => {
    options.requestIdMethods = requestIdMethods;
  };
  client.close = () => socket.close();
  return client;
}

// The `Backbone.sync` of the original design over a socket.io-client `socket`: the request
// `{signature: {endPoint, ctx?, requestId?}, item | data}` emitted as the method's event,
// settled by its ack, failed after `settings.timeoutMs`. `settings.requestIdMethods` (read
// at every call) names the methods that carry a `requestId`. Self-contained (globals `_` only), so that bench/setup.mjs can inline
// its source into the first-fetch page.
export function makeSocketioSync(socket, settings) {
  let seq = 0;
  const prefix = Math.random().toString(36).slice(2);
  return function sync(method, model, options = {}) {
    const endPoint = options.url || _.result(model, 'url');
    if (!endPoint) throw new Error('A "url" property or function must be specified');
    const signature = { endPoint };
    if (settings.requestIdMethods.includes(method)) signature.requestId = `sio-${prefix}-${++seq}`;
    const ctx = options.ctx || model.ctx;
    if (ctx) signature.ctx = ctx;
    const payload = { signature };
    if (method === 'create' || method === 'update' || method === 'patch') payload.item = options.attrs || model.toJSON(options);
    if (method === 'read' && options.data) payload.data = options.data;
    const promise = new Promise((resolve, reject) => {
      // socket.io-client has no per-request timeout of its own; without one a lost reply
      // would hang the benchmark instead of failing it.
      const timer = setTimeout(() => {
        const xhr = { status: 0, statusText: 'timeout', responseText: '' };
        if (options.error) options.error(xhr);
        reject(xhr);
      }, settings.timeoutMs);
      socket.emit(method, payload, (err, result) => {
        clearTimeout(timer);
        if (err) {
          const xhr = { status: err.status || 500, statusText: 'error', responseJSON: err, responseText: JSON.stringify(err) };
          if (options.error) options.error(xhr);
          reject(xhr);
        } else {
          if (options.success) options.success(result);
          resolve(result);
        }
      });
    });
    promise.catch(() => {});
    model.trigger('request', model, promise, options);
    return promise;
  };
}

// (3) Backbone's own XHR sync against the REST twin (the original, before any install).
export async function xhrClient(ajaxSync) {
  return backboneClient('xhr', ajaxSync);
}

// (4) The ceiling: raw WebSocket, the same frames, acks matched by id, no Backbone.
export async function rawClient() {
  const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket');
  const pending = new Map();
  let ack = 0;
  // A closed socket fails every pending request rather than leaving it waiting.
  ws.onclose = (event) => {
    for (const done of pending.values()) done([{ status: 0, message: `socket closed (${event.code})` }]);
    pending.clear();
  };
  await new Promise((resolve, reject) => {
    ws.onerror = () => reject(new Error('raw client: websocket error'));
    ws.onmessage = (event) => {
      const data = event.data;
      if (data === '2') return ws.send('3');
      if (data.startsWith('43')) {
        let i = 2;
        while (data.charCodeAt(i) >= 48 && data.charCodeAt(i) <= 57) i++;
        const id = Number(data.slice(2, i));
        const done = pending.get(id);
        if (done) {
          pending.delete(id);
          done(JSON.parse(data.slice(i)));
        }
      } else if (data.startsWith('40')) resolve();
      else if (data[0] === '0') ws.send('40');
      else if (data.startsWith('44')) reject(new Error('raw client: connect_error ' + data));
    };
  });
  const client = { name: 'raw', syncMs: 0, syncCalls: 0 };
  const prefix = Math.random().toString(36).slice(2);
  let requestIdMethods = ALL_METHODS;
  client.configure = (settings) => {
    requestIdMethods = settings.requestIdMethods;
  };
  function request(method, endPoint, item) {
    const t0 = performance.now();
    const id = ++ack;
    const arg = { signature: { endPoint } };
    if (requestIdMethods.includes(method)) arg.signature.requestId = `raw-${prefix}-${id}`;
    if (item !== undefined) arg.item = item;
    const promise = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`raw: ${method} ${endPoint}: timeout`));
      }, REQUEST_TIMEOUT_MS);
      pending.set(id, (args) => {
        clearTimeout(timer);
        if (args[0] == null) resolve(args[1]);
        else reject(new Error('raw: ' + JSON.stringify(args[0])));
      });
    });
    ws.send('42' + id + JSON.stringify([method, arg]));
    client.syncMs += performance.now() - t0;
    client.syncCalls++;
    return promise;
  }
  client.create = (endPoint, attrs) => request('create', endPoint, attrs);
  client.read = (endPoint, id) => request('read', `${endPoint}/${id}`);
  client.patch = (endPoint, id, attrs) => request('patch', `${endPoint}/${id}`, attrs);
  client.update = (endPoint, id, attrs) => request('update', `${endPoint}/${id}`, { ...attrs, id });
  client.destroy = (endPoint, id) => request('delete', `${endPoint}/${id}`).then(() => ({ id }));
  client.createMany = (endPoint, list) =>
    Promise.all(
      list.map((attrs) => {
        const t0 = performance.now();
        return request('create', endPoint, attrs).then((m) => ({ ms: performance.now() - t0, id: m.id }));
      }),
    ).then((done) => ({ done, length: done.length }));
  client.fetchAll = (endPoint) => request('read', endPoint).then((list) => ({ length: list.length, first: list[0] && list[0].id }));
  client.close = () => ws.close();
  return client;
}
