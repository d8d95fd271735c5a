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
// `Backbone.sync` is replaced at once; the original stays as `Backbone.ajaxSync`, and any
// model or collection with `ajaxSync: true` keeps using it. Until the ES module next to
// this file (and the wasm it loads) is ready, syncs, `connect` and socket calls are
// queued here; then they go to the module, which does all the real work.
//
// `pkg/backbone-socket-sync.min.js` (written by scripts/build-client.sh) is this file
// minified, for production pages; it loads the matching `.min.mjs`.

(function () {
  'use strict';

  var Backbone = window.Backbone;
  if (!Backbone || typeof Backbone.sync !== 'function') {
    throw new Error('backbone-socket-sync.js: load Backbone before this script');
  }

  // The module is found next to this script, wherever the page itself lives.
  var here = document.currentScript ? document.currentScript.src : location.href;
  var entry = new URL('backbone-socket-sync.mjs', here).href;

  // The loaded ES module once installed, whether it was imported at all, and the reason
  // it could not be loaded or started.
  var mod = null;
  var imported = false;
  var loadError = null;

  // What waits for the module: sync calls, socket calls, and the last `connect` options.
  var calls = [];
  var socketCalls = [];
  var connectOptions;

  // Queued sync calls
  // -----------------

  // Fails a queued call as Backbone's own sync would fail it: `options.textStatus` and
  // `options.errorThrown` set, `options.error` called with an xhr-like object, and the
  // returned promise rejected with that object.
  function fail(call, statusText, errorThrown) {
    var options = call.options || {};
    var xhr = { status: 0, statusText: statusText, responseJSON: undefined, responseText: '' };
    options.textStatus = statusText;
    options.errorThrown = errorThrown;
    if (options.error) options.error.call(options.context, xhr, statusText, errorThrown);
    call.reject(xhr);
  }

  // Queues one sync call and returns what stands in for the real sync's return value: a
  // Promise that is also jqXHR-like, settled like the real one once the call goes out.
  // Aborting it before then drops the call, which never reaches the server.
  function enqueue(method, model, options) {
    var call = { method: method, model: model, options: options, real: null };
    var xhr = new Promise(function (resolve, reject) {
      call.resolve = resolve;
      call.reject = reject;
    });
    xhr.done = function (fn) { xhr.then(fn, function () {}); return xhr; };
    xhr.fail = function (fn) { xhr.then(null, fn); return xhr; };
    xhr.always = function (fn) { xhr.then(fn, fn); return xhr; };
    xhr.abort = function () {
      if (call.real) return call.real.abort();
      var i = calls.indexOf(call);
      if (i >= 0) {
        calls.splice(i, 1);
        fail(call, 'abort', 'abort');
      }
    };
    calls.push(call);
    if (loadError) Promise.resolve().then(flush); // fail later, as an XHR would
    return xhr;
  }

  // Sends every queued call through the installed `Backbone.sync`, in order, or fails
  // them all when the module could not be loaded.
  function flush() {
    var queued = calls.splice(0);
    for (var i = 0; i < queued.length; i++) {
      var call = queued[i];
      if (loadError) {
        fail(call, 'error', loadError);
        continue;
      }
      try {
        call.real = Backbone.sync(call.method, call.model, call.options);
        call.resolve(call.real);
      } catch (e) {
        fail(call, 'error', e);
      }
    }
  }

  // Backbone.sync
  // -------------

  // The `Backbone.sync` installed at once: XHR for `ajaxSync` models, the module's sync
  // once it is loaded, else the queue. A missing url throws now, as Backbone does, rather
  // than when the call leaves the queue.
  function queueingSync(method, model, options) {
    if (model && (model.ajaxSync || (model.collection && model.collection.ajaxSync))) {
      return Backbone.ajaxSync.apply(this, arguments);
    }
    var url = (options && options.url) || (typeof model.url === 'function' ? model.url() : model.url);
    if (!url) throw new Error('A "url" property or function must be specified');
    return enqueue(method, model, options);
  }
  queueingSync.ajaxSync = Backbone.ajaxSync = Backbone.sync;
  Backbone.sync = queueingSync;

  // The socket
  // ----------

  // A socket method that goes to the module's socket, or waits in `socketCalls`. With
  // `fn`, a function of the module itself (`live`), returning its first argument.
  function later(name, fn) {
    return function () {
      if (mod) (fn ? mod[fn] : mod.socket[name]).apply(mod.socket, arguments);
      else socketCalls.push([name, arguments, fn]);
      return fn ? arguments[0] : socket;
    };
  }

  // The connection, usable at once; see `socket` in backbone-socket-sync.mjs.
  var socket = {
    emit: later('emit'),
    on: later('on'),
    once: later('once'),
    off: later('off'),
    close: later('close'),
    get connected() { return mod ? mod.socket.connected : false; },
    get id() { return mod ? mod.socket.id : undefined; }
  };

  // Replays one queued socket call. One that throws (a reserved event name, a listener
  // that is not a function) is reported as an uncaught error, as it would have been at
  // once, without stopping the others.
  function replay(target, call) {
    try {
      if (call[2]) mod[call[2]].apply(target, call[1]);
      else target[call[0]].apply(target, call[1]);
    } catch (e) {
      setTimeout(function () { throw e; });
    }
  }

  // Calls the `error` listeners added so far with the reason the module did not load.
  function reportLoadError() {
    for (var i = 0; i < socketCalls.length; i++) {
      var c = socketCalls[i];
      if ((c[0] === 'on' || c[0] === 'once') && c[1][0] === 'error') c[1][1].call(socket, loadError);
    }
  }

  // Loading
  // -------

  // Imports the module (which loads the wasm), installs it, connects with the options
  // given so far, replays the socket calls, then sends the queued syncs in order. If any
  // of that fails, `ready` rejects and the queued syncs fail rather than wait forever.
  var ready = import(entry)
    .then(function (m) {
      imported = true;
      m.install(Backbone, connectOptions);
      mod = m;
      var queued = socketCalls.splice(0);
      for (var i = 0; i < queued.length; i++) replay(m.socket, queued[i]);
      flush();
      return api;
    })
    .catch(function (e) {
      var what = imported ? 'failed to start' : 'could not load ' + entry;
      loadError = new Error('backbone-socket-sync: ' + what + ': ' + (e && e.message));
      reportLoadError();
      flush();
      throw loadError;
    });

  // The global
  // ----------

  var api = window.BackboneSocketSync = {
    // **connect** sets the connection's options (see the module's `connect`). Before the
    // wasm is ready the last options given win; after, the connection is replaced.
    connect: function (options) {
      if (mod) mod.connect(options);
      else connectOptions = options === undefined ? {} : options;
      return socket;
    },
    // **live** / **unlive** (see live.mjs): other clients' writes applied to a collection
    // as they happen. Before the wasm is ready they wait for it.
    live: later(null, 'live'),
    unlive: later(null, 'unlive'),
    socket: socket,
    // **ready** resolves (with this object) once the wasm is loaded and installed, and
    // rejects when it could not be loaded; queued syncs then fail with statusText "error".
    ready: ready
  };
})();
