//! The connection's state machine, pure: inputs in, [`Effect`]s out.
//!
//! The shell (the browser layer) feeds the session what happens — the socket opened, a frame
//! arrived, the socket closed, time passed — and performs the effects it returns: open, send
//! and close the socket, settle requests, deliver events. Time is a millisecond count given
//! with each input, and [`Session::next_deadline`] tells the shell when to call
//! [`Session::tick`], so the shell runs one timer. Random numbers (the reconnection jitter)
//! come from a generator seeded through [`Config::seed`]. Nothing here touches I/O, so every
//! behaviour is tested natively on literal frames. Bodies are [`Payload`] handles the session
//! never reads (see [`crate::payload`]).
//!
//! The life of a connection: `OpenSocket` → the server's Engine.IO open packet `0{…}` → the
//! session sends the namespace CONNECT `40`/`40/nsp,` (with the auth payload) → the server
//! answers `40{"sid":…}` (connected: events received meanwhile are delivered, queued requests
//! and emits go out) or `44{…}` (refused). While connected the server pings (`2`) and the
//! session answers (`3`); no ping within `pingInterval + pingTimeout` means the connection is
//! dead. A dropped transport schedules a reconnection ([`crate::backoff`]) and requests that
//! were sent but not answered are sent again after it (same payload, so the same
//! `signature.requestId`, with a new ack id). A server DISCONNECT (`41`) or a CONNECT_ERROR
//! ends the session: pending requests fail. When the auth payload is computed per connection
//! ([`Config::auth_provider`]) both are followed by a reconnection instead, with a fresh
//! payload: a DISCONNECT (a token's expiry) as a dropped transport is, unanswered requests
//! kept; a CONNECT_ERROR failing what was waiting.
//!
//! Every per-request operation is O(1) or O(log n) in the number of pending requests: the
//! table is keyed by id, deadlines sit in an ordered set, and queues are FIFOs.

mod inbound;
mod requests;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_connection;
#[cfg(test)]
mod tests_scale;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

pub use types::{
    Config, ConnectError, Effect, Failure, FailureKind, Lifecycle, Reply, ReplyMode, Request,
    RequestId,
};

use crate::backoff::Backoff;
use crate::payload::Payload;
use crate::protocol::socketio::{self, SioKind};
use requests::RequestTable;

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started.
    Idle,
    /// A socket was asked for; waiting for the Engine.IO open packet.
    Opening,
    /// The Engine.IO session is open; the auth payload is being computed (see
    /// [`Config::auth_provider`]).
    Authorizing,
    /// The Engine.IO session is open and the namespace CONNECT was sent.
    Handshaking,
    /// The namespace is joined: requests flow.
    Connected,
    /// The transport dropped; a reconnection is scheduled.
    Waiting,
    /// Ended for good (client close, server disconnect, refusal, or no more attempts).
    Closed,
}

/// What an ack id answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckTarget {
    Request(RequestId),
    App(u64),
}

/// A deadline in the ordered timer set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A request's timeout.
    Request(RequestId),
    /// An app emit's ack timeout (by the app's handle).
    App(u64),
    /// The end of an event-mode ghost (see [`requests`]).
    Ghost(u64),
}

/// An app `emit` waiting for the connection: its `["name", …args]` and its ack handle.
#[derive(Debug, Clone)]
struct AppEmit<P> {
    data: P,
    ack: Option<u64>,
}

/// An event received before the namespace CONNECT was confirmed, delivered after it.
#[derive(Debug, Clone)]
struct Received<P> {
    name: String,
    data: P,
    ack: Option<u64>,
}

/// One socket.io connection to one namespace, with its requests. See the module docs.
#[derive(Debug)]
pub struct Session<P: Payload> {
    config: Config<P>,
    state: State,
    backoff: Backoff,
    rng: u64,
    sid: Option<String>,
    max_payload: u64,
    ping_window_ms: u64,
    /// Whether the latest connection attempt failed (queued requests that time out then
    /// report "connect_error": they never reached a server).
    connect_failed: bool,
    heartbeat_deadline: Option<u64>,
    connect_deadline: Option<u64>,
    reconnect_at: Option<u64>,
    next_ack: u64,
    table: RequestTable<P>,
    acks: HashMap<u64, AckTarget>,
    /// Deadlines of requests, app acks and ghosts, earliest first. Entries of what settled
    /// before its deadline stay until popped (then skipped) or until [`Session::add_timer`]
    /// compacts the heap, so settling costs nothing here.
    timers: BinaryHeap<Reverse<(u64, Timer)>>,
    /// App ack handles whose callback has not been called yet (by an ack or a timeout).
    app_waiting: HashSet<u64>,
    app_queue: VecDeque<AppEmit<P>>,
    receive_buffer: Vec<Received<P>>,
    effects: Vec<Effect<P>>,
    /// How many table entries the session visited: the scale tests bound it.
    steps: u64,
}

impl<P: Payload> Session<P> {
    /// A session that has not started; call [`Session::start`].
    pub fn new(config: Config<P>) -> Self {
        let backoff = Backoff::new(
            config.reconnection_delay_ms,
            config.reconnection_delay_max_ms,
            config.randomization_factor,
        );
        let rng = config.seed | 1;
        let table = RequestTable::new();
        Session {
            config,
            state: State::Idle,
            backoff,
            rng,
            sid: None,
            max_payload: 0,
            ping_window_ms: 0,
            connect_failed: false,
            heartbeat_deadline: None,
            connect_deadline: None,
            reconnect_at: None,
            next_ack: 0,
            table,
            acks: HashMap::new(),
            timers: BinaryHeap::new(),
            app_waiting: HashSet::new(),
            app_queue: VecDeque::new(),
            receive_buffer: Vec::new(),
            effects: Vec::new(),
            steps: 0,
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &Config<P> {
        &self.config
    }

    /// Whether the namespace is joined.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the session has ended for good.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The namespace connection's sid, while connected.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// How many requests are pending (queued, in flight, or waiting for their reply name).
    pub fn pending(&self) -> usize {
        self.table.len()
    }

    /// How many table entries the session has visited so far (a measure of its work that
    /// does not depend on the machine: see the scale tests).
    pub fn steps(&self) -> u64 {
        self.steps + self.table.steps
    }

    /// Starts connecting: asks for a socket. Does nothing once started.
    pub fn start(&mut self, now: u64) -> Vec<Effect<P>> {
        if self.state == State::Idle {
            self.open_socket(now);
        }
        self.take()
    }

    /// The socket opened. The session waits for the server's open packet.
    pub fn on_open(&mut self, _now: u64) -> Vec<Effect<P>> {
        self.take()
    }

    /// The socket closed or failed (the shell reports a socket's end once).
    pub fn on_close(&mut self, now: u64) -> Vec<Effect<P>> {
        if self.transport_up() {
            self.lost(now, "transport close");
        }
        self.take()
    }

    /// The auth payload computed for this connection attempt (after [`Effect::Authorize`]):
    /// the namespace CONNECT goes out with it.
    pub fn set_auth(&mut self, _now: u64, auth: Option<P>) -> Vec<Effect<P>> {
        if self.state == State::Authorizing {
            self.send_connect(auth);
        }
        self.take()
    }

    /// Time passed: fires whatever deadline is due (reconnection, handshake, heartbeat,
    /// request and ack timeouts).
    pub fn tick(&mut self, now: u64) -> Vec<Effect<P>> {
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            let attempt = self.backoff.attempts();
            self.push(Effect::Lifecycle(Lifecycle::ReconnectAttempt(attempt)));
            self.open_socket(now);
        }
        if self.connect_deadline.is_some_and(|t| t <= now) {
            self.push(Effect::CloseSocket);
            self.lost(now, "timeout");
        }
        if self.heartbeat_deadline.is_some_and(|t| t <= now) {
            self.push(Effect::CloseSocket);
            self.lost(now, "ping timeout");
        }
        while let Some(&Reverse((at, timer))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.steps += 1;
            match timer {
                Timer::Request(id) => self.expire_request(now, id),
                Timer::Ghost(ghost) => self.expire_ghost(ghost),
                Timer::App(handle) => self.answer_app(handle, None),
            }
        }
        self.take()
    }

    /// The earliest time at which [`Session::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.reconnect_at,
            self.connect_deadline,
            self.heartbeat_deadline,
            self.timers.peek().map(|t| t.0 .0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The app emits its own event: `data` is its array `["name", …args]` (JSON text), `ack`
    /// the app's handle for an acknowledgement callback, and `ack_timeout_ms` how long that
    /// callback waits (then it gets [`Effect::AppAck`] with no arguments). Buffered while not
    /// connected and sent on connect, as socket.io-client's `sendBuffer`.
    pub fn emit(
        &mut self,
        now: u64,
        data: impl Into<P>,
        ack: Option<u64>,
        ack_timeout_ms: Option<u64>,
    ) -> Vec<Effect<P>> {
        let data = data.into();
        if self.state == State::Closed {
            self.push(Effect::Lifecycle(Lifecycle::Error(
                "emit on a closed socket",
            )));
            return self.take();
        }
        if self.state != State::Connected && self.app_queue.len() >= self.config.queue_size {
            self.push(Effect::Lifecycle(Lifecycle::Error("queue full")));
            return self.take();
        }
        if let Some(handle) = ack {
            self.app_waiting.insert(handle);
            if let Some(ms) = ack_timeout_ms {
                self.add_timer(now.saturating_add(ms), Timer::App(handle));
            }
        }
        let emit = AppEmit { data, ack };
        if self.state == State::Connected {
            self.send_app(emit);
        } else {
            self.app_queue.push_back(emit);
        }
        self.take()
    }

    /// Answers the server's event that asked for an acknowledgement ([`Effect::Event`]'s
    /// `ack`): `args` is the JSON array of the answer's arguments.
    pub fn ack(&mut self, _now: u64, ack_id: u64, args: impl Into<P>) -> Vec<Effect<P>> {
        let args = args.into();
        if self.state == State::Connected {
            let head = socketio::head(SioKind::Ack, &self.config.namespace, Some(ack_id));
            self.push(Effect::Send(P::wrap(&head, &args, "")));
        }
        self.take()
    }

    /// The client leaves: DISCONNECT (`41`) if connected, close the socket, fail every pending
    /// request with "disconnect". The session is then closed for good.
    pub fn close(&mut self, _now: u64) -> Vec<Effect<P>> {
        let was = self.state;
        if was == State::Connected {
            let frame = socketio::head(SioKind::Disconnect, &self.config.namespace, None);
            self.push(Effect::Send(P::from_text(&frame)));
        }
        if self.transport_up() {
            self.push(Effect::CloseSocket);
        }
        if was == State::Connected {
            self.push(Effect::Lifecycle(Lifecycle::Disconnect(
                "io client disconnect",
            )));
        }
        self.end(Failure::of(FailureKind::Disconnect));
        self.take()
    }

    /// Schedules `timer` at `at`. When stale entries (of what settled early) outnumber the
    /// live ones, the heap is rebuilt from the live ones: O(n) once per n settlements.
    fn add_timer(&mut self, at: u64, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
        let live = self.table.len() + self.app_waiting.len() + self.table.ghosts.len();
        if self.timers.len() > 2 * live + 64 {
            let (table, app) = (&self.table, &self.app_waiting);
            self.steps += self.timers.len() as u64;
            self.timers.retain(|Reverse((at, timer))| match timer {
                Timer::Request(id) => table.get(*id).is_some_and(|p| p.deadline == *at),
                Timer::App(handle) => app.contains(handle),
                Timer::Ghost(ghost) => table.ghosts.contains_key(ghost),
            });
        }
    }

    fn take(&mut self) -> Vec<Effect<P>> {
        std::mem::take(&mut self.effects)
    }

    fn push(&mut self, effect: Effect<P>) {
        self.effects.push(effect);
    }

    fn transport_up(&self) -> bool {
        matches!(
            self.state,
            State::Opening | State::Authorizing | State::Handshaking | State::Connected
        )
    }

    fn open_socket(&mut self, now: u64) {
        self.state = State::Opening;
        self.connect_deadline = Some(now.saturating_add(self.config.connect_timeout_ms));
        self.push(Effect::OpenSocket);
    }

    /// Sends the namespace CONNECT with `auth`.
    fn send_connect(&mut self, auth: Option<P>) {
        let head = socketio::head(SioKind::Connect, &self.config.namespace, None);
        let frame = match &auth {
            Some(auth) => P::wrap(&head, auth, ""),
            None => P::from_text(&head),
        };
        self.push(Effect::Send(frame));
        self.state = State::Handshaking;
    }

    /// A uniform random number in `[0, 1)` (xorshift64*).
    fn random(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The transport is gone (already closed, or asked to close just before): reconnect or end.
    fn lost(&mut self, now: u64, reason: &'static str) {
        let was_connected = self.state == State::Connected;
        self.sid = None;
        self.heartbeat_deadline = None;
        self.connect_deadline = None;
        self.receive_buffer.clear();
        self.requeue_sent();
        if was_connected {
            self.push(Effect::Lifecycle(Lifecycle::Disconnect(reason)));
            if !self.config.reconnection {
                self.push(Effect::Lifecycle(Lifecycle::Error("connection lost")));
            }
        } else {
            self.connect_failed = true;
            let error = ConnectError::Transport(reason);
            self.push(Effect::Lifecycle(Lifecycle::ConnectError(error)));
            self.push(Effect::Lifecycle(Lifecycle::Error("connection failed")));
        }
        if !self.config.reconnection {
            let kind = match (reason, was_connected) {
                ("parse error", _) => FailureKind::Protocol,
                (_, true) => FailureKind::Disconnect,
                (_, false) => FailureKind::ConnectError,
            };
            self.end(Failure::of(kind));
        } else if self.backoff.attempts() >= self.config.reconnection_attempts {
            self.backoff.reset();
            self.push(Effect::Lifecycle(Lifecycle::ReconnectFailed));
            self.end(Failure::of(FailureKind::ConnectError));
        } else {
            let random = self.random();
            let delay = self.backoff.next_delay(random);
            self.reconnect_at = Some(now.saturating_add(delay));
            self.state = State::Waiting;
        }
    }

    /// Schedules a reconnection after a refused CONNECT when the auth is computed per
    /// connection (it may be right next time); `failure` fails what was waiting otherwise.
    fn refused(&mut self, now: u64, failure: Failure<P>) {
        let retry = self.config.auth_provider
            && self.config.reconnection
            && self.backoff.attempts() < self.config.reconnection_attempts;
        self.sid = None;
        self.heartbeat_deadline = None;
        self.connect_deadline = None;
        self.receive_buffer.clear();
        if !retry {
            self.end(failure);
            return;
        }
        self.connect_failed = true;
        self.fail_requests(&failure);
        let random = self.random();
        let delay = self.backoff.next_delay(random);
        self.reconnect_at = Some(now.saturating_add(delay));
        self.state = State::Waiting;
    }

    /// Ends the session for good, failing everything pending with `failure`.
    fn end(&mut self, failure: Failure<P>) {
        self.state = State::Closed;
        self.sid = None;
        self.heartbeat_deadline = None;
        self.connect_deadline = None;
        self.reconnect_at = None;
        self.acks.clear();
        self.app_queue.clear();
        self.receive_buffer.clear();
        self.timers.clear();
        self.app_waiting.clear();
        self.fail_requests(&failure);
    }

    /// Fails every pending request with `failure`.
    fn fail_requests(&mut self, failure: &Failure<P>) {
        for id in self.table.drain() {
            self.effects.push(Effect::Settle {
                id,
                outcome: Err(failure.clone()),
            });
        }
    }
}
