//! The request table: queueing, sending, timeouts, aborts and the event-mode FIFO per reply name.
//!
//! An entry is inserted before its frame is sent and removed when it settles; in ack mode the
//! ack id is registered before the frame goes out, and an ack for an unknown id is ignored.

use crate::prelude::*;

use super::{AckTarget, AppEmit, Effect, Failure, FailureKind, ReplyMode, Request, RequestId};
use super::{Session, State};
use crate::protocol::json;
use crate::protocol::socketio::SioKind;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Not sent: waiting for the connection, or (event mode) for its reply name to be free.
    Queued,
    /// Sent on the current connection, with its ack id in ack mode.
    Sent(Option<u64>),
}

/// A request in the table.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    /// The EVENT payload, `["<method>",<payload>]`.
    pub data: String,
    /// Event mode: the reply's event name.
    pub reply_name: Option<String>,
    pub deadline: u64,
    pub stage: Stage,
}

/// `["<name>",...args]` from a name and the text of a JSON array of arguments.
pub(super) fn event_data(name: &str, args: &str) -> Option<String> {
    let items = json::split_array(args).ok()?;
    let mut data = String::with_capacity(name.len() + args.len() + 4);
    data.push('[');
    json::write_string(&mut data, name);
    for item in items {
        data.push(',');
        data.push_str(item);
    }
    data.push(']');
    Some(data)
}

/// A server's error value (`{"status":404,"message":"…"}`, or anything else) as a failure.
pub(super) fn server_failure(error: &str) -> Failure {
    let status = json::field(error, "status")
        .and_then(json::parse_u64)
        .filter(|s| (100..=599).contains(s))
        .map_or(500, |s| s as u16);
    let message = json::field(error, "message")
        .or_else(|| error.trim_ascii_start().starts_with('"').then_some(error))
        .and_then(|m| json::unescape(m).ok());
    Failure {
        kind: FailureKind::Server,
        status,
        body: Some(error.to_owned()),
        message,
    }
}

impl Session {
    /// Submits a request. It is sent at once when connected (and, in event mode, when no other
    /// request awaits the same reply name), else queued; it settles through
    /// [`Effect::Settle`] with the returned id, possibly among the effects returned here.
    pub fn request(&mut self, now: u64, request: Request) -> (RequestId, Vec<Effect>) {
        let id = self.next_request;
        self.next_request += 1;
        let mut data = String::with_capacity(request.method.len() + request.payload.len() + 4);
        data.push('[');
        json::write_string(&mut data, &request.method);
        data.push(',');
        data.push_str(&request.payload);
        data.push(']');
        let timeout = request.timeout_ms.unwrap_or(self.config.timeout_ms);
        let reply_name = (self.config.replies == ReplyMode::Event).then(|| request.reply_name());
        if self.state == State::Closed {
            self.settle(id, Err(Failure::of(FailureKind::Disconnect)));
            return (id, self.take());
        }
        if self.state != State::Connected && self.queued() >= self.config.queue_size {
            self.settle(id, Err(Failure::of(FailureKind::QueueFull)));
            return (id, self.take());
        }
        let pending = Pending {
            data,
            reply_name: reply_name.clone(),
            deadline: now.saturating_add(timeout),
            stage: Stage::Queued,
        };
        self.requests.insert(id, pending);
        if self.state == State::Connected {
            match reply_name {
                Some(name) => self.pump(&name),
                None => self.send_request(id),
            }
        }
        (id, self.take())
    }

    /// Aborts a pending request: it fails with "abort" (a later reply is ignored).
    pub fn abort(&mut self, now: u64, id: RequestId) -> Vec<Effect> {
        self.drop_request(now, id, Failure::of(FailureKind::Abort));
        self.take()
    }

    /// Requests not yet sent.
    fn queued(&self) -> usize {
        self.requests
            .iter()
            .filter(|(_, p)| p.stage == Stage::Queued)
            .count()
    }

    pub(super) fn settle(&mut self, id: RequestId, outcome: Result<String, Failure>) {
        self.push(Effect::Settle { id, outcome });
    }

    /// Removes a request that will get no answer (timeout, abort), keeping its reply name
    /// blocked in event mode if it was in flight.
    fn drop_request(&mut self, now: u64, id: RequestId, failure: Failure) {
        let Some(p) = self.requests.remove(id) else {
            return;
        };
        if let Stage::Sent(ack) = p.stage {
            if let Some(ack) = ack {
                self.acks.remove(ack);
            }
            if let Some(name) = &p.reply_name {
                let until = now.saturating_add(self.config.timeout_ms);
                self.ghosts.push((name.clone(), until));
            }
        }
        self.settle(id, Err(failure));
    }

    /// Sends one request on the current connection.
    fn send_request(&mut self, id: RequestId) {
        let ack = (self.config.replies == ReplyMode::Ack).then(|| {
            let ack = self.next_ack;
            self.next_ack += 1;
            ack
        });
        let Some(p) = self.requests.get(id) else {
            return;
        };
        let frame = self.packet(SioKind::Event, ack, Some(&p.data));
        if self.max_payload > 0 && frame.len() as u64 > self.max_payload {
            // The server would drop the connection; the request could never get through.
            self.requests.remove(id);
            let failure = Failure {
                kind: FailureKind::Server,
                status: 413,
                body: None,
                message: Some("payload too large".to_owned()),
            };
            self.settle(id, Err(failure));
            return;
        }
        if let Some(ack) = ack {
            self.acks.insert(ack, AckTarget::Request(id));
        }
        if let Some(p) = self.requests.get_mut(id) {
            p.stage = Stage::Sent(ack);
        }
        self.push(Effect::Send(frame));
    }

    /// Event mode: sends the oldest queued request for `name` if nothing else awaits that reply.
    pub(super) fn pump(&mut self, name: &str) {
        if self.state != State::Connected || self.ghosts.iter().any(|g| g.0 == name) {
            return;
        }
        let mut next = None;
        for (id, p) in self.requests.iter() {
            if p.reply_name.as_deref() == Some(name) {
                if p.stage != Stage::Queued {
                    return;
                }
                if next.is_none() {
                    next = Some(id);
                }
            }
        }
        if let Some(id) = next {
            self.send_request(id);
        }
    }

    /// On connect: sends the queued requests (oldest first) and app emits.
    pub(super) fn flush(&mut self) {
        let queued: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.stage == Stage::Queued)
            .map(|(id, _)| id)
            .collect();
        for id in queued {
            let name = match self.requests.get(id) {
                Some(p) if p.stage == Stage::Queued => p.reply_name.clone(),
                _ => continue,
            };
            match name {
                Some(name) => self.pump(&name),
                None => self.send_request(id),
            }
        }
        for emit in core::mem::take(&mut self.app_queue) {
            self.send_app(emit);
        }
    }

    /// After the transport dropped: requests that were sent go back to the queue (to be sent
    /// again, with a new ack id, after reconnection); app acks are forgotten.
    pub(super) fn requeue_sent(&mut self) {
        self.acks.clear();
        for p in self.requests.values_mut() {
            p.stage = Stage::Queued;
        }
    }

    pub(super) fn send_app(&mut self, emit: AppEmit) {
        let ack = emit.ack.map(|handle| {
            let ack = self.next_ack;
            self.next_ack += 1;
            self.acks.insert(ack, AckTarget::App(handle));
            ack
        });
        let frame = self.packet(SioKind::Event, ack, Some(&emit.data));
        self.push(Effect::Send(frame));
    }

    /// Fails requests whose deadline passed, and unblocks expired event-mode reply names.
    pub(super) fn expire_requests(&mut self, now: u64) {
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id)
            .collect();
        let mut names = Vec::new();
        for id in due {
            let Some(p) = self.requests.get(id) else {
                continue;
            };
            if let Some(name) = &p.reply_name {
                names.push(name.clone());
            }
            let unreachable = p.stage == Stage::Queued && self.state != State::Connected;
            let kind = if unreachable && self.connect_failed {
                FailureKind::ConnectError
            } else {
                FailureKind::Timeout
            };
            self.drop_request(now, id, Failure::of(kind));
        }
        let before = self.ghosts.len();
        let mut freed = Vec::new();
        self.ghosts.retain(|(name, until)| {
            let keep = *until > now;
            if !keep {
                freed.push(name.clone());
            }
            keep
        });
        if before != self.ghosts.len() {
            names.extend(freed);
        }
        for name in names {
            self.pump(&name);
        }
    }
}
