//! `connect(options)` and the `Socket` class: the connection `sync` uses, open to the app for
//! its own events (the `#[wasm_bindgen]` boundary of the connection).

use core::cell::RefCell;

use js_sys::{Array, Function, JSON};
use wasm_bindgen::prelude::*;

use crate::js::{self, Local};
use crate::prelude::*;
use crate::session::{Config, ReplyMode, Session};
use crate::shell::{self, Inner, Shared};

/// The connection `sync` uses.
static CURRENT: Local<RefCell<Option<Shared>>> = Local::new(RefCell::new(None));

/// Event names socket.io reserves for the connection's own lifecycle: the app cannot emit them.
const RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// A socket.io connection (one namespace): `emit`, `on`, `once`, `off`, `close`.
#[wasm_bindgen]
pub struct Socket {
    shared: Shared,
}

/// Opens the connection `sync` uses, replacing (closing) any previous one; its pending requests
/// fail with "disconnect". Options: `url`, `namespace`, `auth`, `replies` (`"ack"`/`"event"`),
/// `timeout`, `queueSize`, `reconnection`, `reconnectionAttempts`, `reconnectionDelay`,
/// `reconnectionDelayMax`, `randomizationFactor`.
#[wasm_bindgen]
pub fn connect(options: JsValue) -> Result<Socket, JsValue> {
    let (config, url) = parse_options(&options)?;
    let shared = Inner::new(Session::new(config), url);
    let old = CURRENT.get().replace(Some(shared.clone()));
    if let Some(old) = old {
        shell::drive(&old, |s, now| s.close(now));
    }
    shell::drive(&shared, |s, now| s.start(now));
    Ok(Socket { shared })
}

/// The current connection, opened with the default options if there is none.
pub(crate) fn current_or_connect() -> Result<Shared, JsValue> {
    if let Some(shared) = CURRENT.get().borrow().clone() {
        return Ok(shared);
    }
    Ok(connect(JsValue::UNDEFINED)?.shared)
}

#[wasm_bindgen]
impl Socket {
    /// Emits the app's event `event` with the JSON arguments `args`; `ack`, if given, is called
    /// with the server's acknowledgement arguments.
    pub fn emit(&self, event: &str, args: &Array, ack: Option<Function>) -> Result<(), JsValue> {
        if RESERVED.contains(&event) {
            return Err(js::error("emit: reserved event name"));
        }
        let text: String = JSON::stringify(args)?.into();
        let handle = ack.map(|f| self.shared.borrow_mut().add_ack(f));
        shell::drive(&self.shared, |s, now| s.emit(now, event, &text, handle));
        Ok(())
    }

    /// Calls `f` every time the event `name` arrives.
    pub fn on(&self, name: String, f: Function) {
        self.shared.borrow_mut().listen(name, f, false);
    }

    /// Calls `f` the next time the event `name` arrives.
    pub fn once(&self, name: String, f: Function) {
        self.shared.borrow_mut().listen(name, f, true);
    }

    /// Removes the listener `f` of `name`, or all of its listeners without `f`.
    pub fn off(&self, name: &str, f: Option<Function>) {
        self.shared.borrow_mut().unlisten(name, f.as_ref());
    }

    /// Disconnects (`41`) and closes; pending requests fail with "disconnect".
    pub fn close(&self) {
        shell::drive(&self.shared, |s, now| s.close(now));
    }

    /// Whether the namespace is connected.
    #[wasm_bindgen(getter)]
    pub fn connected(&self) -> bool {
        self.shared.borrow().session.is_connected()
    }

    /// The namespace connection's socket.io sid, while connected.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> Option<String> {
        self.shared.borrow().session.sid().map(str::to_owned)
    }
}

/// The session configuration and the WebSocket URL from `connect`'s options.
fn parse_options(options: &JsValue) -> Result<(Config, String), JsValue> {
    let mut config = Config::default();
    let get = |key| js::get(options, key);
    let url = get("url");
    let base = if js::is_nullish(&url) {
        let location = js::global("location");
        js::get(&location, "origin").as_string().unwrap_or_default()
    } else {
        js::to_string(&url)
    };
    let url = crate::url::websocket_url(&base).ok_or_else(|| js::error("connect: no url"))?;
    let namespace = get("namespace");
    if !js::is_nullish(&namespace) {
        let namespace = js::to_string(&namespace);
        config.namespace = if namespace.starts_with('/') {
            namespace
        } else {
            String::from("/") + &namespace
        };
    }
    let auth = get("auth");
    if auth.is_object() {
        config.auth = Some(JSON::stringify(&auth)?.into());
    }
    match get("replies").as_string().as_deref() {
        None | Some("ack") => {}
        Some("event") => config.replies = ReplyMode::Event,
        Some(_) => return Err(js::error("connect: replies must be \"ack\" or \"event\"")),
    }
    let number = |key| get(key).as_f64().filter(|n| !n.is_nan() && *n >= 0.0);
    if let Some(n) = number("timeout").filter(|n| *n > 0.0) {
        config.timeout_ms = n as u64;
    }
    if let Some(n) = number("queueSize") {
        config.queue_size = n as usize;
    }
    if let Some(b) = js::as_bool(&get("reconnection")) {
        config.reconnection = b;
    }
    if let Some(n) = number("reconnectionAttempts") {
        config.reconnection_attempts = if n >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            n as u32
        };
    }
    if let Some(n) = number("reconnectionDelay") {
        config.reconnection_delay_ms = n;
    }
    if let Some(n) = number("reconnectionDelayMax") {
        config.reconnection_delay_max_ms = n;
    }
    if let Some(n) = number("randomizationFactor") {
        config.randomization_factor = n.min(1.0);
    }
    config.seed = (js_sys::Math::random() * 9.007_199_254_740_992e15) as u64;
    Ok((config, url))
}
