// The JavaScript half of one `sync` request, imported by the wasm (src/sync.rs).
//
// These run for every request and only move values between JS objects: done in wasm, each
// property set and each callback made would cross the wasm/JS boundary (and decode its key
// from wasm memory) on its own. scripts/build-client.sh folds this file into the glue.

const noop = () => {};

// Backbone's error for a model without a URL, word for word.
const URL_ERROR = 'A "url" property or function must be specified';

// What `sync` reads from the model and options, as `[endPoint, ctx, payload, timeout]`:
// the endpoint is `options.url`, else `_.result(model, 'url')`, else Backbone's error is
// thrown; `ctx` is `options.ctx` or `model.ctx` as a string, when set; `payload` (below) is
// the JSON text of the request's argument; `timeout` is `options.timeout` when a positive
// finite number. `options` is an object (the wasm makes one when it was not).
export function prepare(method, model, options, requestId) {
  const m = model !== null && (typeof model === 'object' || typeof model === 'function') ? model : {};
  let url = options.url;
  if (!url) {
    url = m.url;
    if (typeof url === 'function') url = url.call(model);
    if (!url) throw new Error(URL_ERROR);
  }
  const endPoint = String(url);
  const c = options.ctx != null ? options.ctx : m.ctx;
  const ctx = c != null ? String(c) : undefined;
  const body = payload(method, model, options, endPoint, ctx, requestId);
  const t = options.timeout;
  return [endPoint, ctx, body, typeof t === 'number' && t > 0 && t < Infinity ? t : undefined];
}

// The request's argument as JSON text: `{signature: {endPoint, ctx?, requestId}, item? |
// data?}`, with `item` = `options.attrs || model.toJSON(options)` for create, update and
// patch, and `data` = `options.data` for read when given. Throws, as Backbone's own
// JSON.stringify would, on cyclic data.
function payload(method, model, options, endPoint, ctx, requestId) {
  const signature = { endPoint };
  if (ctx !== undefined) signature.ctx = ctx;
  signature.requestId = requestId;
  const body = { signature };
  if (method === 'read') {
    if (options.data != null) body.data = options.data;
  } else if (method !== 'delete') {
    body.item =
      options.attrs || (model != null && typeof model.toJSON === 'function' ? model.toJSON(options) : model);
  }
  return JSON.stringify(body);
}

// Calls `f` (if a function) with `args`; an exception from app code is re-raised
// asynchronously (an unhandled rejection the console shows), never into the wasm's
// bookkeeping.
function call(f, self, args) {
  if (typeof f === 'function') {
    try {
      f.apply(self, args);
    } catch (e) {
      Promise.reject(e);
    }
  }
}

// The object `sync` returns: a real Promise that is also jqXHR-like (`readyState`, `status`,
// `statusText`, `done`, `fail`, `always`, `abort`), set as `options.xhr`. Its rejection is
// marked handled, so an app that only uses `options.error` logs nothing; promises derived
// with `then` still reject. `abort(id)` aborts request `id` of its connection. Returns
// `[xhr, settle]`; `settle(ok, status, statusText, textStatus, responseText, responseJSON)`
// fills in the xhr, calls `options.success(json, 'success', xhr)` or, as Backbone's sync
// would, sets `options.textStatus`/`options.errorThrown` and calls
// `options.error(xhr, textStatus, statusText)`, then settles the promise.
export function deferred(options, abort, id) {
  let resolve, reject;
  const xhr = new Promise((ok, err) => {
    resolve = ok;
    reject = err;
  });
  xhr.then(undefined, noop);
  const on = (ok, err) => (f) => {
    if (typeof f === 'function') xhr.then(ok ? f : noop, err ? f : noop);
    return xhr;
  };
  xhr.readyState = 1;
  xhr.status = 0;
  xhr.statusText = '';
  xhr.done = on(true, false);
  xhr.fail = on(false, true);
  xhr.always = on(true, true);
  xhr.abort = () => abort(id);
  function settle(ok, status, statusText, textStatus, text, json) {
    xhr.readyState = 4;
    xhr.status = status;
    xhr.statusText = statusText;
    xhr.responseText = text;
    xhr.responseJSON = json;
    if (ok) {
      call(options.success, options.context, [json, 'success', xhr]);
      resolve(json);
    } else {
      options.textStatus = textStatus;
      options.errorThrown = statusText;
      call(options.error, options.context, [xhr, textStatus, statusText]);
      reject(xhr);
    }
  }
  return [xhr, settle];
}

// `options.xhr = xhr`, then `model.trigger('request', model, xhr, options)`.
export function requested(model, xhr, options) {
  options.xhr = xhr;
  if (model != null) call(model.trigger, model, ['request', model, xhr, options]);
}

// Calls a request's `settle` (one import for the wasm, whatever the closure).
export function finish(settle, ok, status, statusText, textStatus, text, json) {
  settle(ok, status, statusText, textStatus, text, json);
}
