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

use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::{self, Local};
use crate::prelude::*;
use crate::session::{Failure, FailureKind, Request};
use crate::shell;
use crate::socket;

/// The JS side of one request, kept until the session settles it: the `settle` function of
/// its xhr (see `xhr.js`).
pub(crate) struct SyncCall {
    settle: Function,
}

// The per-request plumbing that only moves values between JS objects (src/xhr.js): one call
// each instead of a crossing per property and per callback.
#[wasm_bindgen(module = "/src/xhr.js")]
extern "C" {
    /// `[endPoint, ctx, payload, timeout]` read from the model and options; throws Backbone's
    /// missing-url error, or on cyclic data.
    #[wasm_bindgen(catch)]
    fn prepare(
        method: &str,
        model: &JsValue,
        options: &JsValue,
        request_id: &str,
    ) -> Result<Array, JsValue>;
    /// The returned jqXHR-like Promise and its `settle` function, as `[xhr, settle]`.
    fn deferred(options: &JsValue, abort: &JsValue, id: f64) -> Array;
    /// `options.xhr = xhr` and the model's `request` event.
    fn requested(model: &JsValue, xhr: &JsValue, options: &JsValue);
    /// Calls a request's `settle` (app exceptions are caught there).
    fn finish(
        settle: &Function,
        ok: bool,
        status: u16,
        status_text: &JsValue,
        text_status: &str,
        text: &JsValue,
        json: &JsValue,
    );
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
    let prepared = prepare(method, &model, &options, &request_id())?;
    let endpoint = prepared.get(0).as_string().unwrap_or_default();
    let ctx = prepared.get(1).as_string();
    let payload = prepared.get(2).as_string().unwrap_or_default();
    let timeout = prepared.get(3).as_f64();

    let shared = socket::current_or_connect()?;
    let request = Request {
        method: method.to_owned(),
        endpoint,
        ctx,
        payload,
        timeout_ms: timeout.map(|t| t as u64),
    };
    let (id, effects, abort) = {
        let mut inner = shared.borrow_mut();
        let (id, effects) = inner.session.request(js::now(), request);
        (id, effects, inner.abort_fn(&shared))
    };
    let pair = deferred(&options, &abort, id as f64);
    let xhr = pair.get(0);
    let settle = pair.get(1).unchecked_into();
    shared.borrow_mut().add_call(id, SyncCall { settle });
    requested(&model, &xhr, &options);
    // Effects last: a request refused at once (queue full) fails after the 'request' event,
    // as an XHR error would.
    shell::apply(&shared, effects);
    Ok(xhr)
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

impl SyncCall {
    /// Calls `options.success` / `options.error` as Backbone's sync would, updates the xhr
    /// fields, and settles the promise (through the xhr's `settle`, see `xhr.js`).
    pub(crate) fn settle(self, outcome: Result<String, Failure>) {
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
                let success: JsValue = "success".into();
                finish(
                    &self.settle,
                    true,
                    200,
                    &success,
                    "success",
                    &text,
                    &response,
                );
            }
            Err(failure) => {
                let text_status = failure.kind.status_text();
                let status_text: JsValue = match (failure.kind, failure.message) {
                    (FailureKind::Server, Some(message)) => message.as_str().into(),
                    _ => text_status.into(),
                };
                let body = failure.body.as_deref();
                let json = body
                    .and_then(|b| js::parse_json(&b.into()).ok())
                    .unwrap_or(JsValue::UNDEFINED);
                let text: JsValue = body.unwrap_or("").into();
                let status = failure.status;
                finish(
                    &self.settle,
                    false,
                    status,
                    &status_text,
                    text_status,
                    &text,
                    &json,
                );
            }
        }
    }
}
