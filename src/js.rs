//! Small helpers for talking to JavaScript values without `core::fmt` or panics.

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
    value.is_undefined() || *value == JsValue::NULL
}

/// `value` when it is a boolean.
pub(crate) fn as_bool(value: &JsValue) -> Option<bool> {
    if *value == JsValue::TRUE {
        Some(true)
    } else if *value == JsValue::FALSE {
        Some(false)
    } else {
        None
    }
}

/// `String(value)`.
pub(crate) fn to_string(value: &JsValue) -> String {
    match value.as_string() {
        Some(s) => s,
        None => array(&[value]).join("").into(),
    }
}

/// A JS array of `items`. Built with the `Reflect.set` the module imports anyway, rather than
/// `Array.of` (one import per arity).
pub(crate) fn array(items: &[&JsValue]) -> Array {
    let a = Array::new();
    for (i, item) in (0u32..).zip(items) {
        let _ = Reflect::set(&a, &JsValue::from(i), item);
    }
    a
}

/// `f.apply(this, args)` for a function the caller knows is one; exceptions are returned.
pub(crate) fn apply(f: &Function, this: &JsValue, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    f.apply(this, &array(args))
}

/// The one Rust closure type this module hands to JavaScript. Every distinct closure type costs
/// its own glue and wasm shims, so listeners, timers, the promise executor and the jqXHR
/// methods all take (up to) two arguments and return a value. `Fn`, not `FnMut`: a callback
/// may be re-entered (an `error` callback calling `xhr.abort()` again).
pub(crate) type Callback = Closure<dyn Fn(JsValue, JsValue) -> JsValue>;

/// Wraps `f` as a [`Callback`].
pub(crate) fn callback(f: impl Fn(JsValue, JsValue) -> JsValue + 'static) -> Callback {
    Closure::new(f)
}

#[wasm_bindgen]
extern "C" {
    /// The global object (`globalThis`).
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: JsValue;
}

/// `globalThis[key]`.
pub(crate) fn global(key: &str) -> JsValue {
    GLOBAL.with(|g| get(g, key))
}

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse` of a JS string already on the JS side (js-sys's takes a `&str`, which is
    /// copied out of wasm memory and decoded on every call).
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// `JSON.parse(text)`; the exception (a `SyntaxError`) is returned.
pub(crate) fn parse_json(text: &JsValue) -> Result<JsValue, JsValue> {
    json_parse(text)
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
