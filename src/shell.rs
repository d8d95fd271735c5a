//! The shell around one [`Session`]: performs its effects with the browser's WebSocket and one
//! timer, and hands results to JavaScript.
//!
//! Re-entrancy rule: no `RefCell` borrow is held while JavaScript runs. Every effect that calls
//! app code (a success callback, a listener) first takes what it needs out of the shared state,
//! ends the borrow, then calls — so a callback may call `sync` or `emit` again.

use crate::prelude::*;

use alloc::rc::{Rc, Weak};
use core::cell::RefCell;

use crate::listener::Timeout;
use js_sys::{Array, Function};
use wasm_bindgen::{JsCast, JsValue};

use crate::idmap::IdMap;
use crate::js;
use crate::session::{Effect, Lifecycle, RequestId, Session};
use crate::sync::SyncCall;
use crate::transport::{Transport, TransportEvent};

/// The shared state of one connection.
pub(crate) type Shared = Rc<RefCell<Inner>>;

/// One app listener.
struct Listener {
    name: String,
    f: Function,
    once: bool,
}

/// A connection's state: the pure session plus the browser resources and JS callbacks.
pub(crate) struct Inner {
    pub(crate) session: Session,
    url: String,
    transport: Option<Transport>,
    timer: Option<(u64, Timeout)>,
    calls: IdMap<SyncCall>,
    listeners: Vec<Listener>,
    acks: IdMap<Function>,
    next_handle: u64,
    /// `abort(id)` for the xhrs of this connection's requests, made on the first request.
    abort: Option<JsValue>,
}

impl Inner {
    /// A connection to the Engine.IO WebSocket `url`, not started.
    pub(crate) fn new(session: Session, url: String) -> Shared {
        Rc::new(RefCell::new(Inner {
            session,
            url,
            transport: None,
            timer: None,
            calls: IdMap::new(),
            listeners: Vec::new(),
            acks: IdMap::new(),
            next_handle: 0,
            abort: None,
        }))
    }

    /// Keeps the JS side of a request until the session settles it.
    pub(crate) fn add_call(&mut self, id: RequestId, call: SyncCall) {
        self.calls.insert(id, call);
    }

    /// The connection's `abort(id)` function, which fails request `id` with statusText
    /// "abort". One per connection, handed to every xhr (a closure per request would cost its
    /// own crossing); it holds the connection weakly, and is left to the JS garbage collector
    /// (not dropped with the connection) so an xhr kept by the app can still call it.
    pub(crate) fn abort_fn(&mut self, shared: &Shared) -> JsValue {
        self.abort
            .get_or_insert_with(|| {
                let weak = Rc::downgrade(shared);
                js::callback(move |id, _| {
                    if let (Some(shared), Some(id)) = (weak.upgrade(), id.as_f64()) {
                        drive(&shared, |s, now| s.abort(now, id as RequestId));
                    }
                    JsValue::UNDEFINED
                })
                .into_js_value()
            })
            .clone()
    }

    /// Keeps an app ack callback; returns its handle for the session.
    pub(crate) fn add_ack(&mut self, f: Function) -> u64 {
        self.next_handle += 1;
        self.acks.insert(self.next_handle, f);
        self.next_handle
    }

    /// Adds an app listener.
    pub(crate) fn listen(&mut self, name: String, f: Function, once: bool) {
        self.listeners.push(Listener { name, f, once });
    }

    /// Removes one listener (`f`) or all listeners of `name`.
    pub(crate) fn unlisten(&mut self, name: &str, f: Option<&Function>) {
        let mut removed = false;
        self.listeners.retain(|l| {
            let hit = l.name == name
                && !removed
                && f.is_none_or(|f| JsValue::from(f) == JsValue::from(&l.f));
            if hit && f.is_some() {
                removed = true;
            }
            !hit
        });
    }
}

/// Feeds one input to the session and performs the resulting effects.
pub(crate) fn drive(shared: &Shared, input: impl FnOnce(&mut Session, u64) -> Vec<Effect>) {
    let effects = {
        let mut inner = shared.borrow_mut();
        input(&mut inner.session, js::now())
    };
    apply(shared, effects);
}

/// Performs effects in order, then re-arms the timer for the session's next deadline.
pub(crate) fn apply(shared: &Shared, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::OpenSocket => open_socket(shared),
            Effect::Send(text) => {
                let inner = shared.borrow();
                if let Some(t) = &inner.transport {
                    t.send(&text);
                }
            }
            Effect::CloseSocket => {
                let old = shared.borrow_mut().transport.take();
                drop(old);
            }
            Effect::Settle { id, outcome } => {
                let call = shared.borrow_mut().calls.remove(id);
                if let Some(call) = call {
                    call.settle(outcome);
                }
            }
            Effect::Event { name, args } => dispatch(shared, &name, &parse_args(&args)),
            Effect::AppAck { handle, args } => {
                let f = shared.borrow_mut().acks.remove(handle);
                if let Some(f) = f {
                    js::call(&f, &JsValue::UNDEFINED, &parse_args(&args));
                }
            }
            Effect::Lifecycle(event) => lifecycle(shared, event),
        }
    }
    arm_timer(shared);
}

/// The arguments of an event or ack: the session hands over the text of a JSON array it has
/// already validated, so `JSON.parse` gives an array (an empty one should it ever fail).
fn parse_args(args: &str) -> Array {
    js::parse_json(&args.into()).map_or_else(|_| Array::new(), JsCast::unchecked_into)
}

/// Calls the listeners of `name` with `args` (once-listeners are removed first).
pub(crate) fn dispatch(shared: &Shared, name: &str, args: &Array) {
    let fs: Vec<Function> = {
        let mut inner = shared.borrow_mut();
        let fs = inner
            .listeners
            .iter()
            .filter(|l| l.name == name)
            .map(|l| l.f.clone())
            .collect();
        inner.listeners.retain(|l| !(l.once && l.name == name));
        fs
    };
    for f in fs {
        js::call(&f, &JsValue::UNDEFINED, args);
    }
}

fn lifecycle(shared: &Shared, event: Lifecycle) {
    let (name, arg): (&str, JsValue) = match event {
        Lifecycle::Connect => ("connect", JsValue::UNDEFINED),
        Lifecycle::Disconnect(reason) => ("disconnect", reason.into()),
        Lifecycle::ConnectError(payload) => ("connect_error", connect_error(&payload)),
        Lifecycle::ReconnectAttempt(n) => ("reconnect_attempt", n.into()),
        Lifecycle::Reconnect(n) => ("reconnect", n.into()),
        Lifecycle::ReconnectFailed => ("reconnect_failed", JsValue::UNDEFINED),
        Lifecycle::Error(message) => ("error", js::error(message)),
    };
    let args = if arg.is_undefined() {
        Array::new()
    } else {
        js::array(&[&arg])
    };
    dispatch(shared, name, &args);
}

/// socket.io-client's `connect_error` argument: an `Error` with the server's message and its
/// `data`.
fn connect_error(payload: &str) -> JsValue {
    let value = js::parse_json(&payload.into()).unwrap_or(JsValue::NULL);
    let message = match value.as_string() {
        Some(s) => s,
        None => js::get(&value, "message")
            .as_string()
            .unwrap_or_else(|| "connect_error".into()),
    };
    let error = js::error(&message);
    let data = js::get(&value, "data");
    if !data.is_undefined() {
        js::set(&error, "data", &data);
    }
    error
}

fn open_socket(shared: &Shared) {
    let url = shared.borrow().url.clone();
    let weak: Weak<RefCell<Inner>> = Rc::downgrade(shared);
    let handler = move |event: TransportEvent| {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        match event {
            TransportEvent::Open => drive(&shared, |s, now| s.on_open(now)),
            TransportEvent::Text(text) => drive(&shared, |s, now| s.on_frame(now, &text)),
            TransportEvent::Binary => drive(&shared, |s, now| s.on_binary_frame(now)),
            TransportEvent::Closed => drive(&shared, |s, now| s.on_close(now)),
        }
    };
    let old = shared.borrow_mut().transport.take();
    drop(old);
    match Transport::open(&url, Rc::new(handler)) {
        Ok(t) => shared.borrow_mut().transport = Some(t),
        // The browser refused the URL: the same as a connection that failed at once.
        Err(_) => drive(shared, |s, now| s.on_close(now)),
    }
}

/// One timer for the session's earliest deadline, replaced only when that comes earlier.
fn arm_timer(shared: &Shared) {
    let (deadline, armed) = {
        let inner = shared.borrow();
        (
            inner.session.next_deadline(),
            inner.timer.as_ref().map(|t| t.0),
        )
    };
    // A timer already armed for no later than the next deadline is kept: when it fires early,
    // `tick` acts only on what is due and the timer is armed again. So a request whose
    // deadline is later than the armed one (the usual case: same timeout, sent later) and a
    // request settling cost no clearTimeout/setTimeout pair each.
    if armed.is_some_and(|a| deadline.is_none_or(|d| d >= a)) {
        return;
    }
    let old = shared.borrow_mut().timer.take();
    drop(old);
    let Some(at) = deadline else {
        return;
    };
    let delay = at.saturating_sub(js::now()).min(i32::MAX as u64) as u32;
    let weak = Rc::downgrade(shared);
    let timeout = Timeout::new(delay, move || {
        if let Some(shared) = weak.upgrade() {
            let fired = shared.borrow_mut().timer.take();
            drive(&shared, |s, now| s.tick(now));
            drop(fired);
        }
    });
    shared.borrow_mut().timer = Some((at, timeout));
}
