//     backbone-socket-sync.js
//     Backbone.sync over one socket.io WebSocket, in Rust compiled to WebAssembly.
//     MIT licence.
//
// The script-tag build. Load it after Backbone, from the folder that also holds
// `backbone-socket-sync.mjs` and `pkg/`:
//
//     <script src="backbone.js"></script>
//     <script src="backbone-socket-sync.js"></script>
//     <script>
//       BackboneSocketSync.connect({url: 'ws://127.0.0.1:3000'});
//       todos.fetch();   // fine at once: calls wait for the wasm, then go out in order
//     </script>
//
// `Backbone.sync` is replaced at once; the original stays as `Backbone.ajaxSync`. Until the
// ES module next to this file (and the wasm it loads) is ready, calls wait here; then the
// wasm's own `install` takes over and does all the real work.

(function () {
  'use strict';

  var Backbone = window.Backbone;
  if (!Backbone || typeof Backbone.sync !== 'function') {
    throw new Error('backbone-socket-sync.js: load Backbone before this script');
  }
  var here = document.currentScript ? document.currentScript.src : location.href;
  var entry = new URL('backbone-socket-sync.mjs', here).href;
  var noop = function () {};

  // What waits for the module: `[name, args, resolve, reject]` of every call, in order, and
  // the reason the module could not be loaded, once known.
  var waiting = [];
  var loadError = null;
  var mod = null;
  var connectOptions;

  // **later** stands in for the module's function `name` until it has loaded: the call is
  // kept, and what it returns is a Promise of the real call's result. That Promise's
  // rejection is marked handled (as the wasm's own xhr is): a failed call whose caller
  // never chained it, or only used `options.error`, raises no unhandled rejection.
  function later(name) {
    return function () {
      if (mod) return mod[name].apply(null, arguments);
      var call = [name, arguments];
      var promise = new Promise(function (resolve, reject) { call.push(resolve, reject); });
      promise.then(null, noop);
      waiting.push(call);
      if (loadError) Promise.resolve().then(flush);
      return promise;
    };
  }

  // Runs the waiting calls through the module in order, or fails the syncs among them as
  // Backbone's own sync would fail (options.error with an xhr-like object) when it did not load.
  function flush() {
    var calls = waiting.splice(0);
    for (var i = 0; i < calls.length; i++) {
      var c = calls[i], name = c[0], args = c[1];
      if (name === 'socketCall') {
        if (!loadError) replay(args);
        else if ((args[0] === 'on' || args[0] === 'once') && args[1][0] === 'error') args[1][1].call(socket, loadError);
      } else if (!loadError) {
        try {
          var real = mod[name].apply(null, args);
          if (real && typeof real.then === 'function') real.then(c[2], c[3]);
          else c[2](real);
        } catch (e) {
          c[3](e);
        }
      } else if (name === 'sync') {
        var options = args[2] || {};
        var xhr = { readyState: 4, status: 0, statusText: 'error', responseText: '' };
        options.textStatus = 'error';
        options.errorThrown = loadError;
        if (options.error) options.error.call(options.context, xhr, 'error', loadError);
        c[3](xhr);
      } else {
        c[3](loadError);
      }
    }
  }

  // Replays a socket call made before the module loaded; one that throws (a reserved event
  // name, a listener that is not a function) is reported as it would have been at once.
  function replay(call) {
    try {
      forward(call[0], call[1], call[2]);
    } catch (e) {
      setTimeout(function () { throw e; });
    }
  }

  // Backbone.sync
  // -------------

  // Until the wasm is here, `ajaxSync` models keep XHR and every other call waits; a missing
  // url throws now, as Backbone does, rather than when the call leaves the queue.
  var waitingSync = later('sync');
  function queueingSync(method, model, options) {
    if (model && (model.ajaxSync || (model.collection && model.collection.ajaxSync))) {
      return Backbone.ajaxSync.apply(this, arguments);
    }
    var url = (options && options.url) || (typeof model.url === 'function' ? model.url() : model.url);
    if (!url) throw new Error('A "url" property or function must be specified');
    var xhr = waitingSync(method, model, options);
    xhr.done = function (f) { xhr.then(f, noop); return xhr; };
    xhr.fail = function (f) { xhr.then(noop, f); return xhr; };
    xhr.always = function (f) { xhr.then(f, f); return xhr; };
    xhr.abort = function () { var i = indexOfSync(model, options); if (i >= 0) abortWaiting(i); };
    return xhr;
  }
  function indexOfSync(model, options) {
    for (var i = 0; i < waiting.length; i++) if (waiting[i][1][1] === model && waiting[i][1][2] === options) return i;
    return -1;
  }
  function abortWaiting(i) {
    var c = waiting.splice(i, 1)[0], options = c[1][2] || {}, xhr = { readyState: 0, status: 0, statusText: 'abort' };
    options.textStatus = options.errorThrown = 'abort';
    if (options.error) options.error.call(options.context, xhr, 'abort', 'abort');
    c[3](xhr);
  }
  queueingSync.ajaxSync = Backbone.ajaxSync = Backbone.sync;
  Backbone.sync = queueingSync;

  // Loading
  // -------

  // Imports the module (which loads the wasm), lets the wasm install its own sync (it keeps
  // the original as `ajaxSync`) and connect with the last options given, then runs the
  // waiting calls in order.
  var ready = import(entry).then(function (m) {
    mod = m;
    m.install(Backbone, connectOptions);
    flush();
    return api;
  }, function (e) {
    loadError = new Error('backbone-socket-sync: could not load ' + entry + ': ' + (e && e.message));
    flush();
    throw loadError;
  });
  ready.then(null, noop);

  // The global
  // ----------

  // `socket` forwards to the module's socket once it is here; its methods wait until then.
  // `timeout(ms)` gives a socket whose emits' acks time out (socket.io-client's `timeout`).
  function socketOf(ms) {
    var s = {};
    ['emit', 'on', 'once', 'off', 'close'].forEach(function (name) {
      s[name] = function () {
        if (mod) forward(name, arguments, ms);
        else waiting.push(['socketCall', [name, arguments, ms], noop, noop]);
        return s;
      };
    });
    s.timeout = function (t) { return socketOf(t); };
    return s;
  }
  var socket = socketOf();
  function forward(name, args, ms) {
    var target = ms === undefined ? mod.socket : mod.socket.timeout(ms);
    target[name].apply(target, args);
  }
  Object.defineProperty(socket, 'connected', { get: function () { return !!mod && mod.socket.connected; } });
  Object.defineProperty(socket, 'id', { get: function () { return mod ? mod.socket.id : undefined; } });

  var api = window.BackboneSocketSync = {
    // **connect** before the wasm is ready: the last options given win.
    connect: function (options) {
      if (mod) mod.connect(options);
      else connectOptions = options === undefined ? {} : options;
      return socket;
    },
    live: function (c) { return mod ? mod.live(c) : (later('live')(c).then(null, noop), c); },
    unlive: function (c) { return mod ? mod.unlive(c) : (later('unlive')(c).then(null, noop), c); },
    socket: socket,
    ready: ready
  };
})();
