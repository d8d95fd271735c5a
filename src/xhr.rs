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

use js_sys::{Array, Function, JsString, Object, Promise};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::session::{Failure, FailureKind, Reply};

/// The JS side of one request, kept until the session settles it.
pub(crate) struct Call {
    options: JsValue,
    xhr: Promise,
    resolve: Function,
    reject: Function,
}

/// The xhr fields set when a request settles (serialized onto the returned object).
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
    /// The reply's result.
    Success(JsValue),
    /// `options.error(xhr, textStatus, errorThrown)` with the xhr's status and body.
    Error {
        text_status: &'static str,
        status: u16,
        status_text: String,
        body: JsValue,
    },
}

thread_local! {
    /// `() => {}`, the handler that marks a rejection handled.
    static NOOP: Function = Closure::<dyn Fn()>::new(|| {}).into_js_value().unchecked_into();
}

fn noop() -> Function {
    NOOP.with(Function::clone)
}

/// A jqXHR-like method: `f` registered with `then(ok, err)`, returning the xhr itself.
fn method(xhr: &Promise, on_ok: bool, on_err: bool) -> JsValue {
    let xhr = xhr.clone();
    Closure::<dyn Fn(JsValue) -> JsValue>::new(move |f: JsValue| {
        if let Some(f) = f.dyn_ref::<Function>() {
            let none: JsValue = noop().into();
            let f: &JsValue = f.as_ref();
            let thenable = xhr.unchecked_ref::<js::Thenable>();
            thenable.then(
                if on_ok { f } else { &none },
                if on_err { f } else { &none },
            );
        }
        xhr.clone().into()
    })
    .into_js_value()
}

impl Call {
    /// A new pending call for `options`; `abort` aborts it (the xhr's `abort()`).
    pub(crate) fn new(options: &JsValue, abort: impl Fn() + 'static) -> Call {
        let mut parts = None;
        let xhr = Promise::new(&mut |resolve, reject| parts = Some((resolve, reject)));
        let (resolve, reject) = parts.unwrap_or_else(|| (noop(), noop()));
        xhr.unchecked_ref::<js::Thenable>()
            .then(&JsValue::UNDEFINED, &noop().into());
        let target: &JsValue = xhr.as_ref();
        js::set(target, "readyState", &1.into());
        js::set(target, "status", &0.into());
        js::set(target, "statusText", &"".into());
        js::set(target, "done", &method(&xhr, true, false));
        js::set(target, "fail", &method(&xhr, false, true));
        js::set(target, "always", &method(&xhr, true, true));
        let abort = Closure::<dyn Fn()>::new(abort).into_js_value();
        js::set(target, "abort", &abort);
        Call {
            options: options.clone(),
            xhr,
            resolve,
            reject,
        }
    }

    /// The object `sync` returns.
    pub(crate) fn xhr(&self) -> JsValue {
        self.xhr.clone().into()
    }

    /// Settles the call: fills in the xhr, calls `options.success` / `options.error` as
    /// Backbone's sync would (`options.textStatus` and `options.errorThrown` set first), then
    /// resolves or rejects the promise. Called with no `RefCell` borrow held: the callbacks
    /// may call `sync` again.
    pub(crate) fn settle(self, outcome: Result<Reply<JsString>, Failure<JsString>>) {
        let outcome = match outcome {
            Ok(reply) => read_reply(reply),
            Err(failure) => failed(failure),
        };
        let context = js::get(&self.options, "context");
        match outcome {
            Outcome::Success(result) => {
                self.assign(XhrState {
                    ready_state: 4,
                    status: 200,
                    status_text: "success".into(),
                    response_json: result.clone(),
                    response_text: JsValue::UNDEFINED,
                });
                let success = js::get(&self.options, "success");
                let args = Array::of3(&result, &"success".into(), &self.xhr);
                js::call(&success, &context, &args);
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
                js::set(&self.options, "textStatus", &text_status.into());
                js::set(&self.options, "errorThrown", &status_text.as_str().into());
                let error = js::get(&self.options, "error");
                let args = Array::of3(&self.xhr, &text_status.into(), &status_text.into());
                js::call(&error, &context, &args);
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
            let Ok(array) = js::parse(&raw) else {
                return unreadable();
            };
            let err = js::get(&array, "0");
            if err.is_truthy() {
                return server_error(err);
            }
            Outcome::Success(null_if_undefined(js::get(&array, "1")))
        }
        Reply::Event(raw) => {
            let Ok(array) = js::parse(&raw) else {
                return unreadable();
            };
            let reply = null_if_undefined(js::get(&array, "1"));
            // Event mode: a reply whose only key is `error`, holding an object, is an error.
            if reply.is_object() && Object::keys::<JsValue>(reply.unchecked_ref()).length() == 1 {
                let error = js::get(&reply, "error");
                if error.is_object() {
                    return server_error(error);
                }
            }
            Outcome::Success(reply)
        }
    }
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
