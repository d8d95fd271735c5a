//! Helpers for the browser tests: the server's address, JS values, awaiting `sync`.

use std::cell::Cell;

use crate::socket::{connect, Socket};
use crate::sync::sync;
use js_sys::{Array, Function, Object, Promise, Reflect, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The test server (`SOCKET_URL` at compile time).
pub const BASE: &str = match option_env!("SOCKET_URL") {
    Some(url) => url,
    None => "http://127.0.0.1:3000",
};

/// The server's ping interval in ms (`PING_INTERVAL` at compile time; run it with 300).
pub fn ping_interval() -> u32 {
    option_env!("PING_INTERVAL")
        .and_then(|p| p.parse().ok())
        .unwrap_or(300)
}

#[wasm_bindgen(inline_js = r#"
export function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }
export function fetchJson(url, method) { return fetch(url, { method }).then((r) => r.json()); }
export async function loadBackbone(base) {
  if (!globalThis.Backbone) {
    for (const name of ['underscore', 'backbone']) {
      const source = await (await fetch(base + '/vendor/' + name + '.js')).text();
      (0, eval)(source);
    }
  }
  return globalThis.Backbone;
}
export function recorder(extra) {
  const calls = [];
  const options = Object.assign({}, extra || {});
  options.success = function (...args) { calls.push({ kind: 'success', args, self: this }); };
  options.error = function (...args) { calls.push({ kind: 'error', args, self: this }); };
  return { calls, options };
}
export function recordingModel(url) {
  return { url, triggered: [], trigger(...args) { this.triggered.push(args); } };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = sleep)]
    fn sleep_js(ms: u32) -> Promise;
    #[wasm_bindgen(js_name = fetchJson)]
    fn fetch_json(url: &str, method: &str) -> Promise;
    #[wasm_bindgen(js_name = loadBackbone)]
    fn load_backbone_js(base: &str) -> Promise;
    /// `{calls, options}`: options whose `success`/`error` record their arguments and `this`.
    pub fn recorder(extra: &JsValue) -> JsValue;
    /// A plain model with `url` whose `trigger` records its arguments in `triggered`.
    #[wasm_bindgen(js_name = recordingModel)]
    pub fn recording_model(url: &str) -> JsValue;
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let _ = JsFuture::from(sleep_js(ms)).await;
}

/// The server's counters (`GET /stats`).
pub async fn stats() -> JsValue {
    let url = String::from(BASE) + "/stats";
    JsFuture::from(fetch_json(&url, "GET"))
        .await
        .expect("stats")
}

/// Loads the real underscore + Backbone from the server into the page (once).
pub async fn load_backbone() -> JsValue {
    JsFuture::from(load_backbone_js(BASE))
        .await
        .expect("load Backbone")
}

thread_local! {
    static UNIQUE: Cell<u32> = const { Cell::new(0) };
}

/// A fresh endpoint under `prefix`, so tests never see each other's data.
pub fn unique(prefix: &str) -> String {
    let n = UNIQUE.with(|u| {
        u.set(u.get() + 1);
        u.get()
    });
    let run = (js_sys::Math::random() * 1e9) as u64;
    format!("{prefix}_{run}_{n}")
}

/// `JSON.parse(text)`.
pub fn json(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

/// `JSON.stringify(value)`.
pub fn text(value: &JsValue) -> String {
    JSON::stringify(value).map(String::from).unwrap_or_default()
}

/// An object from key/value pairs.
pub fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).expect("set");
    }
    o.into()
}

/// `value.a.b.c` for the path `"a.b.c"` (numeric segments index arrays).
pub fn get(value: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(value.clone(), |v, key| {
        if v.is_object() || v.is_function() {
            Reflect::get(&v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        }
    })
}

/// A JS function from a Rust closure of one argument.
pub fn func(f: impl Fn(JsValue) + 'static) -> Function {
    Closure::<dyn Fn(JsValue)>::new(f)
        .into_js_value()
        .unchecked_into()
}

/// `sync` as a JS function `(method, model, options) => xhr` (for JS code under test).
pub fn sync_fn() -> Function {
    Closure::<dyn Fn(String, JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        |method: String, model, options| sync(&method, model, options),
    )
    .into_js_value()
    .unchecked_into()
}

/// Connects with `replies` and extra options, and waits (up to 5 s) until connected.
pub async fn open(replies: &str, extra: &[(&str, JsValue)]) -> Socket {
    let socket = connect_only(replies, extra);
    assert!(
        wait_for(|| socket.connected(), 5000).await,
        "did not connect to {BASE}"
    );
    socket
}

/// Connects with `replies` and extra options, without waiting.
pub fn connect_only(replies: &str, extra: &[(&str, JsValue)]) -> Socket {
    let mut pairs = vec![
        ("url", JsValue::from_str(BASE)),
        ("replies", replies.into()),
    ];
    pairs.extend(extra.iter().cloned());
    connect(obj(&pairs)).expect("connect")
}

/// Polls `ready` every 10 ms for up to `ms`; whether it became true.
pub async fn wait_for(ready: impl Fn() -> bool, ms: u32) -> bool {
    for _ in 0..ms / 10 {
        if ready() {
            return true;
        }
        sleep(10).await;
    }
    ready()
}

/// Calls `sync(method, {url}, options)` and awaits the returned promise.
pub async fn call(method: &str, url: &str, options: &JsValue) -> Result<JsValue, JsValue> {
    let model = obj(&[("url", url.into())]);
    settle(sync(method, model, options.clone()).expect("sync threw")).await
}

/// Awaits an xhr-like promise returned by `sync`.
pub async fn settle(xhr: JsValue) -> Result<JsValue, JsValue> {
    JsFuture::from(xhr.unchecked_into::<Promise>()).await
}

/// Options with `attrs` parsed from JSON text.
pub fn attrs(json_text: &str) -> JsValue {
    obj(&[("attrs", json(json_text))])
}

/// The recorded calls of a [`recorder`] as an array.
pub fn calls(rec: &JsValue) -> Array {
    get(rec, "calls").unchecked_into()
}

/// `target[method](...args)`.
pub fn invoke(target: &JsValue, method: &str, args: &Array) -> JsValue {
    let f: Function = get(target, method).unchecked_into();
    f.apply(target, args).expect("method call")
}
