//     fallback.mjs
//     The XHR fallback of backbone-socket-sync.
//     MIT licence.
//
// With `transport: 'auto'` in the connect options, a page whose WebSocket cannot be opened
// (the port refused, a proxy that blocks the upgrade) keeps saving: after `fallbackAfter`
// failed attempts in a row (3 by default), the installed `Backbone.sync` hands calls to
// `Backbone.ajaxSync`, the original XHR sync, which talks to the server's REST twin. The
// socket keeps retrying with its usual backoff; once it connects, calls go over it again.
//
//     BackboneSocketSync.connect({ url: 'ws://…', transport: 'auto', fallbackAfter: 3 });
//
// `transport: 'socket'` (the default) never falls back: calls wait in the socket's queue
// until it connects or their timeout ends. Calls already queued when the fallback starts
// stay in that queue; only later calls take XHR.
//
// This file only needs the `socket` of the entry module, handed to `createFallback`.

// **createFallback** watches `socket`'s `connect_error` and `connect` events and returns
// `{configure(options), active()}`: `configure` takes the connect options, `active` tells
// whether calls should go through XHR right now.
export function createFallback(socket) {
  let auto = false;
  let after = 3;
  let failures = 0;

  socket.on('connect_error', () => {
    failures += 1;
  });
  socket.on('connect', () => {
    failures = 0;
  });

  return {
    // Reads `transport` ('socket' or 'auto') and `fallbackAfter` (a positive integer) from
    // the options of a new connection, which starts with no failures counted.
    configure(options) {
      const transport = options && options.transport !== undefined ? options.transport : 'socket';
      if (transport !== 'socket' && transport !== 'auto') {
        throw new TypeError("connect: transport must be 'socket' or 'auto'");
      }
      const n = options && options.fallbackAfter !== undefined ? Number(options.fallbackAfter) : 3;
      if (!Number.isInteger(n) || n < 1) throw new TypeError('connect: fallbackAfter must be a positive integer');
      auto = transport === 'auto';
      after = n;
      failures = 0;
    },
    // True while `transport` is 'auto' and the last `fallbackAfter` attempts all failed.
    active() {
      return auto && failures >= after && !socket.connected;
    },
  };
}
