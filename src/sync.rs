//! `sync(method, model, options)`: the `Backbone.sync` replacement (the `#[wasm_bindgen]`
//! boundary of a request).
//!
//! It keeps Backbone 1.6's contract: the endpoint is `options.url` or `_.result(model, 'url')`
//! (else the same `Error` Backbone throws, synchronously); `create`/`update`/`patch` send
//! `options.attrs || model.toJSON(options)`, `read` sends `options.data`; `options.success`
//! gets the raw response; `options.error` gets an xhr-like object, with `options.textStatus` and
//! `options.errorThrown` set as Backbone's sync sets them; `model.trigger('request', model,
//! xhr, options)` fires; the return value is a Promise that is also jqXHR-like.

use core::cell::{Cell, OnceCell};

use js_sys::{Function, Object, Promise, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{self, Local};
use crate::prelude::*;
use crate::session::{Failure, FailureKind, Request, RequestId};
use crate::shell::{self, Shared};
use crate::socket;

/// Backbone's error for a model without a URL, word for word.
const URL_ERROR: &str = "A \"url\" property or function must be specified";

/// The JS side of one request, kept until the session settles it.
pub(crate) struct SyncCall {
    options: JsValue,
    xhr: JsValue,
    resolve: Function,
    reject: Function,
}

/// Sends `method` for `model` over the current connection (connecting with the defaults when
/// `connect` was never called) and returns a Promise that is also jqXHR-like (`done`, `fail`,
/// `always`, `abort`). Throws synchronously for an unknown method or a missing URL.
#[wasm_bindgen]
pub fn sync(method: &str, model: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    if !matches!(method, "create" | "read" | "update" | "patch" | "delete") {
        return Err(js::error("sync: unknown method"));
    }
    let options: JsValue = if options.is_object() {
        options
    } else {
        Object::new().into()
    };
    let endpoint = endpoint(&model, &options)?;
    let ctx = [js::get(&options, "ctx"), js::get(&model, "ctx")]
        .into_iter()
        .find(|c| !js::is_nullish(c))
        .map(|c| js::to_string(&c));
    let payload = payload(method, &model, &options, &endpoint, ctx.as_deref())?;
    let timeout = js::get(&options, "timeout")
        .as_f64()
        .filter(|t| t.is_finite() && *t > 0.0);

    let shared = socket::current_or_connect()?;
    let (xhr, resolve, reject) = deferred();
    let request = Request {
        method: method.to_owned(),
        endpoint,
        ctx,
        payload,
        timeout_ms: timeout.map(|t| t as u64),
    };
    let (id, effects) = {
        let mut inner = shared.borrow_mut();
        inner.session.request(js::now(), request)
    };
    add_abort(&xhr, &shared, id);
    let call = SyncCall {
        options: options.clone(),
        xhr: xhr.clone(),
        resolve,
        reject,
    };
    shared.borrow_mut().add_call(id, call);
    js::set(&options, "xhr", &xhr);
    let trigger = js::get(&model, "trigger");
    let args = js::array(&[&"request".into(), &model, &xhr, &options]);
    js::call(&trigger, &model, &args);
    // Effects last: a request refused at once (queue full) fails after the 'request' event,
    // as an XHR error would.
    shell::apply(&shared, effects);
    Ok(xhr)
}

/// `options.url`, else `_.result(model, 'url')`, else Backbone's error.
fn endpoint(model: &JsValue, options: &JsValue) -> Result<String, JsValue> {
    let url = js::get(options, "url");
    if url.is_truthy() {
        return Ok(js::to_string(&url));
    }
    let mut url = js::get(model, "url");
    if let Some(f) = url.dyn_ref::<Function>() {
        url = js::apply(f, model, &[])?;
    }
    if url.is_truthy() {
        Ok(js::to_string(&url))
    } else {
        Err(js::error(URL_ERROR))
    }
}

/// The event argument `{signature: {endPoint, ctx?, requestId}, item? | data?}` as JSON text.
fn payload(
    method: &str,
    model: &JsValue,
    options: &JsValue,
    endpoint: &str,
    ctx: Option<&str>,
) -> Result<String, JsValue> {
    let signature: JsValue = Object::new().into();
    js::set(&signature, "endPoint", &endpoint.into());
    if let Some(ctx) = ctx {
        js::set(&signature, "ctx", &ctx.into());
    }
    js::set(&signature, "requestId", &request_id().into());
    let body: JsValue = Object::new().into();
    js::set(&body, "signature", &signature);
    match method {
        "create" | "update" | "patch" => {
            let mut item = js::get(options, "attrs");
            if !item.is_truthy() {
                let to_json = js::get(model, "toJSON");
                item = match to_json.dyn_ref::<Function>() {
                    Some(f) => js::apply(f, model, &[options])?,
                    None => model.clone(),
                };
            }
            js::set(&body, "item", &item);
        }
        "read" => {
            let data = js::get(options, "data");
            if !js::is_nullish(&data) {
                js::set(&body, "data", &data);
            }
        }
        _ => {}
    }
    // Throws (synchronously, as Backbone's own JSON.stringify would) on cyclic data.
    Ok(JSON::stringify(&body)?.into())
}

/// The page's request-id prefix, made on the first request.
static PREFIX: Local<OnceCell<String>> = Local::new(OnceCell::new());
/// How many request ids were made.
static COUNTER: Local<Cell<u64>> = Local::new(Cell::new(0));

/// A unique request id (see [`crate::request_id`]): the page's random prefix, made once from
/// `crypto.randomUUID()` where available (secure contexts) or `Math.random()`, and a counter.
fn request_id() -> String {
    let prefix = PREFIX.get().get_or_init(|| {
        let crypto = js::global("crypto");
        js::get(&crypto, "randomUUID")
            .dyn_ref::<Function>()
            .and_then(|f| js::apply(f, &crypto, &[]).ok())
            .and_then(|id| id.as_string())
            .unwrap_or_else(|| {
                let random = js_sys::Math::random;
                crate::request_id::random_prefix(random(), random())
            })
    });
    let counter = COUNTER.get();
    counter.set(counter.get() + 1);
    crate::request_id::next(prefix, counter.get())
}

/// The returned object: a real Promise, plus jqXHR's `done`, `fail`, `always` and the xhr
/// fields. Its rejection is marked handled, so a Backbone app that only uses `options.error`
/// does not log an unhandled rejection; promises derived with `then` still reject.
fn deferred() -> (JsValue, Function, Function) {
    let (promise, resolve, reject) = js::promise();
    let noop = js::noop();
    then(&promise, &JsValue::UNDEFINED, &noop);
    let xhr: JsValue = promise.clone().into();
    js::set(&xhr, "readyState", &1.into());
    js::set(&xhr, "status", &0.into());
    js::set(&xhr, "statusText", &"".into());
    let method = |name: &str, on_ok: bool, on_err: bool| {
        let p = promise.clone();
        let x = xhr.clone();
        let n = noop.clone();
        let f = js::callback(move |f, _| {
            if f.is_function() {
                let none: JsValue = n.clone().into();
                then(
                    &p,
                    if on_ok { &f } else { &none },
                    if on_err { &f } else { &none },
                );
            }
            x.clone()
        });
        js::set(&xhr, name, &f.into_js_value());
    };
    method("done", true, false);
    method("fail", false, true);
    method("always", true, true);
    (xhr, resolve, reject)
}

/// `promise.then(on_ok, on_err)`, through the promise's own `then`.
fn then(promise: &Promise, on_ok: &JsValue, on_err: &JsValue) {
    let then = js::get(promise, "then");
    js::call(&then, promise, &js::array(&[on_ok, on_err]));
}

/// `xhr.abort()`: fails the request with statusText "abort".
fn add_abort(xhr: &JsValue, shared: &Shared, id: RequestId) {
    let weak = alloc::rc::Rc::downgrade(shared);
    let abort = js::callback(move |_, _| {
        if let Some(shared) = weak.upgrade() {
            shell::drive(&shared, |s, now| s.abort(now, id));
        }
        JsValue::UNDEFINED
    });
    js::set(xhr, "abort", &abort.into_js_value());
}

impl SyncCall {
    /// Calls `options.success` / `options.error` as Backbone's sync would, updates the xhr
    /// fields, and settles the promise.
    pub(crate) fn settle(self, outcome: Result<String, Failure>) {
        let xhr = &self.xhr;
        js::set(xhr, "readyState", &4.into());
        let context = js::get(&self.options, "context");
        // The reply's text crosses into JS once, for both `JSON.parse` and `responseText`.
        let outcome = outcome.and_then(|text| {
            let text = JsValue::from(text);
            match js::parse_json(&text) {
                Ok(value) => Ok((text, value)),
                Err(_) => Err(Failure::of(FailureKind::Protocol)),
            }
        });
        match outcome {
            Ok((text, response)) => {
                js::set(xhr, "status", &200.into());
                js::set(xhr, "statusText", &"success".into());
                js::set(xhr, "responseText", &text);
                js::set(xhr, "responseJSON", &response);
                let success = js::get(&self.options, "success");
                let args = js::array(&[&response, &"success".into(), xhr]);
                js::call(&success, &context, &args);
                let _ = js::apply(&self.resolve, &JsValue::UNDEFINED, &[&response]);
            }
            Err(failure) => {
                let status_text = match (failure.kind, failure.message) {
                    (FailureKind::Server, Some(message)) => message,
                    (kind, _) => kind.status_text().to_owned(),
                };
                let text_status: JsValue = failure.kind.status_text().into();
                let body = failure.body.as_deref();
                let json = body
                    .and_then(|b| js::parse_json(&b.into()).ok())
                    .unwrap_or(JsValue::UNDEFINED);
                js::set(xhr, "status", &failure.status.into());
                js::set(xhr, "statusText", &status_text.as_str().into());
                js::set(xhr, "responseText", &body.unwrap_or("").into());
                js::set(xhr, "responseJSON", &json);
                js::set(&self.options, "textStatus", &text_status);
                js::set(&self.options, "errorThrown", &status_text.as_str().into());
                let error = js::get(&self.options, "error");
                let args = js::array(&[xhr, &text_status, &status_text.as_str().into()]);
                js::call(&error, &context, &args);
                let _ = js::apply(&self.reject, &JsValue::UNDEFINED, &[xhr]);
            }
        }
    }
}
