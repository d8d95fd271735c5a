#!/usr/bin/env node
// A real socket.io v4 server (npm `socket.io`) for the client's tests.
//
// It speaks the wire protocol of the team contract (/tmp/team/CONTRACT.md): a Backbone
// method (`create`, `read`, `update`, `patch`, `delete`) arrives as an event with one
// argument `{signature: {endPoint, ctx?, requestId?}, item?, data?}` and is answered from an
// in-memory store in BOTH reply modes:
//
//   - ack mode  (the event carries an ack function): `ack(null, result)` on success,
//                `ack({status, message})` on error;
//   - event mode (no ack function): the server emits `<method>:<endPoint>[:<ctx>]` to the
//                requesting socket with the result, or `{error: {status, message}}`.
//
// Store rules (as the reference Rust server, except that its `/api` prefix is optional): an
// endpoint is `/seg/seg/...`, segments `[A-Za-z0-9_.~-]+`, no `.`/`..`, at most 1024 chars.
// Not counting a leading `/api`, an odd number of segments names a collection
// (`/api/todos`, `/api/users/7/todos`, `/todos`), an even number a model (`/api/todos/5`;
// last segment = id).
// create (collection) assigns an integer id and returns the stored model; read returns the
// collection as an array (honouring `data`: top-level equality filters, `_limit`, `_offset`)
// or the model (404 when missing); update replaces, patch merges top-level keys (both 404
// when missing, 400 when `item.id` contradicts the endpoint); delete removes and returns
// `{}` (404 when missing). Items must be JSON objects (400) of at most --max-item-bytes
// (413). A write's `signature.requestId` is remembered with its result: a repeat gets the
// original result without applying again.
//
// Test hooks (endpoint prefixes; the rest of the endpoint follows the prefix):
//   /timeout/...           never answered (request timeouts)
//   /error/<status>/...    answered with an error of that status, message "test error <status>"
//   /delay/<ms>/...        answered after <ms> ms (0..60000), then handled as `...`
//   /disconnect/...        the server disconnects that socket: `socket.disconnect(true)` (`41`)
//   /close/...             the server closes the transport: `socket.conn.close()`
//   /kill/...              the server drops the TCP connection with no close frame
//   /garbage/...           the server sends the malformed frame `42[not json` and no answer
//   /binary/...            the server sends a binary EVENT header `451-[...]` and no answer
// Namespaces: `/` and `/admin` serve the same store; `/private` too, but its middleware
// rejects a missing or wrong `auth.token` with CONNECT_ERROR `44/private,{"message":...}`;
// the token `secret` passes.
// Other events: `echo` acks its arguments back (`ack(...args)`) and emits `echoed` with them;
// `ask` emits `question` to the client with an ack and acks back the client's answer.
//
// HTTP (CORS `*` on everything):
//   POST /reset          clear the store, the requestId log and the counters -> {"ok":true}
//   GET  /stats          counters: {connections, connected, requests: {create: n, ...}, applied,
//                        duplicates, echoes, pongs, rest: {GET: n, ...}, items}
//   /api/...             the same store over REST (GET/POST/PUT/PATCH/DELETE, JSON), so that
//                        plain XHR `Backbone.ajaxSync` works against it
//   GET /vendor/{backbone,underscore,jquery,socket.io}.js   from node_modules
//   GET /www/...         the repo's `www/` folder (so pages load the shim and `www/pkg`)
//   GET /page.html?script=URL&module=URL&inline=CODE...   a blank page with those classic
//                        scripts, module scripts and inline classic scripts, in order
//                        (test pages without fixture files)
//   GET <prefix>/...     extra folders given with `--static <prefix>=<dir>` (repeatable)
//
// Usage: node tests/support/socketio-server.mjs [--port N] [--ping-interval MS]
//        [--ping-timeout MS] [--websocket-only] [--max-item-bytes N] [--static /p=dir]
// Environment: PORT, PING_INTERVAL, PING_TIMEOUT, WEBSOCKET_ONLY=1, VERBOSE=1.
// Port 0 (the default) picks a free port. When ready it prints exactly one line,
// `LISTENING <port>`, on stdout; it listens on 127.0.0.1 only and exits 0 on SIGTERM/SIGINT.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Server } from 'socket.io';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ---- options -------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    'ping-interval': { type: 'string' },
    'ping-timeout': { type: 'string' },
    'websocket-only': { type: 'boolean' },
    'max-item-bytes': { type: 'string' },
    static: { type: 'string', multiple: true },
    verbose: { type: 'boolean' },
  },
});

/** An integer option from a flag or the environment, with a default and bounds. */
function intOption(flag, env, fallback) {
  const raw = flags[flag] ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`socketio-server: --${flag} must be a non-negative integer, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const port = intOption('port', 'PORT', 0);
const pingInterval = intOption('ping-interval', 'PING_INTERVAL', 25000);
const pingTimeout = intOption('ping-timeout', 'PING_TIMEOUT', 20000);
const maxItemBytes = intOption('max-item-bytes', 'MAX_ITEM_BYTES', 64 * 1024);
const websocketOnly = flags['websocket-only'] || process.env.WEBSOCKET_ONLY === '1';
const verbose = flags.verbose || process.env.VERBOSE === '1';
const log = verbose ? (...a) => console.error('[socketio-server]', ...a) : () => {};

const staticMounts = [['/www', path.join(repoRoot, 'www')]];
for (const spec of flags.static ?? []) {
  const eq = spec.indexOf('=');
  if (eq < 1 || !spec.startsWith('/')) {
    console.error(`socketio-server: --static wants /prefix=dir, got ${spec}`);
    process.exit(2);
  }
  staticMounts.push([spec.slice(0, eq).replace(/\/+$/, ''), path.resolve(spec.slice(eq + 1))]);
}

const vendorFiles = {
  '/vendor/backbone.js': 'node_modules/backbone/backbone.js',
  '/vendor/underscore.js': 'node_modules/underscore/underscore.js',
  '/vendor/jquery.js': 'node_modules/jquery/dist/jquery.js',
  '/vendor/socket.io.js': 'node_modules/socket.io-client/dist/socket.io.min.js',
};

// ---- the store -----------------------------------------------------------------------

/** An error with an HTTP-like status, sent to the client as `{status, message}`. */
class StoreError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const SEGMENT = /^[A-Za-z0-9_.~-]+$/;

/** Splits an endpoint into its segments, or throws a 400 StoreError when it is not one. */
function parseEndpoint(endPoint) {
  if (typeof endPoint !== 'string' || !endPoint.startsWith('/')) {
    throw new StoreError(400, 'signature.endPoint must be a path starting with "/"');
  }
  if (endPoint.length > 1024) throw new StoreError(400, 'endPoint longer than 1024');
  const segments = endPoint.slice(1).replace(/\/$/, '').split('/');
  for (const s of segments) {
    if (!SEGMENT.test(s) || s === '.' || s === '..') {
      throw new StoreError(400, `bad endPoint segment ${JSON.stringify(s)}`);
    }
  }
  return segments;
}

/** True for a plain JSON object (not an array, not null). */
function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The in-memory store: collection path -> {nextId, items: Map(id string -> model)}. */
class Store {
  constructor() {
    this.reset();
  }

  /** Forgets every model and every requestId. */
  reset() {
    this.collections = new Map();
    this.applied = new Map();
  }

  /** Counts the models held in every collection. */
  size() {
    let n = 0;
    for (const c of this.collections.values()) n += c.items.size;
    return n;
  }

  /** The collection at `key`, created empty on first use. */
  collection(key) {
    let c = this.collections.get(key);
    if (!c) this.collections.set(key, (c = { nextId: 1, items: new Map() }));
    return c;
  }

  /**
   * Applies one request and returns its result, or throws a StoreError. A write whose
   * requestId was seen before returns the first result (`duplicate` is then set).
   */
  handle(method, endPoint, body) {
    const segments = parseEndpoint(endPoint);
    // The Rust server's default --api-prefix is not part of the collection/model count.
    const counted = segments[0] === 'api' && segments.length > 1 ? segments.length - 1 : segments.length;
    const isModel = counted % 2 === 0;
    const key = (isModel ? segments.slice(0, -1) : segments).join('/');
    const id = isModel ? segments[segments.length - 1] : null;
    const requestId = body.signature?.requestId;
    const write = method !== 'read';
    if (write && typeof requestId === 'string' && this.applied.has(requestId)) {
      return { result: structuredClone(this.applied.get(requestId)), duplicate: true };
    }
    const result = this.apply(method, key, id, body);
    if (write && typeof requestId === 'string') this.applied.set(requestId, structuredClone(result));
    return { result, duplicate: false };
  }

  /** The method switch; `id` is null for a collection endpoint. */
  apply(method, key, id, body) {
    const items = this.collections.get(key)?.items;
    const item = body.item;
    if (method === 'create' || method === 'update' || method === 'patch') {
      if (!isObject(item)) throw new StoreError(400, `${method} needs an item that is a JSON object`);
      if (JSON.stringify(item).length > maxItemBytes) throw new StoreError(413, 'item too large');
    }
    switch (method) {
      case 'create': {
        if (id !== null) throw new StoreError(400, 'create needs a collection endpoint');
        const c = this.collection(key);
        const model = { ...item, id: c.nextId++ };
        c.items.set(String(model.id), model);
        return structuredClone(model);
      }
      case 'read': {
        if (id !== null) {
          const model = items?.get(id);
          if (!model) throw new StoreError(404, 'not found');
          return structuredClone(model);
        }
        return this.query([...(items?.values() ?? [])], body.data);
      }
      case 'update':
      case 'patch': {
        if (id === null) throw new StoreError(400, `${method} needs a model endpoint`);
        if (item.id !== undefined && item.id !== null && String(item.id) !== id) {
          throw new StoreError(400, `item.id ${JSON.stringify(item.id)} contradicts endpoint id ${id}`);
        }
        const old = items?.get(id);
        if (!old) throw new StoreError(404, 'not found');
        const model = method === 'update' ? { ...item, id: old.id } : { ...old, ...item, id: old.id };
        items.set(id, model);
        return structuredClone(model);
      }
      case 'delete': {
        if (id === null) throw new StoreError(400, 'delete needs a model endpoint');
        if (!items?.delete(id)) throw new StoreError(404, 'not found');
        return {};
      }
      default:
        throw new StoreError(400, `unknown method ${method}`);
    }
  }

  /** Filters a collection read by `data`: equality on attributes, then `_offset`/`_limit`. */
  query(models, data) {
    let out = models;
    if (isObject(data)) {
      for (const [k, v] of Object.entries(data)) {
        if (k === '_limit' || k === '_offset') continue;
        out = out.filter((m) => m[k] === v || (typeof m[k] !== 'string' && String(m[k]) === v));
      }
      const offset = Number(data._offset ?? 0);
      const limit = data._limit === undefined ? Infinity : Number(data._limit);
      out = out.slice(offset, offset + limit);
    }
    return structuredClone(out);
  }
}

const store = new Store();

/** The counters served at GET /stats; reset by POST /reset. */
function freshStats() {
  return { connections: 0, requests: {}, applied: 0, duplicates: 0, echoes: 0, pongs: 0, rest: {} };
}
let stats = freshStats();

// ---- socket.io -----------------------------------------------------------------------

const METHODS = ['create', 'read', 'update', 'patch', 'delete'];

/** The event-mode reply name: `<method>:<endPoint>` plus `:<ctx>` when a ctx was sent. */
function replyName(method, signature) {
  const endPoint = typeof signature?.endPoint === 'string' ? signature.endPoint : '';
  const ctx = signature?.ctx;
  return ctx === undefined || ctx === null ? `${method}:${endPoint}` : `${method}:${endPoint}:${ctx}`;
}

/**
 * Runs a test hook named by the endpoint's prefix. Returns the endpoint to handle
 * normally, or null when the hook has taken care of (or deliberately dropped) the request.
 */
async function runHook(socket, endPoint) {
  const m = /^\/(timeout|error|delay|disconnect|close|kill|garbage|binary)(?:\/|$)/.exec(endPoint);
  if (!m) return endPoint;
  const rest = endPoint.slice(m[0].length - (m[0].endsWith('/') ? 1 : 0));
  switch (m[1]) {
    case 'timeout':
      return null;
    case 'error': {
      const status = Number(/^\/(\d{3})(?:\/|$)/.exec(rest)?.[1] ?? 500);
      throw new StoreError(status, `test error ${status}`);
    }
    case 'delay': {
      const d = /^\/(\d+)(\/.*)$/.exec(rest);
      if (!d || Number(d[1]) > 60000) throw new StoreError(400, 'use /delay/<ms>/<endpoint>');
      await new Promise((resolve) => setTimeout(resolve, Number(d[1])));
      return d[2];
    }
    case 'disconnect':
      socket.disconnect(true);
      return null;
    case 'close':
      socket.conn.close();
      return null;
    case 'kill': {
      const ws = socket.conn.transport?.socket;
      if (ws && typeof ws.terminate === 'function') ws.terminate();
      else socket.conn.request?.socket?.destroy();
      return null;
    }
    case 'garbage':
      socket.conn.write('2[not json'); // engine.io adds the `4`: the wire frame is `42[not json`
      return null;
    case 'binary':
      socket.conn.write('51-["binary",{"_placeholder":true,"num":0}]');
      return null;
  }
  return endPoint;
}

/** Answers one Backbone request in the mode the client chose (ack function or not). */
async function onRequest(socket, method, args) {
  const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
  const body = args[0];
  stats.requests[method] = (stats.requests[method] ?? 0) + 1;
  const reply = (err, result) => {
    if (!socket.connected) return;
    if (ack) err ? ack(err) : ack(null, result);
    else socket.emit(replyName(method, body?.signature), err ? { error: err } : result);
  };
  try {
    if (!isObject(body) || !isObject(body.signature)) {
      throw new StoreError(400, 'the argument must be {signature: {endPoint}, ...}');
    }
    const endPoint = await runHook(socket, body.signature.endPoint);
    if (endPoint === null) return;
    const { result, duplicate } = store.handle(method, endPoint, body);
    if (duplicate) stats.duplicates++;
    else if (method !== 'read') stats.applied++;
    log(socket.nsp.name, method, body.signature.endPoint, ack ? 'ack' : 'event');
    reply(null, result);
  } catch (e) {
    if (!(e instanceof StoreError)) console.error('socketio-server: internal error', e);
    const status = e instanceof StoreError ? e.status : 500;
    reply({ status, message: e.message });
  }
}

/** Wires the CRUD events and `echo` on every socket of a namespace. */
function serveNamespace(nsp) {
  nsp.on('connection', (socket) => {
    stats.connections++;
    socket.conn.on('packet', (p) => {
      if (p.type === 'pong') stats.pongs++;
    });
    for (const method of METHODS) {
      socket.on(method, (...args) => void onRequest(socket, method, args));
    }
    socket.on('echo', (...args) => {
      stats.echoes++;
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (ack) ack(...args);
      socket.emit('echoed', ...args);
    });
    // `handshake` acks the CONNECT payload the server received (`socket.handshake.auth`).
    socket.on('handshake', (ack) => {
      if (typeof ack === 'function') ack(socket.handshake.auth);
    });
    // `ask` puts the question to the client (an event asking for an ack) and acks back the
    // client's answer: `[...answer]`, or `['timeout']` when the client never answered.
    socket.on('ask', (question, ack) => {
      socket.timeout(5000).emit('question', question, (err, ...answer) => {
        if (typeof ack === 'function') ack(err ? ['timeout'] : answer);
      });
    });
  });
}

// ---- HTTP ----------------------------------------------------------------------------

const TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Sends a body with CORS `*` and no caching. */
function send(res, status, body, type = 'application/json; charset=utf-8') {
  res.writeHead(status, {
    'content-type': type,
    'access-control-allow-origin': '*',
    'access-control-allow-headers': '*',
    'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** Serves `file` if it exists under `root`, else a 404. */
async function sendFile(res, root, file) {
  const full = path.resolve(root, '.' + path.posix.normalize('/' + file));
  if (full !== root && !full.startsWith(root + path.sep)) return send(res, 403, '{"error":"forbidden"}');
  try {
    if (!(await stat(full)).isFile()) throw new Error('not a file');
    const type = full.endsWith('.d.ts') ? 'text/plain; charset=utf-8' : TYPES[path.extname(full)];
    send(res, 200, await readFile(full), type ?? 'application/octet-stream');
  } catch {
    send(res, 404, JSON.stringify({ error: `no such file ${file}` }));
  }
}

/** Reads a request body as JSON (undefined when empty). */
async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

/** The same store over REST, for `Backbone.ajaxSync`: /api/... */
async function onRest(req, res, pathname, query) {
  stats.rest[req.method] = (stats.rest[req.method] ?? 0) + 1;
  const method = { GET: 'read', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[req.method];
  if (!method) return send(res, 405, JSON.stringify({ error: { status: 405, message: 'method not allowed' } }));
  try {
    let item;
    try {
      item = await readJson(req);
    } catch {
      throw new StoreError(400, 'body is not JSON');
    }
    const data = Object.keys(query).length ? query : undefined;
    const { result, duplicate } = store.handle(method, pathname, { signature: { endPoint: pathname }, item, data });
    if (!duplicate && method !== 'read') stats.applied++;
    send(res, 200, JSON.stringify(result));
  } catch (e) {
    const status = e instanceof StoreError ? e.status : 500;
    send(res, status, JSON.stringify({ error: { status, message: e.message } }));
  }
}

/** A blank test page with `?script=` classic, `?module=` module and `?inline=` inline scripts. */
function testPage(url) {
  const esc = (s) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const tags = [];
  for (const [k, v] of url.searchParams) {
    if (k === 'script') tags.push(`<script src="${esc(v)}"></script>`);
    if (k === 'module') tags.push(`<script type="module" src="${esc(v)}"></script>`);
    if (k === 'inline') tags.push(`<script>${v.replace(/<\//g, '<\\/')}</script>`);
  }
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>test</title>\n${tags.join('\n')}\n</head><body></body></html>\n`;
}

/** Routes every HTTP request that is not socket.io's own. */
async function onHttp(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const p = decodeURIComponent(url.pathname);
  if (req.method === 'OPTIONS') return send(res, 204, '');
  if (p === '/reset' && req.method === 'POST') {
    store.reset();
    stats = freshStats();
    return send(res, 200, '{"ok":true}');
  }
  if (p === '/stats' && req.method === 'GET') {
    const connected = [...io._nsps.values()].reduce((n, nsp) => n + nsp.sockets.size, 0);
    return send(res, 200, JSON.stringify({ ...stats, connected, items: store.size() }));
  }
  if (p === '/favicon.ico') return send(res, 204, '');
  if (p === '/page.html') return send(res, 200, testPage(url), TYPES['.html']);
  if (p === '/api' || p.startsWith('/api/')) return onRest(req, res, p, Object.fromEntries(url.searchParams));
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, '{"error":"method not allowed"}');
  if (vendorFiles[p]) return sendFile(res, repoRoot, vendorFiles[p]);
  for (const [prefix, dir] of staticMounts) {
    if (p.startsWith(prefix + '/')) return sendFile(res, dir, p.slice(prefix.length + 1));
  }
  send(res, 404, JSON.stringify({ error: `no route ${p}` }));
}

const http = createServer((req, res) => {
  onHttp(req, res).catch((e) => {
    console.error('socketio-server: http error', e);
    if (!res.headersSent) send(res, 500, '{"error":"internal"}');
  });
});

const io = new Server(http, {
  pingInterval,
  pingTimeout,
  transports: websocketOnly ? ['websocket'] : ['polling', 'websocket'],
  cors: { origin: '*' },
  serveClient: false,
});

serveNamespace(io.of('/'));
serveNamespace(io.of('/admin'));
const privateNsp = io.of('/private');
privateNsp.use((socket, next) => {
  if (socket.handshake.auth?.token === 'secret') return next();
  const err = new Error('unauthorized');
  err.data = { status: 401 };
  next(err);
});
serveNamespace(privateNsp);

http.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${http.address().port}\n`);
  log(`pingInterval=${pingInterval} pingTimeout=${pingTimeout} websocketOnly=${websocketOnly}`);
});

/** Stops accepting, closes every socket, and exits 0. */
function shutdown() {
  io.close(() => process.exit(0));
  // io.close waits for HTTP keep-alive sockets; don't let one hold the process.
  http.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
