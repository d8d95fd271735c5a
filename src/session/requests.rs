//! The request table: queueing, sending, timeouts, aborts and the event-mode FIFO per reply name.
//!
//! An entry is inserted before its frame is sent and removed when it settles; in ack mode the
//! ack id is registered before the frame goes out, and an ack for an unknown id is ignored.
//!
//! In event mode a reply carries no id, only its name (`create:/api/todos`), so one request
//! per reply name is in flight: the others wait in that name's *lane*. A request that timed
//! out or was aborted while in flight leaves a *ghost* in its lane, which swallows the late
//! reply (or expires after one more timeout) before the next request of that name goes out.
//!
//! Queues are FIFOs with lazy deletion: a request removed while queued stays in its queue and
//! is skipped when reached, so each request is visited a bounded number of times.

use std::collections::{HashMap, VecDeque};

use super::{AckTarget, AppEmit, Effect, Failure, FailureKind, ReplyMode, Request, RequestId};
use super::{Session, State, Timer};
use crate::payload::Payload;
use crate::protocol::socketio::{self, SioKind};

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
pub(super) struct Pending<P> {
    /// The event name (the method).
    pub method: String,
    /// The request's argument, sent as it is every time.
    pub payload: P,
    /// Event mode: the reply's event name.
    pub reply_name: Option<String>,
    pub deadline: u64,
    pub stage: Stage,
}

/// What occupies an event-mode reply name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Busy {
    /// A request in flight.
    Request(RequestId),
    /// A ghost: the reply of a request that timed out or was aborted may still come.
    Ghost(u64),
}

/// One event-mode reply name: what occupies it and the requests waiting for it.
#[derive(Debug, Default)]
pub(super) struct Lane {
    pub busy: Option<Busy>,
    pub waiting: VecDeque<RequestId>,
}

/// The pending requests.
#[derive(Debug)]
pub(super) struct RequestTable<P> {
    next_id: RequestId,
    requests: HashMap<RequestId, Pending<P>>,
    /// Every request in submission order (may hold ids removed since; compacted as it grows).
    order: VecDeque<RequestId>,
    /// Ack mode: queued requests in submission order (may hold ids removed since).
    outbox: VecDeque<RequestId>,
    /// How many requests are queued (not sent).
    queued: usize,
    /// Event mode: the lanes by reply name.
    pub lanes: HashMap<String, Lane>,
    /// Event mode: live ghosts and their reply names.
    pub ghosts: HashMap<u64, String>,
    next_ghost: u64,
    /// Entries visited (see [`Session::steps`]).
    pub steps: u64,
}

impl<P> RequestTable<P> {
    pub(super) fn new() -> Self {
        RequestTable {
            next_id: 1,
            requests: HashMap::new(),
            order: VecDeque::new(),
            outbox: VecDeque::new(),
            queued: 0,
            lanes: HashMap::new(),
            ghosts: HashMap::new(),
            next_ghost: 0,
            steps: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.requests.len()
    }

    pub(super) fn get(&self, id: RequestId) -> Option<&Pending<P>> {
        self.requests.get(&id)
    }

    /// Adds a new (queued) request; the caller puts it in its queue or sends it.
    fn insert(&mut self, pending: Pending<P>) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        // In the table before the order is compacted, which keeps only ids in the table: the
        // other way round, the compaction dropped the new id from the order, and a request
        // missing from it was neither failed at a session's end nor re-sent after a
        // reconnection (its callbacks never ran).
        self.requests.insert(id, pending);
        self.order.push_back(id);
        if self.order.len() > 2 * self.requests.len() + 64 {
            let requests = &self.requests;
            self.steps += self.order.len() as u64;
            self.order.retain(|id| requests.contains_key(id));
        }
        self.queued += 1;
        id
    }

    pub(super) fn enqueue(&mut self, id: RequestId, reply_name: Option<String>) {
        match reply_name {
            Some(name) => self.lanes.entry(name).or_default().waiting.push_back(id),
            None => self.outbox.push_back(id),
        }
    }

    /// Removes a request; `None` if it was not pending.
    pub(super) fn remove(&mut self, id: RequestId) -> Option<Pending<P>> {
        let p = self.requests.remove(&id)?;
        if p.stage == Stage::Queued {
            self.queued -= 1;
        }
        Some(p)
    }

    /// Marks a queued request as sent.
    fn mark_sent(&mut self, id: RequestId, ack: Option<u64>) {
        if let Some(p) = self.requests.get_mut(&id) {
            if p.stage == Stage::Queued {
                self.queued -= 1;
            }
            p.stage = Stage::Sent(ack);
        }
    }

    /// The next queued request of the outbox (ack mode), skipping removed ones.
    fn next_queued(&mut self) -> Option<RequestId> {
        while let Some(id) = self.outbox.pop_front() {
            self.steps += 1;
            if self
                .requests
                .get(&id)
                .is_some_and(|p| p.stage == Stage::Queued)
            {
                return Some(id);
            }
        }
        None
    }

    /// Every request back to the queue, in submission order (after the transport dropped).
    fn requeue_all(&mut self) {
        self.outbox.clear();
        self.lanes.clear();
        self.ghosts.clear();
        let requests = &mut self.requests;
        self.order.retain(|id| requests.contains_key(id));
        self.steps += self.order.len() as u64;
        self.queued = self.order.len();
        for i in 0..self.order.len() {
            let id = self.order[i];
            let Some(p) = self.requests.get_mut(&id) else {
                continue;
            };
            p.stage = Stage::Queued;
            let name = p.reply_name.clone();
            self.enqueue(id, name);
        }
    }

    /// Removes every request; returns their ids in order.
    pub(super) fn drain(&mut self) -> Vec<RequestId> {
        self.outbox.clear();
        self.lanes.clear();
        self.ghosts.clear();
        self.queued = 0;
        let requests = std::mem::take(&mut self.requests);
        let ids: Vec<RequestId> = std::mem::take(&mut self.order)
            .into_iter()
            .filter(|id| requests.contains_key(id))
            .collect();
        self.steps += ids.len() as u64;
        ids
    }
}

impl<P: Payload> Session<P> {
    /// Submits a request. It is sent at once when connected (and, in event mode, when no other
    /// request awaits the same reply name), else queued; it settles through
    /// [`Effect::Settle`] with the returned id, possibly among the effects returned here.
    pub fn request(&mut self, now: u64, request: Request<P>) -> (RequestId, Vec<Effect<P>>) {
        let timeout = request.timeout_ms.unwrap_or(self.config.timeout_ms);
        let reply_name = (self.config.replies == ReplyMode::Event).then(|| request.reply_name());
        let refusal = if self.state == State::Closed {
            Some(FailureKind::Disconnect)
        } else if self.state != State::Connected && self.table.queued >= self.config.queue_size {
            Some(FailureKind::QueueFull)
        } else {
            None
        };
        let deadline = now.saturating_add(timeout);
        let id = self.table.insert(Pending {
            method: request.method,
            payload: request.payload,
            reply_name: reply_name.clone(),
            deadline,
            stage: Stage::Queued,
        });
        if let Some(kind) = refusal {
            self.table.remove(id);
            self.settle(id, Err(Failure::of(kind)));
            return (id, self.take());
        }
        self.add_timer(deadline, Timer::Request(id));
        match (self.state == State::Connected, reply_name) {
            (true, None) => self.send_request(id),
            (connected, name) => {
                self.table.enqueue(id, name.clone());
                if let (true, Some(name)) = (connected, name) {
                    self.pump(&name);
                }
            }
        }
        (id, self.take())
    }

    /// Aborts a pending request: it fails with "abort" (a later reply is ignored).
    pub fn abort(&mut self, now: u64, id: RequestId) -> Vec<Effect<P>> {
        self.drop_request(now, id, Failure::of(FailureKind::Abort));
        self.take()
    }

    pub(super) fn settle(&mut self, id: RequestId, outcome: Result<super::Reply<P>, Failure<P>>) {
        self.push(Effect::Settle { id, outcome });
    }

    /// Removes a request that settles now, with its timer and ack id.
    pub(super) fn take_request(&mut self, id: RequestId) -> Option<Pending<P>> {
        let p = self.table.remove(id)?;
        if let Stage::Sent(Some(ack)) = p.stage {
            self.acks.remove(&ack);
        }
        Some(p)
    }

    /// Removes a request that will get no answer (timeout, abort), leaving a ghost on its
    /// reply name in event mode if it was in flight.
    fn drop_request(&mut self, now: u64, id: RequestId, failure: Failure<P>) {
        let Some(p) = self.take_request(id) else {
            return;
        };
        if let (Stage::Sent(None), Some(name)) = (p.stage, p.reply_name) {
            let ghost = self.table.next_ghost;
            self.table.next_ghost += 1;
            let until = now.saturating_add(self.config.timeout_ms);
            self.add_timer(until, Timer::Ghost(ghost));
            if let Some(lane) = self.table.lanes.get_mut(&name) {
                lane.busy = Some(Busy::Ghost(ghost));
            }
            self.table.ghosts.insert(ghost, name);
        }
        self.settle(id, Err(failure));
    }

    /// A request's deadline passed.
    pub(super) fn expire_request(&mut self, now: u64, id: RequestId) {
        let Some(p) = self.table.get(id) else {
            return;
        };
        let unreachable = p.stage == Stage::Queued && self.state != State::Connected;
        let kind = if unreachable && self.connect_failed {
            FailureKind::ConnectError
        } else {
            FailureKind::Timeout
        };
        self.drop_request(now, id, Failure::of(kind));
    }

    /// A ghost's time is up: its reply name is free again.
    pub(super) fn expire_ghost(&mut self, ghost: u64) {
        if let Some(name) = self.table.ghosts.remove(&ghost) {
            self.free_lane(&name);
        }
    }

    /// Event mode: the request or ghost occupying `name` is done; the next one goes out.
    pub(super) fn free_lane(&mut self, name: &str) {
        if let Some(lane) = self.table.lanes.get_mut(name) {
            if let Some(Busy::Ghost(g)) = lane.busy {
                self.table.ghosts.remove(&g);
            }
            lane.busy = None;
        }
        self.pump(name);
    }

    /// Sends one request on the current connection.
    fn send_request(&mut self, id: RequestId) {
        let ack = (self.config.replies == ReplyMode::Ack).then(|| {
            let ack = self.next_ack;
            self.next_ack += 1;
            ack
        });
        let Some(p) = self.table.get(id) else {
            return;
        };
        let mut head = socketio::head(SioKind::Event, &self.config.namespace, ack);
        head.push_str("[\"");
        head.push_str(&p.method);
        head.push_str("\",");
        let frame = P::wrap(&head, &p.payload, "]");
        if self.max_payload > 0 && frame.size() as u64 > self.max_payload {
            // The server would drop the connection; the request could never get through.
            self.take_request(id);
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
        self.table.mark_sent(id, ack);
        self.push(Effect::Send(frame));
    }

    /// Event mode: sends the oldest queued request for `name` if nothing occupies that name.
    pub(super) fn pump(&mut self, name: &str) {
        if self.state != State::Connected {
            return;
        }
        let Some(lane) = self.table.lanes.get_mut(name) else {
            return;
        };
        if lane.busy.is_some() {
            return;
        }
        let mut next = None;
        while let Some(id) = lane.waiting.pop_front() {
            self.table.steps += 1;
            if self
                .table
                .requests
                .get(&id)
                .is_some_and(|p| p.stage == Stage::Queued)
            {
                next = Some(id);
                break;
            }
        }
        match next {
            Some(id) => {
                lane.busy = Some(Busy::Request(id));
                self.send_request(id);
                // Too large to send: it failed at once, the next one may go.
                if self.table.get(id).is_none() {
                    self.free_lane(name);
                }
            }
            None => {
                self.table.lanes.remove(name);
            }
        }
    }

    /// On connect: sends the queued requests (oldest first) and app emits.
    pub(super) fn flush(&mut self) {
        while let Some(id) = self.table.next_queued() {
            self.send_request(id);
        }
        let names: Vec<String> = self.table.lanes.keys().cloned().collect();
        for name in names {
            self.pump(&name);
        }
        for emit in std::mem::take(&mut self.app_queue) {
            self.steps += 1;
            // An emit whose ack already timed out is not sent (as socket.io-client drops it
            // from its send buffer).
            if emit.ack.is_none_or(|h| self.app_waiting.contains(&h)) {
                self.send_app(emit);
            }
        }
    }

    /// After the transport dropped: requests go back to the queue (to be sent again, with a
    /// new ack id, after reconnection); acks of this connection are forgotten.
    pub(super) fn requeue_sent(&mut self) {
        self.acks.clear();
        // Ghosts go too (a late reply cannot come over a new connection); their timers find
        // nothing when they fire.
        self.table.requeue_all();
    }

    pub(super) fn send_app(&mut self, emit: AppEmit<P>) {
        let ack = emit.ack.map(|handle| {
            let ack = self.next_ack;
            self.next_ack += 1;
            self.acks.insert(ack, AckTarget::App(handle));
            ack
        });
        let head = socketio::head(SioKind::Event, &self.config.namespace, ack);
        self.push(Effect::Send(P::wrap(&head, &emit.data, "")));
    }
}
