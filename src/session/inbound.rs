//! What the server sends: Engine.IO frames and the Socket.IO packets inside them.

use crate::prelude::*;

use super::requests::{server_failure, Stage};
use super::{AckTarget, Effect, Failure, FailureKind, Lifecycle, Session, State};
use crate::protocol::engineio::{self, EioPacket};
use crate::protocol::socketio::{self, SioKind, SioPacket};
use crate::protocol::{json, ProtocolError};

impl Session {
    /// A text frame arrived on the socket.
    pub fn on_frame(&mut self, now: u64, frame: &str) -> Vec<Effect> {
        if !matches!(
            self.state,
            State::Opening | State::Handshaking | State::Connected
        ) {
            return self.take();
        }
        match engineio::parse(frame) {
            Err(e) => self.malformed(now, e),
            Ok(EioPacket::Open(info)) if self.state == State::Opening => {
                self.max_payload = info.max_payload;
                self.ping_window_ms = info.ping_interval.saturating_add(info.ping_timeout);
                self.heartbeat_deadline = Some(now.saturating_add(self.ping_window_ms));
                let auth = self.config.auth.clone();
                let frame = self.packet(SioKind::Connect, None, auth.as_deref());
                self.push(Effect::Send(frame));
                self.state = State::Handshaking;
            }
            Ok(EioPacket::Open(_)) => self.malformed(now, ProtocolError::UnexpectedPayload),
            Ok(EioPacket::Close) => {
                self.push(Effect::CloseSocket);
                self.lost(now, "transport close");
            }
            Ok(EioPacket::Ping) => {
                self.push(Effect::Send(engineio::PONG.to_owned()));
                if self.heartbeat_deadline.is_some() {
                    self.heartbeat_deadline = Some(now.saturating_add(self.ping_window_ms));
                }
            }
            Ok(EioPacket::Pong | EioPacket::Upgrade | EioPacket::Noop) => {}
            Ok(EioPacket::Message(_)) if self.state == State::Opening => {
                self.malformed(now, ProtocolError::UnexpectedPayload)
            }
            Ok(EioPacket::Message(text)) => match socketio::parse(text) {
                Ok(packet) => self.on_packet(now, packet),
                Err(e) => self.malformed(now, e),
            },
        }
        self.take()
    }

    /// A binary WebSocket frame arrived: this client cannot read it.
    pub fn on_binary_frame(&mut self, _now: u64) -> Vec<Effect> {
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.push(Effect::Lifecycle(Lifecycle::Error(
                "binary frames are not supported",
            )));
        }
        self.take()
    }

    /// A frame that cannot be read. A binary packet fails the request it answers (if any) and
    /// is otherwise skipped; anything else means the stream can no longer be trusted, so the
    /// connection is dropped (and re-established, as socket.io-client does on a parse error).
    fn malformed(&mut self, now: u64, error: ProtocolError) {
        if let ProtocolError::BinaryUnsupported { ack_id } = error {
            self.push(Effect::Lifecycle(Lifecycle::Error(error.as_str())));
            if let Some(AckTarget::Request(id)) = ack_id.and_then(|a| self.acks.remove(a)) {
                self.requests.remove(id);
                self.settle(id, Err(Failure::of(FailureKind::Protocol)));
            }
            return;
        }
        self.push(Effect::Lifecycle(Lifecycle::Error(error.as_str())));
        self.push(Effect::CloseSocket);
        self.lost(now, "parse error");
    }

    fn on_packet(&mut self, now: u64, packet: SioPacket<'_>) {
        if packet.namespace != self.config.namespace {
            return; // another namespace's traffic: not ours to read
        }
        match packet.kind {
            SioKind::Connect if self.state == State::Handshaking => {
                let sid = packet.data.and_then(|d| json::field(d, "sid"));
                self.sid = sid.and_then(|s| json::unescape(s).ok());
                self.state = State::Connected;
                self.connect_deadline = None;
                self.connect_failed = false;
                let attempts = self.backoff.attempts();
                if attempts > 0 {
                    self.push(Effect::Lifecycle(Lifecycle::Reconnect(attempts)));
                }
                self.backoff.reset();
                self.push(Effect::Lifecycle(Lifecycle::Connect));
                self.flush();
            }
            SioKind::ConnectError => {
                let payload = packet.data.unwrap_or("null").to_owned();
                self.push(Effect::Lifecycle(Lifecycle::ConnectError(payload.clone())));
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "connection refused by the server",
                )));
                self.push(Effect::CloseSocket);
                let message = json::field(&payload, "message").and_then(|m| json::unescape(m).ok());
                self.end(Failure {
                    kind: FailureKind::ConnectError,
                    status: 0,
                    body: Some(payload),
                    message,
                });
            }
            SioKind::Disconnect if self.state == State::Connected => {
                self.push(Effect::CloseSocket);
                self.push(Effect::Lifecycle(Lifecycle::Disconnect(
                    "io server disconnect",
                )));
                self.push(Effect::Lifecycle(Lifecycle::Error(
                    "disconnected by the server",
                )));
                self.end(Failure::of(FailureKind::Disconnect));
            }
            SioKind::Event if self.state == State::Connected => self.on_event(packet.data),
            SioKind::Ack if self.state == State::Connected => {
                self.on_ack(packet.ack_id, packet.data);
            }
            _ => {}
        }
        let _ = now;
    }

    fn on_event(&mut self, data: Option<&str>) {
        let Some(items) = data.and_then(|d| json::split_array(d).ok()) else {
            return;
        };
        let Some(name) = items.first().and_then(|n| json::unescape(n).ok()) else {
            return;
        };
        let in_flight = self.requests.iter().find_map(|(id, p)| {
            let waiting =
                p.reply_name.as_deref() == Some(name.as_str()) && p.stage == Stage::Sent(None);
            waiting.then_some(id)
        });
        if let Some(id) = in_flight {
            self.requests.remove(id);
            let reply = items.get(1).copied().unwrap_or("null");
            let outcome = match event_error(reply) {
                Some(error) => Err(server_failure(error)),
                None => Ok(reply.to_owned()),
            };
            self.settle(id, outcome);
            self.pump(&name);
            return;
        }
        if let Some(i) = self.ghosts.iter().position(|g| g.0 == name) {
            // The late reply of a request that timed out or was aborted: swallow it.
            self.ghosts.remove(i);
            self.pump(&name);
            return;
        }
        let mut args = String::from("[");
        for (i, item) in items[1..].iter().enumerate() {
            if i > 0 {
                args.push(',');
            }
            args.push_str(item);
        }
        args.push(']');
        self.push(Effect::Event { name, args });
    }

    fn on_ack(&mut self, ack_id: Option<u64>, data: Option<&str>) {
        let (Some(ack_id), Some(data)) = (ack_id, data) else {
            return;
        };
        match self.acks.remove(ack_id) {
            None => {} // unknown (late, or never ours): ignored
            Some(AckTarget::App(handle)) => {
                let args = data.to_owned();
                self.push(Effect::AppAck { handle, args });
            }
            Some(AckTarget::Request(id)) => {
                if self.requests.remove(id).is_none() {
                    return;
                }
                let items = json::split_array(data).unwrap_or_default();
                let outcome = match items.first().copied() {
                    Some(err) if !is_falsy(err) => Err(server_failure(err)),
                    _ => Ok(items.get(1).copied().unwrap_or("null").to_owned()),
                };
                self.settle(id, outcome);
            }
        }
    }
}

/// Node-style `(err, result)`: like JavaScript's `if (err)`, a falsy error means success.
fn is_falsy(value: &str) -> bool {
    // `-0` is falsy too; the minus sign is skipped byte-wise (no char searcher in the wasm).
    let minus = value.bytes().take_while(|&b| b == b'-').count();
    matches!(value, "null" | "false" | "\"\"")
        || value.get(minus..).and_then(json::parse_u64) == Some(0)
}

/// Event mode: a reply whose only key is `error`, holding an object, is an error.
fn event_error(reply: &str) -> Option<&str> {
    let fields = json::object_fields(reply).ok()?;
    match fields.as_slice() {
        [(key, value)] if key == "error" && value.starts_with('{') => Some(value),
        _ => None,
    }
}
