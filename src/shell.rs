//! The shell around one [`Session`]: performs its effects with the browser's WebSocket and one
//! timer, and hands results to JavaScript.
//!
//! Re-entrancy rule: no `RefCell` borrow is held while JavaScript runs. Every effect that calls
//! app code (a success callback, a listener) first takes what it needs out of the shared state,
//! ends the borrow, then calls — so a callback may call `sync` or `emit` again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Array, Function, JsString, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::session::{ConnectError, Effect, Lifecycle, RequestId, Session};
use crate::socket;
use crate::transport::{Transport, TransportEvent};
use crate::xhr::Call;

/// The shared state of one connection.
pub(crate) type Shared = Rc<RefCell<Conn>>;

/// An app ack callback, and whether it was emitted with a timeout (then it gets an error
/// first: `(err, ...args)`, as socket.io-client's `timeout(ms).emit(..., cb)`).
struct AppAck {
    f: Function,
    timed: bool,
}

/// A connection's state: the pure session plus the browser resources and JS callbacks.
pub(crate) struct Conn {
    pub(crate) session: Session<JsString>,
    url: String,
    /// The app's `auth` function, called at every (re)connection.
    auth: Option<Function>,
    transport: Option<Transport>,
    /// Frames the session sent during the current run of JavaScript, written to the socket
    /// together at its end (see [`send`]).
    outbox: Vec<JsString>,
    /// `flush` for this connection, as a JS function (made on first use), and whether it is
    /// queued as a microtask.
    flusher: Option<Function>,
    flush_queued: bool,
    timer: Option<(u64, Timeout)>,
    calls: HashMap<RequestId, Call>,
    acks: HashMap<u64, AppAck>,
    next_handle: u64,
}

impl Conn {
    /// A connection to the Engine.IO WebSocket `url`, not started.
    pub(crate) fn new(session: Session<JsString>, url: String, auth: Option<Function>) -> Shared {
        Rc::new(RefCell::new(Conn {
            session,
            url,
            auth,
            transport: None,
            outbox: Vec::new(),
            flusher: None,
            flush_queued: false,
            timer: None,
            calls: HashMap::new(),
            acks: HashMap::new(),
            next_handle: 0,
        }))
    }

    /// Keeps the JS side of a request until the session settles it.
    pub(crate) fn add_call(&mut self, id: RequestId, call: Call) {
        self.calls.insert(id, call);
    }

    /// The xhr of pending request `id`, if the connection holds it.
    pub(crate) fn call_xhr(&self, id: RequestId) -> Option<JsValue> {
        self.calls.get(&id).map(Call::xhr)
    }

    /// Keeps an app ack callback; returns its handle for the session.
    pub(crate) fn add_ack(&mut self, f: Function, timed: bool) -> u64 {
        self.next_handle += 1;
        self.acks.insert(self.next_handle, AppAck { f, timed });
        self.next_handle
    }
}

/// Feeds one input to the session and performs the resulting effects.
pub(crate) fn drive(
    shared: &Shared,
    input: impl FnOnce(&mut Session<JsString>, u64) -> Vec<Effect<JsString>>,
) {
    let effects = {
        let mut conn = shared.borrow_mut();
        input(&mut conn.session, js::now())
    };
    apply(shared, effects);
}

/// Performs effects in order, then re-arms the timer for the session's next deadline.
pub(crate) fn apply(shared: &Shared, effects: Vec<Effect<JsString>>) {
    for effect in effects {
        match effect {
            Effect::OpenSocket => open_socket(shared),
            Effect::Send(text) => send(shared, text),
            Effect::CloseSocket => {
                flush(shared);
                let old = shared.borrow_mut().transport.take();
                drop(old);
            }
            Effect::Authorize => authorize(shared),
            Effect::Settle { id, outcome } => {
                let call = shared.borrow_mut().calls.remove(&id);
                if let Some(call) = call {
                    call.settle(outcome);
                }
            }
            Effect::Event { name, data, ack } => event(shared, &name, &data, ack),
            Effect::AppAck { handle, args } => {
                let ack = shared.borrow_mut().acks.remove(&handle);
                if let Some(ack) = ack {
                    app_ack(ack, args);
                }
            }
            Effect::Lifecycle(event) => lifecycle(event),
        }
    }
    arm_timer(shared);
}

/// Queues a frame for the socket. The frames of one run of JavaScript (a burst of `save`s, the
/// requests a success callback makes) are written together in a microtask at its end, as
/// socket.io-client does: one `ws.send` each still, but back to back. Measured in the bench's
/// 1,000-creates burst, a send spaced out by the app's work between two `sync` calls cost 2-4
/// times one of a tight run of sends. The microtask runs before any other task, so no event of
/// the socket (a reply, a close) can come in between.
fn send(shared: &Shared, text: JsString) {
    let schedule = {
        let mut conn = shared.borrow_mut();
        conn.outbox.push(text);
        if conn.flush_queued {
            None
        } else {
            conn.flush_queued = true;
            if conn.flusher.is_none() {
                let weak = Rc::downgrade(shared);
                let flusher = Closure::<dyn Fn()>::new(move || {
                    if let Some(shared) = weak.upgrade() {
                        flush(&shared);
                    }
                });
                conn.flusher = Some(flusher.into_js_value().unchecked_into());
            }
            conn.flusher.clone()
        }
    };
    if let Some(flusher) = schedule {
        js::queue_microtask(&flusher);
    }
}

/// Writes the queued frames to the socket, in order (at the end of a run of JavaScript, and
/// before the socket is closed or replaced).
fn flush(shared: &Shared) {
    let (frames, sender) = {
        let mut conn = shared.borrow_mut();
        conn.flush_queued = false;
        let frames = std::mem::take(&mut conn.outbox);
        (frames, conn.transport.as_ref().map(Transport::sender))
    };
    if let Some(sender) = sender {
        for frame in &frames {
            sender.send(frame);
        }
    }
}

/// An event from the server: its arguments parsed once, an ack function last when the server
/// asked for one, then the app's listeners.
fn event(shared: &Shared, name: &str, data: &JsString, ack: Option<u64>) {
    let Ok(array) = js::parse(data) else {
        socket::dispatch("error", &Array::of1(&js::error("unreadable event")));
        return;
    };
    let args = array.unchecked_into::<Array>().slice(1, u32::MAX);
    if let Some(ack_id) = ack {
        let weak = Rc::downgrade(shared);
        // The listener calls it with its answer's arguments: `ack(...args)` → `43<id>[...args]`
        // (up to four; trailing `undefined`s are dropped, as JSON would write them `null`).
        type Ack = dyn Fn(JsValue, JsValue, JsValue, JsValue);
        let reply = Closure::<Ack>::new(move |a, b, c, d| {
            let answer: Vec<JsValue> = [a, b, c, d].into_iter().collect();
            let used = answer
                .iter()
                .rposition(|v| !v.is_undefined())
                .map_or(0, |i| i + 1);
            let answer: Array = answer[..used].iter().collect();
            let (Some(shared), Ok(text)) = (weak.upgrade(), JSON::stringify(&answer)) else {
                return;
            };
            drive(&shared, |s, now| s.ack(now, ack_id, text));
        });
        args.push(&reply.into_js_value());
    }
    socket::dispatch(name, &args);
}

/// Calls an app's ack callback with the server's answer, or (emitted with a timeout) with
/// the timeout error.
fn app_ack(ack: AppAck, args: Option<JsString>) {
    let values = match args.map(|a| js::parse(&a)) {
        Some(Ok(values)) => values.unchecked_into::<Array>(),
        Some(Err(_)) => Array::of1(&js::error("unreadable ack")),
        None if ack.timed => Array::of1(&js::error("operation has timed out")),
        None => return,
    };
    if ack.timed && values.length() > 0 && !js::get(&values, "0").is_instance_of::<js_sys::Error>()
    {
        values.unshift(&JsValue::NULL);
    } else if ack.timed && values.length() == 0 {
        values.push(&JsValue::NULL);
    }
    js::call(&ack.f, &JsValue::UNDEFINED, &values);
}

/// Asks the app's `auth` function for this attempt's payload: `auth(cb)` calling back with
/// an object, or returning a Promise of one.
fn authorize(shared: &Shared) {
    let auth = shared.borrow().auth.clone();
    let weak = Rc::downgrade(shared);
    let done = Closure::<dyn Fn(JsValue)>::new(move |value: JsValue| {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let text = socket::connect_payload(&value).ok();
        drive(&shared, |s, now| s.set_auth(now, text));
    })
    .into_js_value()
    .unchecked_into::<Function>();
    match auth {
        Some(auth) => ask(&auth, &done),
        None => {
            let _ = done.call1(&JsValue::UNDEFINED, &JsValue::UNDEFINED);
        }
    }
}

/// Asks the app's `auth` function for a payload outside any connection attempt, only so that
/// its token is the one the XHR fallback sends (see [`crate::install`]): a socket that cannot
/// open never gets to ask. Nothing without an `auth` function.
pub(crate) fn refresh_token(shared: &Shared) {
    let Some(auth) = shared.borrow().auth.clone() else {
        return;
    };
    let done = Closure::<dyn Fn(JsValue)>::new(|value: JsValue| {
        let _ = socket::connect_payload(&value);
    })
    .into_js_value()
    .unchecked_into::<Function>();
    ask(&auth, &done);
}

/// Calls `auth(done)`; when it returns a Promise (thenable), `done` also gets what it
/// resolves to. One that throws is reported as `error` and `done` gets `undefined`.
fn ask(auth: &Function, done: &Function) {
    match auth.call1(&JsValue::UNDEFINED, done) {
        Ok(returned) => {
            if js::get(&returned, "then").is_function() {
                let thenable = returned.unchecked_ref::<js::Thenable>();
                thenable.then(done, &JsValue::UNDEFINED);
            }
        }
        Err(e) => {
            socket::dispatch("error", &Array::of1(&e));
            let _ = done.call1(&JsValue::UNDEFINED, &JsValue::UNDEFINED);
        }
    }
}

fn lifecycle(event: Lifecycle<JsString>) {
    let (name, arg): (&str, JsValue) = match event {
        Lifecycle::Connect => ("connect", JsValue::UNDEFINED),
        Lifecycle::Disconnect(reason) => ("disconnect", reason.into()),
        Lifecycle::ConnectError(error) => ("connect_error", connect_error(error)),
        Lifecycle::ReconnectAttempt(n) => ("reconnect_attempt", n.into()),
        Lifecycle::Reconnect(n) => ("reconnect", n.into()),
        Lifecycle::ReconnectFailed => ("reconnect_failed", JsValue::UNDEFINED),
        Lifecycle::Error(message) => ("error", js::error(message)),
    };
    let args = if arg.is_undefined() {
        Array::new()
    } else {
        Array::of1(&arg)
    };
    socket::dispatch(name, &args);
}

/// socket.io-client's `connect_error` argument: an `Error` with the server's message and its
/// `data`, or the transport's reason.
fn connect_error(error: ConnectError<JsString>) -> JsValue {
    match error {
        ConnectError::Transport(reason) => js::error(reason),
        ConnectError::Refused { body, message } => {
            let error = js::error(message.as_deref().unwrap_or("connect_error"));
            let data = js::parse(&body).map_or(JsValue::UNDEFINED, |v| js::get(&v, "data"));
            if !data.is_undefined() {
                js::set(&error, "data", &data);
            }
            error
        }
    }
}

fn open_socket(shared: &Shared) {
    let url = shared.borrow().url.clone();
    let weak: Weak<RefCell<Conn>> = Rc::downgrade(shared);
    let handler = move |event: TransportEvent| {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        match event {
            TransportEvent::Open => drive(&shared, |s, now| s.on_open(now)),
            TransportEvent::Text(text) => drive(&shared, |s, now| s.on_frame(now, text)),
            TransportEvent::Binary => drive(&shared, |s, now| s.on_binary_frame(now)),
            TransportEvent::Closed => drive(&shared, |s, now| s.on_close(now)),
        }
    };
    flush(shared);
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
        let conn = shared.borrow();
        (
            conn.session.next_deadline(),
            conn.timer.as_ref().map(|t| t.0),
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
            // Dropped once it has run (wasm-bindgen frees a running closure after its call).
            drop(fired);
        }
    });
    shared.borrow_mut().timer = Some((at, timeout));
}
