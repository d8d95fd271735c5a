//! Small helpers for talking to JavaScript values, and the browser's payload handle: a
//! JavaScript string (see [`crate::payload`]).

use js_sys::{Function, JsString, Reflect};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::payload::Payload;

/// In the browser, frames and bodies are JavaScript strings: a reply is read where it
/// arrived, its header copied out (a few dozen characters), its body `JSON.parse`d once by
/// the JS engine; a request's JSON is sent inside a frame made by concatenation.
impl Payload for JsString {
    fn from_text(text: &str) -> Self {
        JsString::from(text)
    }

    fn wrap(head: &str, body: &Self, tail: &str) -> Self {
        let out = JsString::from(head).concat(body);
        if tail.is_empty() {
            out
        } else {
            out.concat(&JsValue::from_str(tail))
        }
    }

    fn size(&self) -> usize {
        self.length() as usize
    }

    fn head(&self, max: usize) -> (String, bool) {
        let len = self.length();
        if len as usize <= max {
            (String::from(self), true)
        } else {
            (String::from(self.slice(0, max as u32)), false)
        }
    }

    fn rest(&self, head: &str) -> Self {
        let from = head.encode_utf16().count() as u32;
        self.slice(from, self.length())
    }

    fn decode<T: DeserializeOwned>(&self) -> Option<T> {
        let value = parse(self).ok()?;
        serde_wasm_bindgen::from_value(value).ok()
    }
}

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse` of a JS string already on the JS side (js-sys's takes a `&str`, which
    /// would be copied out of wasm memory and back).
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub(crate) fn parse(text: &JsString) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// Anything with `then(onFulfilled, onRejected)` (a Promise, seen untyped).
    pub(crate) type Thenable;
    /// `p.then(ok, err)` with plain functions (`undefined` for none).
    #[wasm_bindgen(method, js_name = then)]
    pub(crate) fn then(this: &Thenable, ok: &JsValue, err: &JsValue) -> JsValue;

    /// `queueMicrotask(f)`: `f` runs when the current run of JavaScript ends, before any
    /// other task.
    #[wasm_bindgen(js_name = queueMicrotask)]
    pub(crate) fn queue_microtask(f: &Function);

    /// `setTimeout(f)`: `f` runs in a task of its own.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &JsValue);
}

/// Milliseconds on a monotonic clock (`performance.now()`), the session's time: unlike
/// `Date.now()` it does not jump when the system clock is adjusted, so timeouts stay honest.
pub(crate) fn now() -> u64 {
    performance_now() as u64
}

/// `target[key]`, or `undefined` when `target` is not an object or the lookup throws.
pub(crate) fn get(target: &JsValue, key: &str) -> JsValue {
    get_key(target, &JsValue::from_str(key))
}

/// [`get`] with a key already on the JS side (see [`crate::names`]). `Reflect.get` throws on
/// what is not an object, so that needs no check of its own (one call into JS, not three).
pub(crate) fn get_key(target: &JsValue, key: &JsValue) -> JsValue {
    Reflect::get(target, key).unwrap_or(JsValue::UNDEFINED)
}

/// `target[key] = value`, ignoring frozen objects.
pub(crate) fn set(target: &JsValue, key: &str, value: &JsValue) {
    set_key(target, &JsValue::from_str(key), value);
}

/// [`set`] with a key already on the JS side (see [`crate::names`]).
pub(crate) fn set_key(target: &JsValue, key: &JsValue, value: &JsValue) {
    let _ = Reflect::set(target, key, value);
}

/// `value` when it is a number holding a whole, non-negative, safely representable integer
/// (a document version).
pub(crate) fn whole_number(value: &JsValue) -> Option<i64> {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    value
        .as_f64()
        .filter(|n| n.fract() == 0.0 && (0.0..=SAFE).contains(n))
        .map(|n| n as i64)
}

/// `String(value)` as Rust text (a JS string as it is, anything else joined as `[value].join('')`
/// writes it: numbers as JavaScript prints them).
pub(crate) fn text_of(value: &JsValue) -> String {
    value
        .as_string()
        .unwrap_or_else(|| js_sys::Array::of1(value).join("").into())
}

/// Whether `value` is `null` or `undefined`.
pub(crate) fn is_nullish(value: &JsValue) -> bool {
    value.is_null_or_undefined()
}

/// A JS `Error` with `message` (wasm-bindgen's `JsError`, the same import serde-wasm-bindgen's
/// errors use, rather than a second one through js-sys).
pub(crate) fn error(message: &str) -> JsValue {
    JsError::new(message).into()
}

/// A JS `TypeError` with `message`.
pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

/// Calls `f` (if it is a function) with `this` and `args`. An exception thrown by app code is
/// not allowed to break the caller's bookkeeping: it is re-thrown asynchronously, where the
/// page's `error` event and the console show it, as an exception in an XHR callback would be.
pub(crate) fn call(f: &JsValue, this: &JsValue, args: &js_sys::Array) {
    if let Some(f) = f.dyn_ref::<Function>() {
        if let Err(e) = f.apply(this, args) {
            rethrow(e);
        }
    }
}

/// [`call`] with three arguments, passed as they are (no arguments array is built).
pub(crate) fn call3(f: &JsValue, this: &JsValue, a: &JsValue, b: &JsValue, c: &JsValue) {
    if f.is_function() {
        let f = f.unchecked_ref::<Function<fn(JsValue, JsValue, JsValue) -> JsValue>>();
        if let Err(e) = f.call3(this, a, b, c) {
            rethrow(e);
        }
    }
}

/// [`call`] with four arguments, passed as they are.
pub(crate) fn call4(
    f: &JsValue,
    this: &JsValue,
    a: &JsValue,
    b: &JsValue,
    c: &JsValue,
    d: &JsValue,
) {
    if f.is_function() {
        let f = f.unchecked_ref::<Function<fn(JsValue, JsValue, JsValue, JsValue) -> JsValue>>();
        if let Err(e) = f.call4(this, a, b, c, d) {
            rethrow(e);
        }
    }
}

/// Throws `e` from a fresh task (the page's `error` event, not an unhandled rejection).
fn rethrow(e: JsValue) {
    let thrower = Closure::once_into_js(move || -> Result<(), JsValue> { Err(e) });
    set_timeout(&thrower);
}
