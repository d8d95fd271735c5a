//! The session's vocabulary: its configuration, the requests it carries and the effects it asks
//! the shell to perform.

use crate::prelude::*;

/// How the server answers a request (the `replies` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// `42<id>["create",{…}]`, answered by `43<id>[err, result]` (the default).
    Ack,
    /// `42["create",{…}]`, answered by the event `create:<endPoint>[:<ctx>]`.
    Event,
}

/// The connection options (socket.io-client's defaults in [`Config::default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The namespace to join, `/` by default.
    pub namespace: String,
    /// The CONNECT packet's auth payload, as JSON object text.
    pub auth: Option<String>,
    /// How the server answers requests.
    pub replies: ReplyMode,
    /// The default per-request timeout in ms (10000).
    pub timeout_ms: u64,
    /// How many requests may wait while the socket is not connected (1000).
    pub queue_size: usize,
    /// Whether to reconnect after the transport drops (true).
    pub reconnection: bool,
    /// How many reconnection attempts before giving up (`u32::MAX`: unlimited).
    pub reconnection_attempts: u32,
    /// The first reconnection delay in ms (1000).
    pub reconnection_delay_ms: f64,
    /// The largest reconnection delay in ms (5000).
    pub reconnection_delay_max_ms: f64,
    /// The reconnection delay's randomization factor (0.5).
    pub randomization_factor: f64,
    /// How long the transport + namespace handshake may take, in ms (20000).
    pub connect_timeout_ms: u64,
    /// Seed of the random numbers that jitter the reconnection delays.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: "/".to_owned(),
            auth: None,
            replies: ReplyMode::Ack,
            timeout_ms: 10_000,
            queue_size: 1000,
            reconnection: true,
            reconnection_attempts: u32::MAX,
            reconnection_delay_ms: 1000.0,
            reconnection_delay_max_ms: 5000.0,
            randomization_factor: 0.5,
            connect_timeout_ms: 20_000,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// One Backbone request: an event named for the method with one JSON argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `create`, `read`, `update`, `patch` or `delete` (the event name).
    pub method: String,
    /// The endpoint (`signature.endPoint`), which names the reply in event mode.
    pub endpoint: String,
    /// The optional context (`signature.ctx`), which also names the reply in event mode.
    pub ctx: Option<String>,
    /// The event's argument, `{"signature":…,"item":…}`, as JSON text.
    pub payload: String,
    /// This request's timeout in ms, overriding [`Config::timeout_ms`].
    pub timeout_ms: Option<u64>,
}

impl Request {
    /// The event that answers this request in [`ReplyMode::Event`]: `<method>:<endPoint>[:<ctx>]`.
    pub fn reply_name(&self) -> String {
        let mut name = String::with_capacity(self.method.len() + self.endpoint.len() + 2);
        name.push_str(&self.method);
        name.push(':');
        name.push_str(&self.endpoint);
        if let Some(ctx) = &self.ctx {
            name.push(':');
            name.push_str(ctx);
        }
        name
    }
}

/// The handle of a request, returned by [`super::Session::request`].
pub type RequestId = u64;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with an error.
    Server,
    /// No answer within the request's timeout.
    Timeout,
    /// The app aborted the request.
    Abort,
    /// The connection ended for good (server or client disconnect, or reconnection disabled).
    Disconnect,
    /// The connection could not be made (CONNECT_ERROR, or reconnection attempts exhausted).
    ConnectError,
    /// Too many requests waiting for the connection.
    QueueFull,
    /// The server sent something this client cannot read.
    Protocol,
}

impl FailureKind {
    /// The xhr-like `statusText` for this failure (for [`FailureKind::Server`], `"error"`).
    pub fn status_text(self) -> &'static str {
        match self {
            FailureKind::Server => "error",
            FailureKind::Timeout => "timeout",
            FailureKind::Abort => "abort",
            FailureKind::Disconnect => "disconnect",
            FailureKind::ConnectError => "connect_error",
            FailureKind::QueueFull => "queue full",
            FailureKind::Protocol => "protocol error",
        }
    }
}

/// A failed request, in the terms of an xhr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Why it failed.
    pub kind: FailureKind,
    /// The HTTP-like status: the server's `status` for a server error, else 0.
    pub status: u16,
    /// The error payload as JSON text (the xhr's `responseJSON` / `responseText`), if any.
    pub body: Option<String>,
    /// The server's error `message`, if it sent one.
    pub message: Option<String>,
}

impl Failure {
    /// A transport-level failure (status 0, no body).
    pub fn of(kind: FailureKind) -> Self {
        Failure {
            kind,
            status: 0,
            body: None,
            message: None,
        }
    }
}

/// A change in the connection that the app may listen for (socket.io-client's event names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle {
    /// `connect`: the namespace is joined.
    Connect,
    /// `disconnect` with its reason (`"io server disconnect"`, `"transport close"`, …).
    Disconnect(&'static str),
    /// `connect_error` with its payload as JSON text (the server's object, or a reason string).
    ConnectError(String),
    /// `reconnect_attempt` with the attempt number.
    ReconnectAttempt(u32),
    /// `reconnect` after the given number of attempts.
    Reconnect(u32),
    /// `reconnect_failed`: attempts exhausted.
    ReconnectFailed,
    /// `error`: something the app should know (a bad frame, a full emit queue).
    Error(&'static str),
}

/// What the session asks its shell to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open a new WebSocket (dropping any previous one).
    OpenSocket,
    /// Send this text frame on the open WebSocket.
    Send(String),
    /// Close the WebSocket; no further events from it are wanted.
    CloseSocket,
    /// Settle a request: the result as JSON text, or the failure.
    Settle {
        /// The request.
        id: RequestId,
        /// Its result.
        outcome: Result<String, Failure>,
    },
    /// An event for the app's listeners: its name and arguments (a JSON array's text).
    Event {
        /// The event name.
        name: String,
        /// The arguments, as the text of a JSON array.
        args: String,
    },
    /// The ack of an app `emit`: the handle the app gave and the ack's arguments (JSON array).
    AppAck {
        /// The app's handle from [`super::Session::emit`].
        handle: u64,
        /// The ack's arguments, as the text of a JSON array.
        args: String,
    },
    /// A lifecycle event for the app's listeners.
    Lifecycle(Lifecycle),
}
