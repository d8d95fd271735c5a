//! What the server sends: Engine.IO frames and the Socket.IO packets inside them. Only headers
//! are read; bodies go on as [`Payload`] handles.

use serde::Deserialize;

use super::requests::{Busy, Stage};
use super::{AckTarget, ConnectError, Effect, Failure, FailureKind, Lifecycle, Received};
use super::{Reply, Session, State};
use crate::payload::Payload;
use crate::protocol::engineio::{self, EioKind, OpenInfo};
use crate::protocol::socketio::{self, Header, SioKind};
use crate::protocol::ProtocolError;

/// How many characters of a frame the header is read from at first: enough for the packet
/// types, a namespace, an ack id and a usual event name. A longer header is read in full.
const HEAD_CHARS: usize = 128;

/// The server's namespace CONNECT answer `{"sid": …}`.
#[derive(Deserialize)]
struct ConnectOk {
    sid: String,
}

/// The message of a CONNECT_ERROR `{"message": …}`.
#[derive(Deserialize)]
struct Refusal {
    message: String,
}

impl<P: Payload> Session<P> {
    /// A text frame arrived on the socket.
    pub fn on_frame(&mut self, now: u64, frame: impl Into<P>) -> Vec<Effect<P>> {
        let frame = frame.into();
        if !self.transport_up() {
            return self.take();
        }
        let (mut head, mut complete) = frame.head(HEAD_CHARS);
        let kind = match engineio::parse(&head, complete) {
            Ok(kind) => kind,
            Err(e) => {
                self.malformed(now, e);
                return self.take();
            }
        };
        match kind {
            EioKind::Open if self.state == State::Opening => {
                let body = frame.rest(head.get(..1).unwrap_or_default());
                match body.decode::<OpenInfo>().filter(|o| !o.sid.is_empty()) {
                    Some(info) => self.on_open_packet(now, info),
                    None => self.malformed(now, ProtocolError::UnexpectedPayload),
                }
            }
            EioKind::Open => self.malformed(now, ProtocolError::UnexpectedPayload),
            EioKind::Close => {
                self.push(Effect::CloseSocket);
                self.lost(now, "transport close");
            }
            EioKind::Ping => {
                self.push(Effect::Send(P::from_text(engineio::PONG)));
                if self.heartbeat_deadline.is_some() {
                    self.heartbeat_deadline = Some(now.saturating_add(self.ping_window_ms));
                }
            }
            EioKind::Pong | EioKind::Upgrade | EioKind::Noop => {}
            EioKind::Message if self.state == State::Opening => {
                self.malformed(now, ProtocolError::UnexpectedPayload)
            }
            EioKind::Message => {
                // The type character `4` is ASCII: slicing after it cannot fail.
                let mut header = socketio::parse(head.get(1..).unwrap_or_default(), complete);
                if header == Err(ProtocolError::Truncated) && !complete {
                    (head, complete) = frame.head(usize::MAX);
                    header = socketio::parse(head.get(1..).unwrap_or_default(), complete);
                }
                match header {
                    Ok(header) => {
                        let body = header.has_body.then(|| {
                            frame.rest(head.get(..1 + header.body_at).unwrap_or_default())
                        });
                        self.on_packet(now, header, body);
                    }
                    Err(e) => self.malformed(now, e),
                }
            }
        }
        self.take()
    }

    /// A binary WebSocket frame arrived: this client cannot read it (binary attachments of a
    /// packet it skips anyway).
    pub fn on_binary_frame(&mut self, _now: u64) -> Vec<Effect<P>> {
        self.take()
    }

    fn on_open_packet(&mut self, now: u64, info: OpenInfo) {
        self.max_payload = info.max_payload;
        self.ping_window_ms = info.ping_interval.saturating_add(info.ping_timeout);
        self.heartbeat_deadline = Some(now.saturating_add(self.ping_window_ms));
        if self.config.auth_provider {
            self.state = State::Authorizing;
            self.push(Effect::Authorize);
        } else {
            let auth = self.config.auth.clone();
            self.send_connect(auth);
        }
    }

    /// A frame that cannot be read: the stream can no longer be trusted, so the connection is
    /// dropped (and re-established, as socket.io-client does on a parse error).
    fn malformed(&mut self, now: u64, error: ProtocolError) {
        self.push(Effect::Lifecycle(Lifecycle::Error(error.as_str())));
        self.push(Effect::CloseSocket);
        self.lost(now, "parse error");
    }

    fn on_packet(&mut self, now: u64, header: Header, body: Option<P>) {
        if header.namespace != self.config.namespace {
            return; // another namespace's traffic (binary or not): not ours to read
        }
        match header.kind {
            SioKind::Connect if self.state == State::Handshaking => {
                let sid = body.and_then(|b| b.decode::<ConnectOk>()).map(|c| c.sid);
                self.on_connected(sid);
            }
            SioKind::ConnectError if matches!(self.state, State::Handshaking) => {
                let body = body.unwrap_or_else(|| P::from_text("null"));
                let message = body
                    .decode::<Refusal>()
                    .map(|r| r.message)
                    .or_else(|| body.decode::<String>());
                let error = ConnectError::Refused {
                    body: body.clone(),
                    message: message.clone(),
                };
                self.push(Effect::Lifecycle(Lifecycle::ConnectError(error)));
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "connection refused by the server",
                )));
                self.push(Effect::CloseSocket);
                let (kind, status) = match message.as_deref() {
                    Some("unauthorized") => (FailureKind::Unauthorized, 401),
                    _ => (FailureKind::ConnectError, 0),
                };
                let failure = Failure {
                    kind,
                    status,
                    body: Some(body),
                    message,
                };
                self.refused(now, failure);
            }
            SioKind::Disconnect if self.state == State::Connected => {
                self.push(Effect::CloseSocket);
                if self.config.auth_provider {
                    // As at a token's expiry: a fresh auth payload may be let in again, so
                    // the session reconnects and re-sends what was unanswered, as after a
                    // dropped transport (a CONNECT refused again ends it: see `refused`).
                    self.lost(now, "io server disconnect");
                    return;
                }
                self.push(Effect::Lifecycle(Lifecycle::Disconnect(
                    "io server disconnect",
                )));
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "disconnected by the server",
                )));
                self.end(Failure::of(FailureKind::Disconnect));
            }
            SioKind::Event => {
                let (Some(name), Some(data)) = (header.event, body) else {
                    return;
                };
                match self.state {
                    State::Connected => self.on_event(name, data, header.ack_id),
                    // Sent before its CONNECT answer (python-socketio's connect handler may):
                    // delivered once connected, as socket.io-client's receive buffer does.
                    State::Handshaking => self.receive_buffer.push(Received {
                        name,
                        data,
                        ack: header.ack_id,
                    }),
                    _ => {}
                }
            }
            SioKind::Ack if self.state == State::Connected => {
                if let (Some(ack_id), Some(data)) = (header.ack_id, body) {
                    self.on_ack(ack_id, data);
                }
            }
            SioKind::BinaryAck if self.state == State::Connected => {
                // The answer to one of ours, with attachments this client cannot read.
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "binary packets are not supported",
                )));
                match header.ack_id.and_then(|a| self.acks.remove(&a)) {
                    Some(AckTarget::Request(id)) => {
                        self.settle_pending(id, Err(Failure::of(FailureKind::Protocol)))
                    }
                    Some(AckTarget::App(handle)) => self.answer_app(handle, None),
                    None => {}
                }
            }
            SioKind::BinaryEvent if self.state == State::Connected => {
                // The server's own event with attachments: its ack id is the server's, not one
                // of ours, so it is reported and skipped without touching any request.
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "binary packets are not supported",
                )));
            }
            _ => {}
        }
    }

    /// The namespace CONNECT was accepted.
    fn on_connected(&mut self, sid: Option<String>) {
        self.sid = sid;
        self.state = State::Connected;
        self.connect_deadline = None;
        self.connect_failed = false;
        let attempts = self.backoff.attempts();
        if attempts > 0 {
            self.push(Effect::Lifecycle(Lifecycle::Reconnect(attempts)));
        }
        self.backoff.reset();
        self.push(Effect::Lifecycle(Lifecycle::Connect));
        for event in std::mem::take(&mut self.receive_buffer) {
            self.on_event(event.name, event.data, event.ack);
        }
        self.flush();
    }

    fn on_event(&mut self, name: String, data: P, ack: Option<u64>) {
        if self.config.replies == super::ReplyMode::Event && ack.is_none() {
            let busy = self.table.lanes.get(&name).and_then(|l| l.busy);
            match busy {
                Some(Busy::Request(id))
                    if self.table.get(id).map(|p| p.stage) == Some(Stage::Sent(None)) =>
                {
                    self.take_request(id);
                    self.settle(id, Ok(Reply::Event(data)));
                    self.free_lane(&name);
                    return;
                }
                Some(Busy::Ghost(_)) => {
                    // The late reply of a request that timed out or was aborted: swallowed.
                    self.free_lane(&name);
                    return;
                }
                _ => {}
            }
        }
        self.push(Effect::Event { name, data, ack });
    }

    fn on_ack(&mut self, ack_id: u64, data: P) {
        match self.acks.remove(&ack_id) {
            None => {} // unknown (late, or never ours): ignored
            Some(AckTarget::App(handle)) => self.answer_app(handle, Some(data)),
            Some(AckTarget::Request(id)) => self.settle_pending(id, Ok(Reply::Ack(data))),
        }
    }

    /// Settles request `id` if it is still pending.
    fn settle_pending(&mut self, id: super::RequestId, outcome: Result<Reply<P>, Failure<P>>) {
        if self.take_request(id).is_some() {
            self.settle(id, outcome);
        }
    }

    /// Hands an app emit its ack (or, with `None`, its failure) if it still waits for one.
    pub(super) fn answer_app(&mut self, handle: u64, args: Option<P>) {
        if self.app_waiting.remove(&handle) {
            self.push(Effect::AppAck { handle, args });
        }
    }
}
