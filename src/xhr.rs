//! The object `sync` returns, and how a request's outcome reaches Backbone.
//!
//! Backbone's own sync returns jQuery's jqXHR; this module makes its like: a real `Promise`
//! that also has `readyState`, `status`, `statusText`, `responseJSON` (and `responseText` on
//! errors), `done`, `fail`, `always` and `abort`. Its rejection is marked handled, so a page
//! that only uses `options.error` (or never looks at the returned object) sees no unhandled
//! rejection, as with XHR; promises derived with `then` still reject.
//!
//! The server's reply arrives unread (see [`Reply`]): it is `JSON.parse`d here, once, and an
//! error is told from a success with JavaScript's own truthiness (`if (err)`), as a
//! Node-style callback would.

use std::cell::Cell;

use js_sys::{Array, Function, JsString, Object, Promise};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::names::{self, Name};
use crate::session::{Failure, FailureKind, Reply, RequestId};

/// The JS side of one request, kept until the session settles it.
pub(crate) struct Call {
    options: JsValue,
    xhr: Promise,
    resolve: Function,
    reject: Function,
    /// The model and endpoint, kept only while a [`Watcher`] is set.
    target: Option<Box<(JsValue, String)>>,
}

/// What the [`Watcher`] of requests hears.
pub(crate) enum Watched<'a> {
    /// A request to `endpoint` was sent.
    Sent {
        /// The request's endpoint.
        endpoint: &'a str,
    },
    /// That request was answered, or failed.
    Settled {
        /// The model `sync` was called with.
        model: &'a JsValue,
        /// The request's endpoint.
        endpoint: &'a str,
        /// The options `sync` was called with (Backbone's copy).
        options: &'a JsValue,
        /// A success's result and the model's version the server sent beside it; `None`
        /// for a failure or a reply without a version.
        reply: Option<(&'a JsValue, i64)>,
    },
}

/// Hears every request `sync` makes while it is set, and decides what `options.success` gets
/// for a versioned reply: `None` for the reply's result (as without versions), or the value to
/// give instead (the live collections, which ignore a stale reply and wait for the page's own
/// writes before they take a gap for a lost change: see [`crate::live`]). Set by the layer
/// above, so that this one needs none of it.
pub(crate) type Watcher = fn(&Watched) -> Option<JsValue>;

thread_local! {
    static WATCHER: Cell<Option<Watcher>> = const { Cell::new(None) };
}

/// Sets the watcher of requests (the last one set wins; the crate sets one).
pub(crate) fn watch_requests(watcher: Watcher) {
    WATCHER.with(|w| w.set(Some(watcher)));
}

/// Whether a watcher is set: only then does a call keep its model and endpoint.
pub(crate) fn watching() -> bool {
    WATCHER.with(Cell::get).is_some()
}

/// The xhr fields set when a request fails (serialized onto the returned object).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct XhrState {
    ready_state: u8,
    status: u16,
    status_text: String,
    #[serde(rename = "responseJSON", with = "serde_wasm_bindgen::preserve")]
    response_json: JsValue,
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    response_text: JsValue,
}

/// A server's error value `{status, message}` (anything else: status 500, no message).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorReply {
    status: Option<f64>,
    message: Option<String>,
}

/// How a request ended, in the terms of Backbone's callbacks.
enum Outcome {
    /// The reply's result, and the model's version when the server sent one.
    Success(JsValue, Option<i64>),
    /// `options.error(xhr, textStatus, errorThrown)` with the xhr's status and body.
    Error {
        text_status: &'static str,
        status: u16,
        status_text: String,
        body: JsValue,
    },
}

/// A JS function of two arguments (unbound: `bind` gives it its first ones).
pub(crate) type Function2 = Function<fn(JsValue, JsValue) -> JsValue>;

thread_local! {
    /// `() => {}`, the handler that marks a rejection handled.
    static NOOP: Function = Closure::<dyn Fn()>::new(|| {}).into_js_value().unchecked_into();
    /// `done`, `fail` and `always`, made once for the page: each xhr gets them bound to itself
    /// (`Function.prototype.bind`), which costs far less than three closures per request (a
    /// wasm-bindgen closure is a boxed Rust closure, a JS function and a FinalizationRegistry
    /// entry).
    static METHODS: [Function2; 3] =
        [method(true, false), method(false, true), method(true, true)];
}

fn noop() -> Function {
    NOOP.with(Function::clone)
}

/// A jqXHR-like method, unbound: `(xhr, f)` registers `f` with `xhr.then(ok, err)` and returns
/// the xhr.
fn method(on_ok: bool, on_err: bool) -> Function2 {
    Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(move |xhr: JsValue, f: JsValue| {
        if let Some(f) = f.dyn_ref::<Function>() {
            let none: JsValue = noop().into();
            let f: &JsValue = f.as_ref();
            let thenable = xhr.unchecked_ref::<js::Thenable>();
            thenable.then(
                if on_ok { f } else { &none },
                if on_err { f } else { &none },
            );
        }
        xhr
    })
    .into_js_value()
    .unchecked_into()
}

impl Call {
    /// A new pending call for `options`, request `id`; `abort(xhr, id)` is bound to the xhr
    /// and `id` as the xhr's `abort()`.
    pub(crate) fn new(options: &JsValue, id: RequestId, abort: &Function2) -> Call {
        let mut parts = None;
        let xhr = Promise::new(&mut |resolve, reject| parts = Some((resolve, reject)));
        let (resolve, reject) = parts.unwrap_or_else(|| (noop(), noop()));
        xhr.unchecked_ref::<js::Thenable>()
            .then(&JsValue::UNDEFINED, &noop().into());
        let target: &JsValue = xhr.as_ref();
        names::set(target, Name::ReadyState, &1.into());
        names::set(target, Name::Status, &0.into());
        names::set(target, Name::StatusText, &Name::Empty.js());
        METHODS.with(|[done, fail, always]| {
            names::set(target, Name::Done, &done.bind1(&JsValue::NULL, target));
            names::set(target, Name::Fail, &fail.bind1(&JsValue::NULL, target));
            names::set(target, Name::Always, &always.bind1(&JsValue::NULL, target));
        });
        let id = JsValue::from(id as f64);
        names::set(
            target,
            Name::Abort,
            &abort.bind2(&JsValue::NULL, target, &id),
        );
        Call {
            options: options.clone(),
            xhr,
            resolve,
            reject,
            target: None,
        }
    }

    /// Keeps the request's model and endpoint for the [`Watcher`], and tells it the request
    /// was sent.
    pub(crate) fn watch(&mut self, model: JsValue, endpoint: String) {
        if let Some(watcher) = WATCHER.with(Cell::get) {
            watcher(&Watched::Sent {
                endpoint: &endpoint,
            });
            self.target = Some(Box::new((model, endpoint)));
        }
    }

    /// Tells the [`Watcher`] how a watched request ended; returns what `options.success`
    /// gets instead of the result, if anything.
    fn tell(&mut self, outcome: &Outcome) -> Option<JsValue> {
        let (model, endpoint) = *self.target.take()?;
        let watcher = WATCHER.with(Cell::get)?;
        let reply = match outcome {
            Outcome::Success(result, Some(version)) => Some((result, *version)),
            _ => None,
        };
        watcher(&Watched::Settled {
            model: &model,
            endpoint: &endpoint,
            options: &self.options,
            reply,
        })
    }

    /// The object `sync` returns.
    pub(crate) fn xhr(&self) -> JsValue {
        self.xhr.clone().into()
    }

    /// Settles the call: fills in the xhr, calls `options.success` / `options.error` as
    /// Backbone's sync would (`options.textStatus` and `options.errorThrown` set first), then
    /// resolves or rejects the promise. Called with no `RefCell` borrow held: the callbacks
    /// may call `sync` again.
    pub(crate) fn settle(mut self, outcome: Result<Reply<JsString>, Failure<JsString>>) {
        let outcome = match outcome {
            Ok(reply) => read_reply(reply),
            Err(failure) => failed(failure),
        };
        let instead = self.tell(&outcome);
        let context = names::get(&self.options, Name::Context);
        match outcome {
            Outcome::Success(result, _) => {
                let given = instead.unwrap_or_else(|| result.clone());
                // The fields one by one: on every request, this costs less than the object
                // serde would build to be assigned (and `"success"` is not decoded again).
                let xhr: &JsValue = self.xhr.as_ref();
                let success = Name::Success.js();
                names::set(xhr, Name::ReadyState, &4.into());
                names::set(xhr, Name::Status, &200.into());
                names::set(xhr, Name::StatusText, &success);
                names::set(xhr, Name::ResponseJson, &result);
                let callback = names::get(&self.options, Name::Success);
                js::call3(&callback, &context, &given, &success, xhr);
                let _ = self.resolve.call1(&JsValue::UNDEFINED, &result);
            }
            Outcome::Error {
                text_status,
                status,
                status_text,
                body,
            } => {
                let text = if body.is_undefined() {
                    JsValue::from_str("")
                } else {
                    js_sys::JSON::stringify(&body).map_or(JsValue::from_str(""), Into::into)
                };
                self.assign(XhrState {
                    ready_state: 4,
                    status,
                    status_text: status_text.clone(),
                    response_json: body,
                    response_text: text,
                });
                let text_status = JsValue::from_str(text_status);
                let error_thrown = JsValue::from_str(&status_text);
                names::set(&self.options, Name::TextStatus, &text_status);
                names::set(&self.options, Name::ErrorThrown, &error_thrown);
                let error = names::get(&self.options, Name::Error);
                js::call3(&error, &context, &self.xhr, &text_status, &error_thrown);
                let _ = self.reject.call1(&JsValue::UNDEFINED, &self.xhr);
            }
        }
    }

    fn assign(&self, state: XhrState) {
        if let Ok(fields) = serde_wasm_bindgen::to_value(&state) {
            Object::<JsValue>::assign(self.xhr.unchecked_ref(), fields.unchecked_ref());
        }
    }
}

/// A failure for a request whose reply cannot be read.
fn unreadable() -> Outcome {
    failed(Failure::of(FailureKind::Protocol))
}

/// Parses the server's reply once and tells success from error.
fn read_reply(reply: Reply<JsString>) -> Outcome {
    match reply {
        Reply::Ack(raw) => {
            let Some(array) = parse_array(&raw) else {
                return unreadable();
            };
            let err = array.get(0);
            if err.is_truthy() {
                return server_error(err);
            }
            Outcome::Success(null_if_undefined(array.get(1)), version_of(&array))
        }
        Reply::Event(raw) => {
            let Some(array) = parse_array(&raw) else {
                return unreadable();
            };
            let reply = null_if_undefined(array.get(1));
            // Event mode: a reply whose only key is `error`, holding an object, is an error.
            if reply.is_object() && Object::keys::<JsValue>(reply.unchecked_ref()).length() == 1 {
                let error = js::get(&reply, "error");
                if error.is_object() {
                    return server_error(error);
                }
            }
            Outcome::Success(reply, version_of(&array))
        }
    }
}

/// The version a reply carries after its result (`{version}`, the ack's third argument or
/// the reply event's second), if any.
fn version_of(array: &Array) -> Option<i64> {
    let meta = array.get(2);
    if !meta.is_object() {
        return None;
    }
    js::whole_number(&js::get(&meta, "version"))
}

/// The reply's arguments: an array (the codec checked that the body starts with `[`).
fn parse_array(raw: &JsString) -> Option<Array> {
    js::parse(raw).ok()?.dyn_into::<Array>().ok()
}

fn null_if_undefined(value: JsValue) -> JsValue {
    if value.is_undefined() {
        JsValue::NULL
    } else {
        value
    }
}

/// A server's error value as the xhr's status (500 unless it says a valid one) and message.
fn server_error(err: JsValue) -> Outcome {
    let reply = if let Some(message) = err.as_string() {
        ErrorReply {
            status: None,
            message: Some(message),
        }
    } else {
        serde_wasm_bindgen::from_value::<ErrorReply>(err.clone()).unwrap_or_default()
    };
    let status = reply
        .status
        .filter(|s| s.fract() == 0.0 && (100.0..=599.0).contains(s))
        .map_or(500, |s| s as u16);
    Outcome::Error {
        text_status: "error",
        status,
        status_text: reply.message.unwrap_or_else(|| "error".into()),
        body: err,
    }
}

/// A failure the session decided (timeout, abort, disconnect, refusal, …).
fn failed(failure: Failure<JsString>) -> Outcome {
    let text_status = failure.kind.status_text();
    let status_text = match (failure.kind, failure.message) {
        (FailureKind::Server, Some(message)) => message,
        _ => text_status.to_owned(),
    };
    let body = failure
        .body
        .and_then(|b| js::parse(&b).ok())
        .unwrap_or(JsValue::UNDEFINED);
    Outcome::Error {
        text_status,
        status: failure.status,
        status_text,
        body,
    }
}
