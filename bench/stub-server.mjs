#!/usr/bin/env node
// The original design's server, for reference in the load benchmark: npm `socket.io` with an
// in-memory store, answering the same wire protocol as the Rust reference server (see
// /tmp/team/CONTRACT.md): an event named for the Backbone method with one argument
// `{signature: {endPoint, ctx?, requestId?}, item?, data?}`, answered through the ack as
// `(null, result)` / `({status, message})`, or, without an ack, by emitting
// `<method>:<endPoint>[:<ctx>]` to the requesting socket.
//
// It keeps what the loads exercise (create with ids, read of a model or collection, update,
// patch, delete, requestId replay) and nothing else: no persistence, no REST, no validation
// beyond what a wrong request needs to get an error instead of a crash.
//
// Endpoints: after the `/api` prefix, an odd number of segments names a collection, an even
// number a model (last segment = id).
//
// Usage: node bench/stub-server.mjs [--port N]   (0, the default, picks a free port)
// Prints `listening on http://127.0.0.1:PORT` when ready; exits on SIGTERM/SIGINT.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';

const { values: flags } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

const collections = new Map(); // collection path -> {next, models: Map<id string, object>}
const applied = new Map(); // requestId -> result (idempotent replays)

class ApiError {
  constructor(status, message) { this.status = status; this.message = message; }
}

function split(endPoint) {
  if (typeof endPoint !== 'string' || !/^(\/[A-Za-z0-9_.~-]+)+$/.test(endPoint) || endPoint.length > 1024) {
    throw new ApiError(400, 'bad endPoint');
  }
  // As in the Rust server, the `/api` prefix does not count: /api/todos is a collection.
  const segments = endPoint.split('/').slice(1);
  const counted = segments[0] === 'api' ? segments.length - 1 : segments.length;
  if (counted % 2 === 1) return { path: endPoint, id: null };
  return { path: '/' + segments.slice(0, -1).join('/'), id: segments[segments.length - 1] };
}

function collection(path) {
  let c = collections.get(path);
  if (!c) collections.set(path, (c = { next: 1, models: new Map() }));
  return c;
}

function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

function handle(method, { signature = {}, item, data } = {}) {
  const { path, id } = split(signature.endPoint);
  const c = collection(path);
  const model = id == null ? undefined : c.models.get(id);
  if (method !== 'create' && method !== 'read' && id == null) throw new ApiError(400, 'model endpoint required');
  switch (method) {
    case 'create': {
      if (id != null) throw new ApiError(400, 'collection endpoint required');
      if (!isObject(item)) throw new ApiError(400, 'item must be an object');
      const stored = { ...item, id: c.next++ };
      c.models.set(String(stored.id), stored);
      return stored;
    }
    case 'read': {
      if (id == null) {
        let all = [...c.models.values()];
        if (isObject(data)) {
          const { _limit, _offset = 0, ...filters } = data;
          all = all.filter((m) => Object.entries(filters).every(([k, v]) => m[k] === v));
          all = all.slice(_offset, _limit == null ? undefined : _offset + _limit);
        }
        return all;
      }
      if (!model) throw new ApiError(404, 'not found');
      return model;
    }
    case 'update':
    case 'patch': {
      if (!model) throw new ApiError(404, 'not found');
      if (!isObject(item)) throw new ApiError(400, 'item must be an object');
      const stored = method === 'update' ? { ...item, id: model.id } : { ...model, ...item, id: model.id };
      c.models.set(id, stored);
      return stored;
    }
    case 'delete':
      if (!model) throw new ApiError(404, 'not found');
      c.models.delete(id);
      return {};
    default:
      throw new ApiError(400, `unknown event ${method}`);
  }
}

function answer(method, args) {
  const requestId = args?.signature?.requestId;
  if (requestId != null && applied.has(requestId)) return applied.get(requestId);
  const result = handle(method, args);
  if (requestId != null && method !== 'read') applied.set(requestId, result);
  return result;
}

const http = createServer((req, res) => { res.writeHead(404).end(); });
const io = new Server(http, { transports: ['websocket'], maxHttpBufferSize: 16 << 20 });
io.on('connection', (socket) => {
  socket.onAny((method, args, ack) => {
    let result, error;
    try { result = answer(method, args); } catch (e) {
      error = e instanceof ApiError ? { status: e.status, message: e.message } : { status: 500, message: String(e) };
    }
    if (typeof ack === 'function') return error ? ack(error) : ack(null, result);
    const sig = args?.signature ?? {};
    const name = `${method}:${sig.endPoint}${sig.ctx != null ? ':' + sig.ctx : ''}`;
    socket.emit(name, error ? { error } : result);
  });
});

http.listen(Number(flags.port), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${http.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => { io.close(); process.exit(0); });
