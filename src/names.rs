//! The property names and strings a request passes to JavaScript on every call, made into JS
//! strings once for the page.
//!
//! A `&str` handed to JavaScript is decoded from wasm memory by a `TextDecoder` call each time:
//! with every property name that `sync` and the settling of a request use going that way,
//! those calls were the largest cost of a small request of ours. wasm-bindgen's
//! `enable-interning` caches such strings too, but costs 1.4 KB gzip of wasm (a hash map
//! consulted on every string passed); typed getters in an `extern` block cost 1.6 KB gzip of
//! wasm and glue; this table costs a few hundred bytes.

use wasm_bindgen::JsValue;

use crate::js;

/// A name `sync` and the xhr use on every request.
#[derive(Clone, Copy)]
pub(crate) enum Name {
    Url,
    Ctx,
    Data,
    Attrs,
    ToJson,
    Timeout,
    Trigger,
    Xhr,
    Context,
    Success,
    Error,
    TextStatus,
    ErrorThrown,
    ReadyState,
    Status,
    StatusText,
    Done,
    Fail,
    Always,
    Abort,
    ResponseJson,
    /// The event `sync` triggers on the model.
    Request,
    /// `""`.
    Empty,
}

/// Every [`Name`], in order.
const ALL: [Name; 23] = [
    Name::Url,
    Name::Ctx,
    Name::Data,
    Name::Attrs,
    Name::ToJson,
    Name::Timeout,
    Name::Trigger,
    Name::Xhr,
    Name::Context,
    Name::Success,
    Name::Error,
    Name::TextStatus,
    Name::ErrorThrown,
    Name::ReadyState,
    Name::Status,
    Name::StatusText,
    Name::Done,
    Name::Fail,
    Name::Always,
    Name::Abort,
    Name::ResponseJson,
    Name::Request,
    Name::Empty,
];

// `STRINGS[name as usize]` is `name`'s string: checked when compiling.
const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i] as usize == i);
        i += 1;
    }
};

impl Name {
    fn text(self) -> &'static str {
        match self {
            Name::Url => "url",
            Name::Ctx => "ctx",
            Name::Data => "data",
            Name::Attrs => "attrs",
            Name::ToJson => "toJSON",
            Name::Timeout => "timeout",
            Name::Trigger => "trigger",
            Name::Xhr => "xhr",
            Name::Context => "context",
            Name::Success => "success",
            Name::Error => "error",
            Name::TextStatus => "textStatus",
            Name::ErrorThrown => "errorThrown",
            Name::ReadyState => "readyState",
            Name::Status => "status",
            Name::StatusText => "statusText",
            Name::Done => "done",
            Name::Fail => "fail",
            Name::Always => "always",
            Name::Abort => "abort",
            Name::ResponseJson => "responseJSON",
            Name::Request => "request",
            Name::Empty => "",
        }
    }

    /// The name as a JS string.
    pub(crate) fn js(self) -> JsValue {
        STRINGS.with(|s| s[self as usize].clone())
    }
}

thread_local! {
    static STRINGS: [JsValue; ALL.len()] = ALL.map(|name| JsValue::from_str(name.text()));
}

/// `target[name]`, as [`js::get`].
pub(crate) fn get(target: &JsValue, name: Name) -> JsValue {
    STRINGS.with(|s| js::get_key(target, &s[name as usize]))
}

/// `target[name] = value`, as [`js::set`].
pub(crate) fn set(target: &JsValue, name: Name, value: &JsValue) {
    STRINGS.with(|s| js::set_key(target, &s[name as usize], value));
}
