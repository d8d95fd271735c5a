//! The session's vocabulary: its configuration, the requests it carries and the effects it asks
//! the shell to perform.

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
pub struct Config<P> {
    /// The namespace to join, `/` by default.
    pub namespace: String,
    /// The CONNECT packet's auth payload, as JSON object text (see also
    /// [`super::Session::set_auth`], for auth computed at each connection).
    pub auth: Option<P>,
    /// Whether the auth payload is computed anew for every connection attempt (the app's
    /// `auth` is a function): the session asks with [`Effect::Authorize`] and waits for
    /// [`super::Session::set_auth`]; a refused CONNECT is then retried, and a server
    /// DISCONNECT (as at a token's expiry) is followed by a reconnection.
    pub auth_provider: bool,
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

impl<P> Default for Config<P> {
    fn default() -> Self {
        Config {
            namespace: "/".to_owned(),
            auth: None,
            auth_provider: false,
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
pub struct Request<P> {
    /// `create`, `read`, `update`, `patch` or `delete` (the event name).
    pub method: String,
    /// The endpoint (`signature.endPoint`), which names the reply in event mode.
    pub endpoint: String,
    /// The optional context (`signature.ctx`), which also names the reply in event mode.
    pub ctx: Option<String>,
    /// The event's argument, `{"signature":…,"item":…}`, as JSON text: sent as it is, and sent
    /// again unchanged (same `requestId`) after a reconnection.
    pub payload: P,
    /// This request's timeout in ms, overriding [`Config::timeout_ms`].
    pub timeout_ms: Option<u64>,
}

impl<P> Request<P> {
    /// The event that answers this request in [`ReplyMode::Event`]: `<method>:<endPoint>[:<ctx>]`.
    pub fn reply_name(&self) -> String {
        match &self.ctx {
            Some(ctx) => format!("{}:{}:{}", self.method, self.endpoint, ctx),
            None => format!("{}:{}", self.method, self.endpoint),
        }
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
    /// The server refused the connection with the message `unauthorized` (status 401).
    Unauthorized,
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
            FailureKind::Unauthorized => "unauthorized",
        }
    }
}

/// A request the session failed (the server's own error replies are read at the edge, from
/// the [`Reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<P> {
    /// Why it failed.
    pub kind: FailureKind,
    /// The HTTP-like status: 413 for a request larger than the server accepts, else 0.
    pub status: u16,
    /// The server's CONNECT_ERROR body (JSON text) when it refused the connection.
    pub body: Option<P>,
    /// The server's error `message`, if it sent one.
    pub message: Option<String>,
}

impl<P> Failure<P> {
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

/// The server's answer to a request, unread: the edge parses it and tells a success from an
/// error with JavaScript's own truthiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<P> {
    /// Ack mode: the ACK's array `[err, result]`.
    Ack(P),
    /// Event mode: the reply event's array `["<method>:<endPoint>", result]`.
    Event(P),
}

/// A change in the connection that the app may listen for (socket.io-client's event names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lifecycle<P> {
    /// `connect`: the namespace is joined.
    Connect,
    /// `disconnect` with its reason (`"io server disconnect"`, `"transport close"`, …).
    Disconnect(&'static str),
    /// `connect_error`: the server's CONNECT_ERROR body (JSON text), or the transport's reason.
    ConnectError(ConnectError<P>),
    /// `reconnect_attempt` with the attempt number.
    ReconnectAttempt(u32),
    /// `reconnect` after the given number of attempts.
    Reconnect(u32),
    /// `reconnect_failed`: attempts exhausted.
    ReconnectFailed,
    /// `error`: something the app should know (a bad frame, a full emit queue).
    Error(&'static str),
}

/// Why a connection attempt failed, for `connect_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError<P> {
    /// The server refused the namespace.
    Refused {
        /// Its CONNECT_ERROR body (`{"message", "data"?}`, or a string), unread.
        body: P,
        /// The message in it, decoded.
        message: Option<String>,
    },
    /// The transport failed or timed out (`"transport close"`, `"timeout"`, …).
    Transport(&'static str),
}

/// What the session asks its shell to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P> {
    /// Open a new WebSocket (dropping any previous one).
    OpenSocket,
    /// Send this text frame on the open WebSocket.
    Send(P),
    /// Close the WebSocket; no further events from it are wanted.
    CloseSocket,
    /// Compute the auth payload for this connection attempt and hand it to
    /// [`super::Session::set_auth`].
    Authorize,
    /// Settle a request: the server's reply (unread), or the failure.
    Settle {
        /// The request.
        id: RequestId,
        /// Its result.
        outcome: Result<Reply<P>, Failure<P>>,
    },
    /// An event for the app's listeners.
    Event {
        /// The event name.
        name: String,
        /// The event's whole array `["name", ...args]`, unread.
        data: P,
        /// The ack id when the server asks for an acknowledgement: answer with
        /// [`super::Session::ack`].
        ack: Option<u64>,
    },
    /// The acknowledgement of an app `emit`, or its timeout.
    AppAck {
        /// The app's handle from [`super::Session::emit`].
        handle: u64,
        /// The ack's array of arguments, unread; `None` when the ack timed out.
        args: Option<P>,
    },
    /// A lifecycle event for the app's listeners.
    Lifecycle(Lifecycle<P>),
}
