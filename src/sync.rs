//! `sync(method, model, options)`: the `Backbone.sync` replacement (the `#[wasm_bindgen]`
//! boundary of a request).
//!
//! It keeps Backbone 1.6's contract: the endpoint is `options.url` or `_.result(model, 'url')`
//! (else the same `Error` Backbone throws, synchronously); `create`/`update`/`patch` send
//! `options.attrs || model.toJSON(options)`, `read` sends `options.data`; `options.success`
//! gets the parsed response; `options.error` gets an xhr-like object, with
//! `options.textStatus` and `options.errorThrown` set as Backbone's sync sets them;
//! `model.trigger('request', model, xhr, options)` fires; the return value is a Promise that
//! is also jqXHR-like (see [`crate::xhr`]).
//!
//! The request's argument `{signature: {endPoint, ctx?, requestId}, item | data}` is built
//! here with serde: the signature is a typed struct, the model's attributes enter untouched
//! through `serde_wasm_bindgen::preserve`, and the JS engine stringifies the whole once.

use std::cell::{Cell, OnceCell};

use js_sys::{Array, Function, JsString, Object, JSON};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::names::{self, Name};
use crate::session::{Request, RequestId};
use crate::shell;
use crate::socket;
use crate::xhr::{self, Call, Function2};

/// Backbone's error for a model without a URL, word for word.
const URL_ERROR: &str = "A \"url\" property or function must be specified";

/// `signature`: what the server routes and deduplicates the request by.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Signature<'a> {
    /// The endpoint as the JS string it was read as (not decoded from wasm memory again).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    end_point: JsValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    ctx: Option<&'a str>,
    /// A JS string (see [`request_id`]).
    #[serde(with = "serde_wasm_bindgen::preserve")]
    request_id: JsValue,
}

/// The event's argument: the signature and the model (`item`) or the read's `data`.
#[derive(Serialize)]
struct Payload<'a> {
    signature: Signature<'a>,
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    item: JsValue,
    #[serde(
        with = "serde_wasm_bindgen::preserve",
        skip_serializing_if = "JsValue::is_undefined"
    )]
    data: JsValue,
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
    let (endpoint_js, endpoint) = endpoint(&model, &options)?;
    let ctx = names::get(&options, Name::Ctx);
    let ctx = if js::is_nullish(&ctx) {
        names::get(&model, Name::Ctx)
    } else {
        ctx
    };
    let ctx = (!js::is_nullish(&ctx)).then(|| to_string(ctx).1);
    let request_id = request_id();
    let (item, data) = match method {
        "read" => (
            JsValue::UNDEFINED,
            non_null(names::get(&options, Name::Data)),
        ),
        "delete" => (JsValue::UNDEFINED, JsValue::UNDEFINED),
        _ => (attributes(&model, &options)?, JsValue::UNDEFINED),
    };
    let payload = Payload {
        signature: Signature {
            end_point: endpoint_js,
            ctx: ctx.as_deref(),
            request_id,
        },
        item,
        data,
    };
    let value = serde_wasm_bindgen::to_value(&payload).map_err(JsValue::from)?;
    // Once, by the JS engine (throws on cyclic data, as Backbone's own JSON.stringify would).
    let text: JsString = JSON::stringify(&value)?;
    let timeout = names::get(&options, Name::Timeout)
        .as_f64()
        .filter(|t| *t > 0.0 && t.is_finite());

    let shared = socket::current_or_connect()?;
    // Kept for the reply's version only while live collections look at versions.
    let watched = xhr::watching().then(|| endpoint.clone());
    let request = Request {
        method: method.to_owned(),
        endpoint,
        ctx,
        payload: text,
        timeout_ms: timeout.map(|t| t as u64),
    };
    let (id, effects) = {
        let mut conn = shared.borrow_mut();
        conn.session.request(js::now(), request)
    };
    let mut call = ABORT.with(|abort| Call::new(&options, id, abort));
    if let Some(endpoint) = watched {
        call.watch(model.clone(), endpoint);
    }
    let xhr = call.xhr();
    shared.borrow_mut().add_call(id, call);
    names::set(&options, Name::Xhr, &xhr);
    let trigger = names::get(&model, Name::Trigger);
    js::call4(
        &trigger,
        &model,
        &Name::Request.js(),
        &model,
        &xhr,
        &options,
    );
    // Effects last: a request refused at once (queue full) fails after the 'request' event,
    // as an XHR error would.
    shell::apply(&shared, effects);
    Ok(xhr)
}

thread_local! {
    /// `xhr.abort`, made once for the page and bound to each request's xhr and id (see
    /// [`Call::new`]): it aborts that request if the connection still holds it (a connection
    /// replaced since has failed its requests already, and its ids may be reused).
    static ABORT: Function2 =
        Closure::<dyn Fn(JsValue, JsValue)>::new(|xhr: JsValue, id: JsValue| {
            let (Some(shared), Some(id)) = (socket::current(), id.as_f64()) else {
                return;
            };
            let id = id as RequestId;
            let held = shared.borrow().call_xhr(id);
            if held.is_some_and(|held| held == xhr) {
                shell::drive(&shared, |s, now| s.abort(now, id));
            }
        })
        .into_js_value()
        .unchecked_into();
}

/// `options.url`, else `_.result(model, 'url')`, else Backbone's error: as a JS string and as
/// Rust text.
fn endpoint(model: &JsValue, options: &JsValue) -> Result<(JsValue, String), JsValue> {
    let url = names::get(options, Name::Url);
    if url.is_truthy() {
        return Ok(to_string(url));
    }
    let mut url = names::get(model, Name::Url);
    if let Some(f) = url.dyn_ref::<Function>() {
        url = f.call0(model)?;
    }
    if url.is_truthy() {
        Ok(to_string(url))
    } else {
        Err(js::error(URL_ERROR))
    }
}

/// `options.attrs || model.toJSON(options)` (the model itself if it has no `toJSON`).
fn attributes(model: &JsValue, options: &JsValue) -> Result<JsValue, JsValue> {
    let attrs = names::get(options, Name::Attrs);
    if attrs.is_truthy() {
        return Ok(attrs);
    }
    match names::get(model, Name::ToJson).dyn_ref::<Function>() {
        Some(to_json) => to_json.call1(model, options),
        None => Ok(model.clone()),
    }
}

fn non_null(value: JsValue) -> JsValue {
    if js::is_nullish(&value) {
        JsValue::UNDEFINED
    } else {
        value
    }
}

/// `String(value)`, as a JS string and as Rust text.
fn to_string(value: JsValue) -> (JsValue, String) {
    match value.as_string() {
        Some(text) => (value, text),
        None => {
            let text = Array::of1(&value).join("");
            let rust = String::from(&text);
            (text.into(), rust)
        }
    }
}

thread_local! {
    /// The page's client id, which prefixes its request ids; made on first use.
    static PREFIX: OnceCell<String> = const { OnceCell::new() };
    /// `"<client id>."`, as a JS string.
    static ID_PREFIX: OnceCell<JsString> = const { OnceCell::new() };
    /// How many request ids were made.
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// The page's client id: a random string made once per page, from `crypto.randomUUID()` where
/// available (secure contexts) or `Math.random()`. It prefixes every request id, and it goes in
/// the CONNECT payload as `clientId` (see [`crate::socket`]) so that the server looks request
/// ids up in this page's scope, on every reconnection alike.
pub(crate) fn client_id() -> String {
    PREFIX.with(|p| {
        p.get_or_init(|| {
            let crypto = js::get(&js_sys::global(), "crypto");
            js::get(&crypto, "randomUUID")
                .dyn_ref::<Function>()
                .and_then(|f| f.call0(&crypto).ok())
                .and_then(|id| id.as_string())
                .unwrap_or_else(|| {
                    let random = js_sys::Math::random;
                    crate::request_id::random_prefix(random(), random())
                })
        })
        .clone()
    })
}

/// A unique request id, `crate::request_id::next(client_id(), counter)`, made as a JS string
/// on the JS side: the page's `"<client id>."` (made once) joined to the counter in base 36
/// (`Number.prototype.toString(36)`: the same digits), so that no id is decoded from wasm
/// memory per request.
pub(crate) fn request_id() -> JsValue {
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let prefix = ID_PREFIX.with(|p| {
        p.get_or_init(|| JsString::from(format!("{}.", client_id())))
            .clone()
    });
    // Exact up to 2^53 requests a page.
    match js_sys::Number::from(n as f64).to_string_with_radix(36) {
        Ok(digits) => prefix.concat(&digits).into(),
        Err(_) => crate::request_id::next(&client_id(), n).into(),
    }
}
