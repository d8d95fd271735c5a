//     backbone-socket-sync.mjs
//     Backbone.sync over one socket.io WebSocket, in Rust compiled to WebAssembly.
//     MIT licence.
//
// The ES module entry of the package. The work is done by the wasm module in `pkg/`
// (its `sync`, `connect` and `Socket`); this file is the thin layer a JavaScript app sees:
//
//     import Backbone from 'backbone';
//     import { install, socket } from 'backbone-socket-sync';
//     install(Backbone, { url: 'ws://127.0.0.1:3000', replies: 'ack' });
//     socket.on('connect', () => console.log('connected as', socket.id));
//
// The wasm is fetched and compiled while this module is imported (a top-level `await`),
// so by the time your code runs everything is usable, and a wasm that cannot be loaded
// fails the import loudly instead of leaving saves pending. The script-tag shim
// (`backbone-socket-sync.js`) imports this file and queues calls until it has loaded.

import init, * as wasm from './pkg/backbone_socket_sync.js';
import { createFallback } from './fallback.mjs';

await init();

// The Connection
// --------------

// The wasm `Socket` the app and `sync` currently use; made by `connect`, or on first use.
let current = null;

// Listeners live here rather than on the wasm `Socket`, so that they survive a
// `connect()` that replaces the connection. Each event name has one dispatcher function
// registered on the wasm side, which calls the listeners of that name in order.
const listeners = new Map();
const dispatchers = new Map();

// Registers the dispatcher of `name` on the current wasm socket.
function attach(name) {
  let dispatch = dispatchers.get(name);
  if (!dispatch) {
    dispatch = function (...args) {
      for (const listener of [...(listeners.get(name) || [])]) {
        if (listener.once) removeListener(name, listener.fn);
        listener.fn.apply(socket, args);
      }
    };
    dispatchers.set(name, dispatch);
  }
  if (current) current.on(name, dispatch);
}

// Forgets one listener of `name` (or all of them when `fn` is left out); when none is
// left, the dispatcher is unhooked from the wasm socket too.
function removeListener(name, fn) {
  const list = (listeners.get(name) || []).filter((l) => fn !== undefined && l.fn !== fn);
  if (list.length) return void listeners.set(name, list);
  listeners.delete(name);
  if (current && dispatchers.has(name)) current.off(name, dispatchers.get(name));
  dispatchers.delete(name);
}

// Adds a listener, remembering whether it should fire only once.
function addListener(name, fn, once) {
  if (typeof fn !== 'function') throw new TypeError(`socket.${once ? 'once' : 'on'}(name, fn): fn must be a function`);
  const list = listeners.get(name) || [];
  list.push({ fn, once });
  listeners.set(name, list);
  if (list.length === 1) attach(name);
}

// The connection `sync` uses, opened with the default options (the page's origin, ack
// replies) when the app never called `connect`.
function ensureSocket() {
  return current || connect();
}

// **connect** opens the connection `Backbone.sync` and the app's own events use, and
// closes any previous one (its pending requests fail). Options, all optional: `url`
// (`http(s)://` or `ws(s)://`, default the page's origin), `namespace` (`"/"`), `auth`
// (sent with the namespace CONNECT), `replies` (`"ack"` or `"event"`), `timeout` (ms per
// request, 10000), `queueSize`, and the reconnection options of socket.io-client. Returns
// `socket`; listeners already added stay attached to the new connection.
export function connect(options) {
  fallback.configure(options);
  replies = (options && options.replies) || 'ack';
  current = wasm.connect(options === undefined ? {} : options);
  for (const name of listeners.keys()) attach(name);
  return socket;
}

// **socket** is the connection, open to the app for its own events as the global socket
// of socket.io-client would be: `emit(event, ...args[, ack])`, `on`, `once`, `off`, and
// the lifecycle events `connect`, `disconnect` (reason), `connect_error`, `error`,
// `reconnect_attempt` and `reconnect`. It stays the same object across `connect` calls.
export const socket = {
  // Sends an event with any number of JSON arguments; a function as the last argument
  // asks the server for an acknowledgement and is called with its arguments.
  emit(event, ...args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    ensureSocket().emit(event, args, ack);
    return socket;
  },
  // Calls `fn` every time the event arrives.
  on(name, fn) {
    addListener(name, fn, false);
    return socket;
  },
  // Calls `fn` the next time the event arrives, then forgets it.
  once(name, fn) {
    addListener(name, fn, true);
    return socket;
  },
  // Forgets `fn` as a listener of `name`, or every listener of `name` without `fn`.
  off(name, fn) {
    removeListener(name, fn);
    return socket;
  },
  // Disconnects (the pending requests fail); `connect()` opens a new connection.
  close() {
    if (current) current.close();
    return socket;
  },
  // Whether the namespace is connected right now.
  get connected() {
    return current ? current.connected : false;
  },
  // The socket.io session id of the namespace connection, while connected.
  get id() {
    return current ? current.id : undefined;
  },
};

// Live collections and the XHR fallback
// -------------------------------------

// How the current connection gets its replies, for `live`'s subscribe requests.
let replies = 'ack';

// `live.mjs` is only downloaded by a page that makes a collection live: the first `live`
// imports it, and every later `live`/`unlive` runs in order after that import.
let liveModule = null;

// **live(collection)** / **unlive(collection)**: apply other clients' writes to a
// collection as they happen, and catch up after a reconnection (see `live.mjs`). A
// collection without a url throws at once, as `Backbone.sync` would. Return the collection.
export function live(collection) {
  if (!(typeof collection.url === 'function' ? collection.url() : collection.url)) {
    throw new Error('live(collection): A "url" property or function must be specified');
  }
  liveModule = liveModule || import('./live.mjs').then((m) => m.createLive(socket, () => replies, ensureSocket));
  liveModule.then((l) => l.live(collection));
  return collection;
}

export function unlive(collection) {
  if (liveModule) liveModule.then((l) => l.unlive(collection));
  return collection;
}

// With `transport: 'auto'`, calls go through XHR while the socket cannot connect (see
// `fallback.mjs`).
const fallback = createFallback(socket);

// Backbone.sync
// -------------

// **sync** is the `Backbone.sync` replacement: it sends `method` for `model` over the
// socket and returns a Promise that is also jqXHR-like (`done`, `fail`, `always`, `abort`),
// calling `options.success` / `options.error` as Backbone's own sync does.
export function sync(method, model, options) {
  ensureSocket();
  return wasm.sync(method, model, options);
}

// Whether `model` (or the collection it belongs to) asked to keep using XHR.
export function usesAjax(model) {
  return Boolean(model && (model.ajaxSync || (model.collection && model.collection.ajaxSync)));
}

// **install** makes `sync` the `Backbone.sync` of the given Backbone, keeping the original
// as `Backbone.ajaxSync` for models and collections that set `ajaxSync: true`. With
// `options` it connects at once; without, the connection opens on first use (a sync, or
// the socket). Installing twice keeps the first original. Returns the installed function.
export function install(Backbone, options) {
  if (!Backbone || typeof Backbone.sync !== 'function') {
    throw new TypeError('install(Backbone, options): pass the Backbone object whose sync to replace');
  }
  const ajaxSync = Backbone.sync.ajaxSync || Backbone.sync;
  function socketSync(method, model, opts) {
    const ajax = usesAjax(model) || fallback.active();
    return ajax ? Backbone.ajaxSync.apply(this, arguments) : sync(method, model, opts);
  }
  socketSync.ajaxSync = ajaxSync;
  Backbone.ajaxSync = ajaxSync;
  Backbone.sync = socketSync;
  if (options !== undefined) connect(options);
  return socketSync;
}

// **ready** resolves at once: importing this module already waited for the wasm. It is
// here so code written for the script-tag global works the same with the module.
export const ready = Promise.resolve();

export const Socket = wasm.Socket;

export default { install, connect, sync, socket, ready, usesAjax, live, unlive, Socket };
