//! Backbone at the edge: `install(Backbone, options)` replaces `Backbone.sync`, keeping the
//! original as `Backbone.ajaxSync` for models that ask for it and for the XHR fallback.

use std::cell::RefCell;

use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::fallback::{Fallback, FallbackEvent};
use crate::js;
use crate::socket::{self, EdgeOptions, TransportOption};

thread_local! {
    static FALLBACK: RefCell<Fallback> = const { RefCell::new(Fallback::new()) };
}

/// A new connection's edge options (called by `connect`).
pub(crate) fn configure(edge: &EdgeOptions) {
    socket::hook(hear);
    let event = FallbackEvent::Configure {
        auto: edge.transport == TransportOption::Auto,
        after: edge.fallback_after,
    };
    FALLBACK.with(|f| f.borrow_mut().on(event));
}

/// The socket's lifecycle events, for the fallback. With `transport: 'auto'`, every failed
/// attempt also asks an `auth` function for a fresh token: a socket that cannot open never
/// calls it, and the XHRs the fallback is about to send need one.
fn hear(name: &str, _args: &Array) {
    let event = match name {
        "connect" => FallbackEvent::Connect,
        "connect_error" => FallbackEvent::ConnectError,
        "disconnect" => FallbackEvent::Disconnect,
        _ => return,
    };
    let allowed = FALLBACK.with(|f| {
        let mut f = f.borrow_mut();
        f.on(event);
        f.allowed()
    });
    if allowed && event == FallbackEvent::ConnectError {
        if let Some(shared) = socket::current() {
            crate::shell::refresh_token(&shared);
        }
    }
}

/// Whether calls go through XHR right now (`transport: 'auto'` and the socket cannot connect).
pub(crate) fn fallback_active() -> bool {
    FALLBACK.with(|f| f.borrow().use_xhr())
}

/// Whether `model` (or the collection it belongs to) asked to keep using XHR (`ajaxSync`).
#[wasm_bindgen(js_name = usesAjax)]
pub fn uses_ajax(model: &JsValue) -> bool {
    js::get(model, "ajaxSync").is_truthy()
        || js::get(&js::get(model, "collection"), "ajaxSync").is_truthy()
}

/// The options of a call the fallback hands to `Backbone.ajaxSync`: a copy whose `headers`
/// add what the socket would have carried, so the REST twin treats it the same way:
/// `X-Client-Id` (the request-id scope and read-your-writes order of this page), a fresh
/// `X-Request-Id` for writes (a retry of the same request is applied once), and
/// `Authorization: Bearer` with the token of the last `auth` payload (the socket's last
/// attempt, or an `auth` function asked after a failed one). Headers the app set itself win.
fn fallback_options(method: &JsValue, options: &JsValue) -> JsValue {
    let headers = Object::new();
    js::set(
        &headers,
        "X-Client-Id",
        &JsValue::from(crate::sync::client_id()),
    );
    if method.as_string().as_deref() != Some("read") {
        js::set(&headers, "X-Request-Id", &crate::sync::request_id());
    }
    if let Some(token) = socket::last_token() {
        js::set(
            &headers,
            "Authorization",
            &JsValue::from(format!("Bearer {token}")),
        );
    }
    let given = js::get(options, "headers");
    if given.is_object() {
        Object::assign(&headers, given.unchecked_ref());
    }
    let copy = Object::new();
    if options.is_object() {
        Object::assign(&copy, options.unchecked_ref());
    }
    js::set(&copy, "headers", &headers);
    copy.into()
}

/// Makes `sync` the `Backbone.sync` of the given Backbone, keeping the original as
/// `Backbone.ajaxSync` for models and collections that set `ajaxSync: true` (and for the
/// fallback). With `options` it connects at once; without, the connection opens on first use.
/// Installing twice keeps the first original. Returns the installed function.
#[wasm_bindgen]
pub fn install(backbone: JsValue, options: JsValue) -> Result<Function, JsValue> {
    let current = js::get(&backbone, "sync");
    let Some(current) = current.dyn_ref::<Function>() else {
        return Err(js::type_error(
            "install(Backbone, options): pass the Backbone object whose sync to replace",
        ));
    };
    let original = js::get(current, "ajaxSync");
    let ajax_sync = if original.is_function() {
        original
    } else {
        current.clone().into()
    };
    let bb = backbone.clone();
    let installed = Closure::<dyn Fn(JsValue, JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        move |method: JsValue, model: JsValue, options: JsValue| {
            let explicit = uses_ajax(&model);
            if explicit || fallback_active() {
                let ajax = js::get(&bb, "ajaxSync");
                let ajax: &Function = ajax.unchecked_ref();
                let options = if explicit {
                    options
                } else {
                    fallback_options(&method, &options)
                };
                return ajax.apply(&bb, &Array::of3(&method, &model, &options));
            }
            let method = method.as_string().unwrap_or_default();
            crate::sync::sync(&method, model, options)
        },
    )
    .into_js_value();
    js::set(&installed, "ajaxSync", &ajax_sync);
    js::set(&backbone, "ajaxSync", &ajax_sync);
    js::set(&backbone, "sync", &installed);
    if !options.is_undefined() {
        socket::connect(options)?;
    }
    Ok(installed.unchecked_into())
}
