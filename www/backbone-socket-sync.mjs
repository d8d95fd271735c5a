//     backbone-socket-sync.mjs
//     Backbone.sync over one socket.io WebSocket, in Rust compiled to WebAssembly.
//     MIT licence.
//
// The ES module entry: wasm-bindgen's module (`pkg/`), loaded, and re-exported. The wasm
// does all the work (`sync`, `connect`, `socket`, `install`, `live`); this file only adds
// what JavaScript's syntax needs:
//
//     import Backbone from 'backbone';
//     import { install, socket } from 'backbone-socket-sync';
//     install(Backbone, { url: 'ws://127.0.0.1:3000' });
//     socket.on('connect', () => console.log('connected as', socket.id));

import init, * as wasm from './pkg/backbone_socket_sync.js';

// The wasm is fetched and compiled while this module is imported (a top-level `await`), so
// a wasm that cannot load fails the import loudly instead of leaving saves pending.
await init();

export { connect, sync, install, usesAjax, live, unlive, Socket } from './pkg/backbone_socket_sync.js';

// `socket.emit(event, ...args[, ack])`: rest arguments over the wasm's `emitArgs`; and
// every method returns the socket itself, for chaining.
const proto = wasm.Socket.prototype;
proto.emit = function (event, ...args) {
  this.emitArgs(event, args, typeof args[args.length - 1] === 'function' ? args.pop() : undefined);
  return this;
};
for (const name of ['on', 'once', 'off', 'close']) {
  const f = proto[name];
  proto[name] = function (...args) { f.apply(this, args); return this; };
}

// The page's socket; `ready` resolves at once (the import already waited for the wasm).
export const socket = wasm.socket();
export const ready = Promise.resolve();

const { connect, sync, install, usesAjax, live, unlive, Socket } = wasm;
export default { connect, sync, install, usesAjax, live, unlive, Socket, socket, ready };
