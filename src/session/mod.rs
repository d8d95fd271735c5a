//! The connection's state machine, pure: inputs in, [`Effect`]s out.
//!
//! The shell (the browser layer) feeds the session what happens — the socket opened, a frame
//! arrived, the socket closed, time passed — and performs the effects it returns: open, send
//! and close the socket, settle requests, deliver events. Time is a millisecond count given
//! with each input, and [`Session::next_deadline`] tells the shell when to call
//! [`Session::tick`], so the shell runs one timer. Random numbers (the reconnection jitter)
//! come from a generator seeded through [`Config::seed`]. Nothing here touches I/O, so every
//! behaviour is tested natively on literal frames.
//!
//! The life of a connection: `OpenSocket` → the server's Engine.IO open packet `0{…}` → the
//! session sends the namespace CONNECT `40`/`40/nsp,` (with the auth payload) → the server
//! answers `40{"sid":…}` (connected: queued requests go out) or `44{…}` (refused). While
//! connected the server pings (`2`) and the session answers (`3`); no ping within
//! `pingInterval + pingTimeout` means the connection is dead. A dropped transport schedules a
//! reconnection ([`crate::backoff`]) and requests that were sent but not answered are sent
//! again after it (same payload, so the same `signature.requestId`, with a new ack id). A
//! server DISCONNECT (`41`) or a CONNECT_ERROR ends the session: pending requests fail.

use crate::prelude::*;

mod inbound;
mod requests;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_connection;

pub use types::{Config, Effect, Failure, FailureKind, Lifecycle, ReplyMode, Request, RequestId};

use crate::backoff::Backoff;
use crate::idmap::IdMap;
use crate::protocol::socketio::{SioKind, SioPacket};

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not started.
    Idle,
    /// A socket was asked for; waiting for the Engine.IO open packet.
    Opening,
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

/// An app `emit` waiting for the connection.
#[derive(Debug, Clone)]
struct AppEmit {
    data: String,
    ack: Option<u64>,
}

/// One socket.io connection to one namespace, with its requests. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: Config,
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
    next_request: RequestId,
    next_ack: u64,
    requests: IdMap<requests::Pending>,
    acks: IdMap<AckTarget>,
    /// Event mode: reply names still blocked by a request that timed out or was aborted, until
    /// its late reply arrives (and is swallowed) or the deadline passes.
    ghosts: Vec<(String, u64)>,
    app_queue: Vec<AppEmit>,
    effects: Vec<Effect>,
}

impl Session {
    /// A session that has not started; call [`Session::start`].
    pub fn new(config: Config) -> Self {
        let backoff = Backoff::new(
            config.reconnection_delay_ms,
            config.reconnection_delay_max_ms,
            config.randomization_factor,
        );
        let rng = config.seed | 1;
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
            next_request: 1,
            next_ack: 0,
            requests: IdMap::new(),
            acks: IdMap::new(),
            ghosts: Vec::new(),
            app_queue: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &Config {
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
        self.requests.len()
    }

    /// Starts connecting: asks for a socket. Does nothing once started.
    pub fn start(&mut self, now: u64) -> Vec<Effect> {
        if self.state == State::Idle {
            self.open_socket(now);
        }
        self.take()
    }

    /// The socket opened. The session waits for the server's open packet.
    pub fn on_open(&mut self, _now: u64) -> Vec<Effect> {
        self.take()
    }

    /// The socket closed or failed (the shell reports a socket's end once).
    pub fn on_close(&mut self, now: u64) -> Vec<Effect> {
        if matches!(
            self.state,
            State::Opening | State::Handshaking | State::Connected
        ) {
            self.lost(now, "transport close");
        }
        self.take()
    }

    /// Time passed: fires whatever deadline is due (reconnection, handshake, heartbeat,
    /// request timeouts).
    pub fn tick(&mut self, now: u64) -> Vec<Effect> {
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
        self.expire_requests(now);
        self.take()
    }

    /// The earliest time at which [`Session::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let requests = self.requests.iter().map(|(_, p)| p.deadline);
        let ghosts = self.ghosts.iter().map(|g| g.1);
        [
            self.reconnect_at,
            self.connect_deadline,
            self.heartbeat_deadline,
        ]
        .into_iter()
        .flatten()
        .chain(requests)
        .chain(ghosts)
        .min()
    }

    /// The app emits its own event: `name` with `args` (the text of a JSON array), and
    /// `ack` the app's handle for an acknowledgement callback. Queued while not connected.
    pub fn emit(&mut self, _now: u64, name: &str, args: &str, ack: Option<u64>) -> Vec<Effect> {
        let data = match requests::event_data(name, args) {
            Some(data) => data,
            None => {
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "emit arguments must be a JSON array",
                )));
                return self.take();
            }
        };
        let emit = AppEmit { data, ack };
        if self.state == State::Connected {
            self.send_app(emit);
        } else if self.state == State::Closed {
            self.push(Effect::Lifecycle(Lifecycle::Error(
                "emit on a closed socket",
            )));
        } else if self.app_queue.len() >= self.config.queue_size {
            self.push(Effect::Lifecycle(Lifecycle::Error("queue full")));
        } else {
            self.app_queue.push(emit);
        }
        self.take()
    }

    /// The client leaves: DISCONNECT (`41`) if connected, close the socket, fail every pending
    /// request with "disconnect". The session is then closed for good.
    pub fn close(&mut self, _now: u64) -> Vec<Effect> {
        let was = self.state;
        if was == State::Connected {
            let frame = self.packet(SioKind::Disconnect, None, None);
            self.push(Effect::Send(frame));
        }
        if matches!(was, State::Opening | State::Handshaking | State::Connected) {
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

    fn take(&mut self) -> Vec<Effect> {
        core::mem::take(&mut self.effects)
    }

    fn push(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    /// A frame for our namespace.
    fn packet(&self, kind: SioKind, ack_id: Option<u64>, data: Option<&str>) -> String {
        SioPacket {
            kind,
            namespace: &self.config.namespace,
            ack_id,
            data,
        }
        .to_frame()
    }

    fn open_socket(&mut self, now: u64) {
        self.state = State::Opening;
        self.connect_deadline = Some(now.saturating_add(self.config.connect_timeout_ms));
        self.push(Effect::OpenSocket);
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
        self.ghosts.clear();
        self.requeue_sent();
        if was_connected {
            self.push(Effect::Lifecycle(Lifecycle::Disconnect(reason)));
            if !self.config.reconnection {
                self.push(Effect::Lifecycle(Lifecycle::Error("connection lost")));
            }
        } else {
            self.connect_failed = true;
            let payload = crate::protocol::json::quote(reason);
            self.push(Effect::Lifecycle(Lifecycle::ConnectError(payload)));
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

    /// Ends the session for good, failing everything pending with `failure`.
    fn end(&mut self, failure: Failure) {
        self.state = State::Closed;
        self.sid = None;
        self.heartbeat_deadline = None;
        self.connect_deadline = None;
        self.reconnect_at = None;
        self.ghosts.clear();
        self.acks.clear();
        self.app_queue.clear();
        let pending: Vec<RequestId> = self.requests.drain().map(|(id, _)| id).collect();
        for id in pending {
            self.push(Effect::Settle {
                id,
                outcome: Err(failure.clone()),
            });
        }
    }
}
