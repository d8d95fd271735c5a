//! `connect(options)` and the `Socket` class: the connection `sync` uses, open to the app for
//! its own events (the `#[wasm_bindgen]` boundary of the connection).
//!
//! The page has one socket, as socket.io-client's global `io()` would give: its listeners
//! belong to the page and stay attached when `connect()` replaces the connection under it.

use std::cell::RefCell;

use js_sys::{Array, Function, JsString, Object, JSON};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::session::{Config, ReplyMode, Session};
use crate::shell::{self, Conn, Shared};

/// Event names socket.io reserves for the connection's own lifecycle: the app cannot emit them.
const RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One app listener.
struct Listener {
    name: String,
    f: Function,
    once: bool,
}

/// A hook of the crate's own (live collections, the fallback) on the socket's events, called
/// before the app's listeners.
pub(crate) type Hook = fn(&str, &Array);

/// The page's socket: the current connection and the listeners.
struct Hub {
    conn: Option<Shared>,
    listeners: Vec<Listener>,
    hooks: Vec<Hook>,
}

thread_local! {
    static HUB: RefCell<Hub> = const {
        RefCell::new(Hub {
            conn: None,
            listeners: Vec::new(),
            hooks: Vec::new(),
        })
    };
    /// The `token` of the last CONNECT payload, for the XHR fallback's `Authorization` header.
    static TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The access token the socket last connected with (`auth.token`), if any: the XHR fallback
/// sends it as `Authorization: Bearer` (see [`crate::install`]).
pub(crate) fn last_token() -> Option<String> {
    TOKEN.with(|t| t.borrow().clone())
}

/// A handle on the page's socket.io connection (one namespace): `emit`, `on`, `once`, `off`,
/// `timeout`, `close`. Every handle reaches the same socket.
#[wasm_bindgen]
#[derive(Clone, Copy, Default)]
pub struct Socket {
    /// The ack timeout of emits made through this handle (`socket.timeout(ms)`).
    ack_timeout_ms: Option<u64>,
}

/// The `transport` option: whether calls may fall back to XHR.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum TransportOption {
    /// Always the socket (the default).
    #[default]
    Socket,
    /// XHR while the socket cannot connect (see [`crate::fallback`]).
    Auto,
}

/// `connect()`'s options besides the session's own: what the edge needs.
pub(crate) struct EdgeOptions {
    /// `transport`.
    pub(crate) transport: TransportOption,
    /// `fallbackAfter`.
    pub(crate) fallback_after: u32,
}

/// Opens the connection `sync` uses, replacing (closing) any previous one; its pending requests
/// fail with "disconnect". Options (camelCase, all optional; a wrong type is a `TypeError`
/// naming the option): `url`, `namespace`, `auth` (an object, or a function `(cb) =>
/// cb({...})` or returning a Promise, called at every connection), `replies` (`"ack"` /
/// `"event"`), `timeout`, `queueSize`, `reconnection`, `reconnectionAttempts`,
/// `reconnectionDelay`, `reconnectionDelayMax`, `randomizationFactor`, `transport`
/// (`"socket"` / `"auto"`), `fallbackAfter`.
#[wasm_bindgen]
pub fn connect(options: JsValue) -> Result<Socket, JsValue> {
    let (config, url, auth, edge) = parse_options(&options)?;
    crate::install::configure(&edge);
    let shared = Conn::new(Session::new(config), url, auth);
    let old = HUB.with(|h| h.borrow_mut().conn.replace(shared.clone()));
    if let Some(old) = old {
        shell::drive(&old, |s, now| s.close(now));
    }
    shell::drive(&shared, |s, now| s.start(now));
    Ok(Socket::default())
}

/// The page's socket (opened on first use with the default options).
#[wasm_bindgen]
pub fn socket() -> Socket {
    Socket::default()
}

/// How the current connection gets its replies: `"ack"` or `"event"`.
pub(crate) fn reply_mode() -> String {
    let event = current().is_some_and(|c| c.borrow().session.config().replies == ReplyMode::Event);
    if event { "event" } else { "ack" }.into()
}

/// Opens the connection with the default options unless one was made.
pub(crate) fn ensure_connection() -> Result<(), JsValue> {
    current_or_connect().map(drop)
}

/// The current connection, if `connect` was called.
pub(crate) fn current() -> Option<Shared> {
    HUB.with(|h| h.borrow().conn.clone())
}

/// The current connection, opened with the default options if there is none.
pub(crate) fn current_or_connect() -> Result<Shared, JsValue> {
    if let Some(shared) = current() {
        return Ok(shared);
    }
    connect(JsValue::UNDEFINED)?;
    current().ok_or_else(|| js::error("connect failed"))
}

/// Adds a hook of the crate's own on the socket's events (once per hook).
pub(crate) fn hook(f: Hook) {
    HUB.with(|h| {
        let mut hub = h.borrow_mut();
        if !hub.hooks.iter().any(|g| std::ptr::fn_addr_eq(*g, f)) {
            hub.hooks.push(f);
        }
    });
}

/// Calls the hooks, then the app's listeners of `name` with `args` (once-listeners are
/// removed first). No borrow is held while they run.
pub(crate) fn dispatch(name: &str, args: &Array) {
    let (hooks, fs) = HUB.with(|h| {
        let mut hub = h.borrow_mut();
        let fs: Vec<Function> = hub
            .listeners
            .iter()
            .filter(|l| l.name == name)
            .map(|l| l.f.clone())
            .collect();
        hub.listeners.retain(|l| !(l.once && l.name == name));
        (hub.hooks.clone(), fs)
    });
    for hook in hooks {
        hook(name, args);
    }
    let this: JsValue = Socket::default().into();
    for f in fs {
        js::call(&f, &this, args);
    }
}

/// Emits `data` (`["name", ...args]`, JSON text) on the current connection.
pub(crate) fn emit_data(
    data: JsString,
    ack: Option<(Function, Option<u64>)>,
) -> Result<(), JsValue> {
    let shared = current_or_connect()?;
    let (handle, timeout) = match ack {
        Some((f, timeout)) => {
            let handle = shared.borrow_mut().add_ack(f, timeout.is_some());
            (Some(handle), timeout)
        }
        None => (None, None),
    };
    shell::drive(&shared, |s, now| s.emit(now, data, handle, timeout));
    Ok(())
}

#[wasm_bindgen]
impl Socket {
    /// Emits the app's event `event` with the arguments `args` (JSON values); `ack`, if given,
    /// is called with the server's acknowledgement arguments (after an error argument, `null`
    /// or the timeout's `Error`, when this handle has a timeout). Made while offline, it is
    /// sent on connect. (`socket.emit(event, ...args[, ack])` in JavaScript.)
    #[wasm_bindgen(js_name = emitArgs)]
    pub fn emit(&self, event: &str, args: &Array, ack: Option<Function>) -> Result<(), JsValue> {
        if RESERVED.contains(&event) {
            return Err(js::error("emit: reserved event name"));
        }
        let data = Array::of1(&event.into()).concat(args);
        let text = JSON::stringify(&data)?;
        emit_data(text, ack.map(|f| (f, self.ack_timeout_ms)))
    }

    /// A handle whose emits' acks time out after `ms` milliseconds: the callback then gets an
    /// `Error` first, else `null` and the server's arguments (socket.io-client's `timeout`).
    pub fn timeout(&self, ms: f64) -> Socket {
        Socket {
            ack_timeout_ms: Some(if ms.is_finite() && ms > 0.0 {
                ms as u64
            } else {
                0
            }),
        }
    }

    /// Calls `f` every time the event `name` arrives.
    pub fn on(&self, name: String, f: Function) {
        listen(name, f, false);
    }

    /// Calls `f` the next time the event `name` arrives.
    pub fn once(&self, name: String, f: Function) {
        listen(name, f, true);
    }

    /// Removes the listener `f` of `name`, or all of its listeners without `f`.
    pub fn off(&self, name: &str, f: Option<Function>) {
        HUB.with(|h| {
            let mut hub = h.borrow_mut();
            let mut removed = false;
            hub.listeners.retain(|l| {
                let hit = l.name == name
                    && !removed
                    && f.as_ref()
                        .is_none_or(|f| JsValue::from(f) == JsValue::from(&l.f));
                if hit && f.is_some() {
                    removed = true;
                }
                !hit
            });
        });
    }

    /// Disconnects (`41`) and closes; pending requests fail with "disconnect".
    pub fn close(&self) {
        if let Some(shared) = current() {
            shell::drive(&shared, |s, now| s.close(now));
        }
    }

    /// Whether the namespace is connected.
    #[wasm_bindgen(getter)]
    pub fn connected(&self) -> bool {
        current().is_some_and(|c| c.borrow().session.is_connected())
    }

    /// The namespace connection's socket.io sid, while connected.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        current().and_then(|c| c.borrow().session.sid().map(str::to_owned))
    }
}

/// Calls `f` the next time the event `name` arrives (a listener of the crate's own).
pub(crate) fn listen_once(name: String, f: Function) {
    listen(name, f, true);
}

fn listen(name: String, f: Function, once: bool) {
    HUB.with(|h| h.borrow_mut().listeners.push(Listener { name, f, once }));
}

/// Option `key` of `options`, typed with serde; a wrong type is a `TypeError` naming it.
fn option<T: DeserializeOwned>(options: &JsValue, key: &str) -> Result<Option<T>, JsValue> {
    let value = js::get(options, key);
    if js::is_nullish(&value) {
        return Ok(None);
    }
    serde_wasm_bindgen::from_value(value)
        .map(Some)
        .map_err(|e| js::type_error(&format!("connect: option `{key}`: {e}")))
}

/// A non-negative number option.
fn number(options: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    match option::<f64>(options, key)? {
        Some(n) if n.is_nan() || n < 0.0 => Err(js::type_error(&format!(
            "connect: option `{key}` must be a non-negative number"
        ))),
        n => Ok(n),
    }
}

/// The namespace CONNECT payload, as JSON text: the app's `auth` object (if any) with the
/// page's `clientId` (see [`crate::sync::client_id`]) unless `auth` names its own. The server
/// scopes request ids by it when authentication is off, so a retry after a reconnection
/// matches its first try and no other client's id ever does.
pub(crate) fn connect_payload(auth: &JsValue) -> Result<JsString, JsValue> {
    let payload = Object::new();
    js::set(
        &payload,
        "clientId",
        &JsValue::from(crate::sync::client_id()),
    );
    if auth.is_object() {
        Object::assign(&payload, auth.unchecked_ref());
    }
    let token = js::get(&payload, "token").as_string();
    TOKEN.with(|t| *t.borrow_mut() = token);
    JSON::stringify(&payload)
}

/// The session configuration, the WebSocket URL, the auth function and the edge's options
/// from `connect`'s options.
fn parse_options(
    options: &JsValue,
) -> Result<(Config<JsString>, String, Option<Function>, EdgeOptions), JsValue> {
    if !js::is_nullish(options) && !options.is_object() {
        return Err(js::type_error(
            "connect(options): options must be an object",
        ));
    }
    let mut config = Config::default();
    let base = match option::<String>(options, "url")? {
        Some(url) => url,
        // The page's origin (`location.origin`; none in a worker without one).
        None => js::get(&js::get(&js_sys::global(), "location"), "origin")
            .as_string()
            .unwrap_or_default(),
    };
    let url = crate::url::websocket_url(&base).ok_or_else(|| js::error("connect: no url"))?;
    if let Some(namespace) = option::<String>(options, "namespace")? {
        config.namespace = if namespace.starts_with('/') {
            namespace
        } else {
            format!("/{namespace}")
        };
    }
    let auth = js::get(options, "auth");
    let mut auth_fn = None;
    if let Some(f) = auth.dyn_ref::<Function>() {
        config.auth_provider = true;
        auth_fn = Some(f.clone());
    } else if auth.is_object() || js::is_nullish(&auth) {
        config.auth = Some(connect_payload(&auth)?);
    } else {
        return Err(js::type_error(
            "connect: option `auth` must be an object or a function",
        ));
    }
    // The two string-valued options are read as strings and matched: a derived enum would
    // link serde's enum machinery (variant access, `unknown variant` messages), measured at
    // 0.8 KB gzip of wasm for these two options.
    config.replies = match option::<String>(options, "replies")?.as_deref() {
        None | Some("ack") => ReplyMode::Ack,
        Some("event") => ReplyMode::Event,
        Some(_) => {
            return Err(js::type_error(
                "connect: option `replies` must be 'ack' or 'event'",
            ))
        }
    };
    if let Some(n) = number(options, "timeout")?.filter(|n| *n > 0.0) {
        config.timeout_ms = n as u64;
    }
    if let Some(n) = number(options, "queueSize")? {
        config.queue_size = n as usize;
    }
    if let Some(b) = option::<bool>(options, "reconnection")? {
        config.reconnection = b;
    }
    if let Some(n) = number(options, "reconnectionAttempts")? {
        config.reconnection_attempts = if n >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            n as u32
        };
    }
    if let Some(n) = number(options, "reconnectionDelay")? {
        config.reconnection_delay_ms = n;
    }
    if let Some(n) = number(options, "reconnectionDelayMax")? {
        config.reconnection_delay_max_ms = n;
    }
    if let Some(n) = number(options, "randomizationFactor")? {
        config.randomization_factor = n.min(1.0);
    }
    let transport = match option::<String>(options, "transport")?.as_deref() {
        None | Some("socket") => TransportOption::Socket,
        Some("auto") => TransportOption::Auto,
        Some(_) => {
            return Err(js::type_error(
                "connect: option `transport` must be 'socket' or 'auto'",
            ))
        }
    };
    let fallback_after = match number(options, "fallbackAfter") {
        Ok(None) => 3,
        Ok(Some(n)) if n >= 1.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => n as u32,
        _ => {
            return Err(js::type_error(
                "connect: fallbackAfter must be a positive integer",
            ))
        }
    };
    config.seed = (js_sys::Math::random() * 9.007_199_254_740_992e15) as u64;
    let edge = EdgeOptions {
        transport,
        fallback_after,
    };
    Ok((config, url, auth_fn, edge))
}
