// The page side of the benchmark: sets up the clients (clients.mjs) and exposes
// `window.bench`, whose workloads bench/run.mjs calls one batch at a time, rotating the
// clients between batches so that they are interleaved over the run.
//
// Every workload checks what it gets back (ids assigned, attributes round-tripped, counts)
// and throws on a wrong result, so the smoke run fails when a client misbehaves.

/* global Backbone */

import { wasmClient, socketioClient, xhrClient, rawClient } from './clients.mjs';

// Backbone's own XHR sync, taken before anything could replace it.
const ajaxSync = Backbone.sync;
const clients = {};

function check(ok, message) {
  if (!ok) throw new Error(message);
}

function pad(bytes) {
  return 'x'.repeat(Math.max(0, bytes));
}

// Sequential: one request at a time, each awaited before the next.
async function latency(client, { endPoint, n, tag }) {
  const out = { create: [], read: [], patch: [] };
  for (let i = 0; i < n; i++) {
    const title = `${tag} ${i}`;
    let t0 = performance.now();
    const created = await client.create(endPoint, { title, done: false });
    out.create.push(performance.now() - t0);
    check(created.id != null && created.title === title, `create returned ${JSON.stringify(created)}`);
    t0 = performance.now();
    const read = await client.read(endPoint, created.id);
    out.read.push(performance.now() - t0);
    check(read.id == created.id && read.title === title && read.done === false, `read returned ${JSON.stringify(read)}`);
    t0 = performance.now();
    const patched = await client.patch(endPoint, created.id, { done: true });
    out.patch.push(performance.now() - t0);
    check(patched.done === true && patched.title === title, `patch returned ${JSON.stringify(patched)}`);
  }
  return out;
}

// `n` creates issued at once on one collection.
async function throughput(client, { endPoint, n, tag }) {
  const list = Array.from({ length: n }, (_, i) => ({ title: `${tag} ${i}`, done: false }));
  const t0 = performance.now();
  const { done, length } = await client.createMany(endPoint, list);
  const wallMs = performance.now() - t0;
  const ids = new Set(done.map((d) => d.id));
  check(done.length === n && length === n, `createMany: ${done.length} replies, collection of ${length}, want ${n}`);
  check(ids.size === n && !ids.has(undefined) && !ids.has(null), `createMany: ${ids.size} distinct ids for ${n} creates`);
  return { wallMs, latencies: done.map((d) => d.ms) };
}

// One `collection.fetch` of a seeded collection of `expect` models.
async function fetchAll(client, { endPoint, expect }) {
  const t0 = performance.now();
  const { length, first } = await client.fetchAll(endPoint);
  const wallMs = performance.now() - t0;
  check(length === expect && first != null, `fetch: ${length} models, want ${expect}`);
  return { wallMs };
}

// Sequential create + read of models padded to about `bytes` of JSON.
async function size(client, { endPoint, n, bytes, tag }) {
  const out = { create: [], read: [] };
  const padding = pad(bytes - 48);
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    const created = await client.create(endPoint, { title: `${tag} ${i}`, pad: padding });
    out.create.push(performance.now() - t0);
    check(created.id != null && created.pad === padding, `create (${bytes} B) returned a wrong model`);
    t0 = performance.now();
    const read = await client.read(endPoint, created.id);
    out.read.push(performance.now() - t0);
    check(read.pad === padding && read.title === `${tag} ${i}`, `read (${bytes} B) returned a wrong model`);
  }
  return out;
}

// One request of each kind, in order (create, read, update, patch, read of the collection,
// delete), for bench/browser.mjs to see in the frames sent which of them carry a
// `requestId`; checks each answer.
async function probe(client, { endPoint }) {
  const created = await client.create(endPoint, { title: 'probe', done: false });
  check(created.id != null, `probe create returned ${JSON.stringify(created)}`);
  const read = await client.read(endPoint, created.id);
  check(read.title === 'probe', `probe read returned ${JSON.stringify(read)}`);
  const updated = await client.update(endPoint, created.id, { title: 'probe 2', done: true });
  check(updated.title === 'probe 2' && updated.done === true, `probe update returned ${JSON.stringify(updated)}`);
  const patched = await client.patch(endPoint, created.id, { done: false });
  check(patched.title === 'probe 2' && patched.done === false, `probe patch returned ${JSON.stringify(patched)}`);
  const { length } = await client.fetchAll(endPoint);
  check(length >= 1, `probe fetch: ${length} models`);
  await client.destroy(endPoint, created.id);
  return {};
}

const workloads = { latency, throughput, fetch: fetchAll, size, probe };

window.bench = {
  // Connects the named clients; returns {name: error message} for those that failed.
  async init(names) {
    const errors = {};
    const makers = {
      wasm: () => wasmClient(),
      wasmb: () => wasmClient('/ab/backbone-socket-sync.mjs', 'wasmb'),
      socketio: socketioClient,
      xhr: () => xhrClient(ajaxSync),
      raw: rawClient,
    };
    for (const name of names) {
      try {
        clients[name] = await makers[name]();
      } catch (e) {
        errors[name] = String((e && e.stack) || e);
      }
    }
    return errors;
  },

  // Sets which methods carry a `requestId` for a client that can choose (socketio, raw).
  configure(name, settings) {
    check(typeof clients[name].configure === 'function', `${name} cannot be configured`);
    clients[name].configure(settings);
  },

  // Runs one batch of a workload on one client; returns its measurements plus the time
  // spent inside the client's sync calls.
  async run(name, workload, params) {
    const client = clients[name];
    const [ms0, calls0] = [client.syncMs, client.syncCalls];
    const result = await workloads[workload](client, params);
    result.syncMs = client.syncMs - ms0;
    result.syncCalls = client.syncCalls - calls0;
    return result;
  },

  // Fills a collection with `n` small models through the raw client, 100 at a time (fewer
  // than socketioxide's default per-socket buffer of 128 packets: see bench/README.md).
  async seed(endPoint, n) {
    const raw = clients.raw || (clients.raw = await rawClient());
    for (let i = 0; i < n; i += 100) {
      const list = Array.from({ length: Math.min(100, n - i) }, (_, j) => ({ title: `seed ${i + j}`, done: (i + j) % 2 === 0 }));
      await raw.createMany(endPoint, list);
    }
    const { length } = await raw.fetchAll(endPoint);
    check(length === n, `seeded ${length} models, want ${n}`);
  },

  heap() {
    const m = performance.memory;
    return m ? { usedJSHeapSize: m.usedJSHeapSize, totalJSHeapSize: m.totalJSHeapSize } : null;
  },

  close() {
    for (const client of Object.values(clients)) client.close();
  },
};
window.benchReady = true;
