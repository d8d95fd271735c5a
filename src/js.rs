//! Small helpers for talking to JavaScript values without `core::fmt` or panics.

use core::cell::OnceCell;

use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::prelude::*;

/// `target[key]`, or `undefined` when `target` is not an object or the lookup throws.
pub(crate) fn get(target: &JsValue, key: &str) -> JsValue {
    if target.is_object() || target.is_function() {
        Reflect::get(target, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `target[key] = value`, ignoring frozen objects.
pub(crate) fn set(target: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// Whether `value` is `null` or `undefined`.
pub(crate) fn is_nullish(value: &JsValue) -> bool {
    value.is_null() || value.is_undefined()
}

/// `String(value)`.
pub(crate) fn to_string(value: &JsValue) -> String {
    match value.as_string() {
        Some(s) => s,
        None => Array::of1(value).join("").into(),
    }
}

/// A JS `Error` with `message`.
pub(crate) fn error(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Milliseconds on a monotonic clock (`performance.now()`), the session's time: unlike
/// `Date.now()` it does not jump when the system clock is adjusted, so timeouts stay honest.
pub(crate) fn now() -> u64 {
    performance_now() as u64
}

/// Calls `f` (if it is a function) with `this` and `args`. An exception thrown by app code is
/// not allowed to break the caller's bookkeeping: it is re-raised asynchronously, as an
/// unhandled rejection the console shows.
pub(crate) fn call(f: &JsValue, this: &JsValue, args: &Array) {
    if let Some(f) = f.dyn_ref::<Function>() {
        if let Err(e) = f.apply(this, args) {
            let _ = Promise::reject(&e);
        }
    }
}

/// A do-nothing function, made once and kept for the module's lifetime.
static NOOP: Local<OnceCell<JsValue>> = Local::new(OnceCell::new());

/// A shared do-nothing function (for `promise.then(f, noop)` and marking rejections handled).
pub(crate) fn noop() -> Function {
    let f = NOOP
        .get()
        .get_or_init(|| Closure::<dyn Fn()>::new(|| {}).into_js_value());
    f.clone().unchecked_into()
}

/// Module-wide state (what `thread_local!` holds in a `std` build): the wasm module has one
/// thread (lib.rs refuses to build with atomics), so a static may hold `!Sync` values.
pub(crate) struct Local<T>(T);

// SAFETY: single-threaded wasm (see lib.rs): no other thread can reach the value.
unsafe impl<T> Sync for Local<T> {}

impl<T> Local<T> {
    /// Wraps `value` for a `static`.
    pub(crate) const fn new(value: T) -> Self {
        Local(value)
    }

    /// The value.
    pub(crate) fn get(&self) -> &T {
        &self.0
    }
}
