//! Read-your-writes for one client: the requests of one socket (or of one REST client naming
//! itself with `X-Client-Id`) take effect in the order they arrived.
//!
//! - A read waits until every earlier write of the same client is committed (answered or not),
//!   so `update` then `read` pipelined on one socket reads the update, and `delete` then
//!   `read` gives 404.
//! - A write waits until every earlier read of the same client has run, and is queued in the
//!   store after every earlier write of it (the store applies writes in the order they are
//!   queued), so a pipelined read never sees a later write either.
//! - Writes that follow writes are queued at once, so a client's pipelined writes still share
//!   the store's batches; reads that follow reads run together. Other clients never wait.
//!
//! A [`Lane`] keeps that order for one client; [`Lanes`] finds the lane of a REST client id.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{oneshot, watch, OwnedSemaphorePermit};

use crate::conn::Conn;

/// A write waiting for its turn to be queued in the store.
type Deferred = Box<dyn FnOnce() + Send>;

/// The request order of one client.
pub struct Lane {
    state: Mutex<State>,
    /// The connection whose read admission a read waits for after its turn, if any.
    conn: Option<Arc<Conn>>,
    /// Bumped whenever a write is committed, for the reads waiting on it.
    committed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Writes registered and not yet committed (queued or still deferred).
    open_writes: BTreeSet<u64>,
    /// Reads registered and not yet run.
    open_reads: BTreeSet<u64>,
    /// Writes that must wait for an earlier read before they are queued, in arrival order.
    deferred: VecDeque<(u64, Deferred)>,
}

/// Marks its request finished when dropped (also when its task is cancelled or panics).
pub struct Ticket {
    lane: Arc<Lane>,
    seq: u64,
    write: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.lane.finish(self.seq, self.write);
    }
}

impl Lane {
    /// A lane with nothing in flight.
    pub fn new() -> Arc<Self> {
        Self::with_admission(None)
    }

    /// A lane whose reads, once their turn has come, also wait for `conn`'s read admission
    /// ([`Conn::read_admission`]); reads earlier in the lane get it first.
    pub fn with_admission(conn: Option<Arc<Conn>>) -> Arc<Self> {
        Arc::new(Self {
            conn,
            state: Mutex::new(State::default()),
            committed: watch::Sender::new(0),
        })
    }

    /// Registers a write arriving now. `submit` queues it in the store (returning whatever the
    /// store returns); it runs at once when no earlier read of this lane is still running,
    /// else as soon as they all have, in arrival order. The ticket must live until the write
    /// is committed.
    pub fn write<T: Send + 'static>(
        self: &Arc<Self>,
        submit: impl FnOnce() -> T + Send + 'static,
    ) -> (Ticket, impl Future<Output = Option<T>> + Send + 'static) {
        let mut state = self.state.lock().expect("lane");
        state.next_seq += 1;
        let seq = state.next_seq;
        state.open_writes.insert(seq);
        let ticket = Ticket {
            lane: self.clone(),
            seq,
            write: true,
        };
        if state.deferred.is_empty() && state.open_reads.is_empty() {
            // Queued under the lock, so no later write of this lane can be queued before it.
            let submitted = submit();
            return (ticket, Turn::Now(Some(submitted)).resolve());
        }
        let (tx, rx) = oneshot::channel();
        state.deferred.push_back((
            seq,
            Box::new(move || {
                let _ = tx.send(submit());
            }),
        ));
        (ticket, Turn::Later(rx).resolve())
    }

    /// Registers a read arriving now; the future resolves once every earlier write of this
    /// lane is committed (and the read is admitted on the lane's connection, if any) to the
    /// slot to hold while reading, or to `None` when that connection is dead. The ticket must
    /// live until the read has run.
    pub fn read(
        self: &Arc<Self>,
    ) -> (
        Ticket,
        impl Future<Output = Option<ReadSlot>> + Send + 'static,
    ) {
        let mut state = self.state.lock().expect("lane");
        state.next_seq += 1;
        let seq = state.next_seq;
        state.open_reads.insert(seq);
        let ticket = Ticket {
            lane: self.clone(),
            seq,
            write: false,
        };
        let lane = self.clone();
        let mut committed = self.committed.subscribe();
        let ready = async move {
            // The lane (held here) keeps the sender, so this only ends when the check passes.
            let _ = committed.wait_for(|_| lane.writes_done_before(seq)).await;
            match &lane.conn {
                Some(conn) => conn.read_admission().await.map(|p| ReadSlot(Some(p))),
                None => Some(ReadSlot(None)),
            }
        };
        (ticket, ready)
    }

    fn writes_done_before(&self, seq: u64) -> bool {
        let state = self.state.lock().expect("lane");
        state.open_writes.first().is_none_or(|first| *first > seq)
    }

    fn finish(&self, seq: u64, write: bool) {
        let mut state = self.state.lock().expect("lane");
        if write {
            state.open_writes.remove(&seq);
            drop(state);
            self.committed.send_modify(|n| *n += 1);
            return;
        }
        state.open_reads.remove(&seq);
        // Queue the deferred writes that no unfinished read precedes, in order.
        while let Some((next, _)) = state.deferred.front() {
            if state.open_reads.first().is_some_and(|read| read < next) {
                break;
            }
            let (_, submit) = state.deferred.pop_front().expect("front");
            submit();
        }
    }
}

/// A read's admission on its connection, held while it runs.
pub struct ReadSlot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

enum Turn<T> {
    Now(Option<T>),
    Later(oneshot::Receiver<T>),
}

impl<T: Send + 'static> Turn<T> {
    async fn resolve(self) -> Option<T> {
        match self {
            Turn::Now(value) => value,
            // Dropped unsent only if the lane itself went away, which the ticket prevents.
            Turn::Later(rx) => rx.await.ok(),
        }
    }
}

/// The lanes of REST clients, by their `X-Client-Id`. A lane is kept only while one of its
/// requests is in flight, so the table holds at most one entry per request in flight.
#[derive(Default)]
pub struct Lanes {
    by_client: Mutex<HashMap<String, Weak<Lane>>>,
}

impl Lanes {
    /// The lane of `client`, created when it has none in flight.
    pub fn get(&self, client: &str) -> Arc<Lane> {
        let mut map = self.by_client.lock().expect("lanes");
        if let Some(lane) = map.get(client).and_then(Weak::upgrade) {
            return lane;
        }
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, lane| lane.strong_count() > 0);
        }
        let lane = Lane::new();
        map.insert(client.to_owned(), Arc::downgrade(&lane));
        lane
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn a_read_waits_for_earlier_writes_and_a_write_for_earlier_reads() {
        let lane = Lane::new();
        let queued = Arc::new(AtomicU64::new(0));
        let q = queued.clone();
        let (w1, turn1) = lane.write(move || q.fetch_add(1, Ordering::SeqCst));
        assert_eq!(queued.load(Ordering::SeqCst), 1, "queued at once");
        let (r1, ready1) = lane.read();
        let q = queued.clone();
        let (w2, turn2) = lane.write(move || q.fetch_add(1, Ordering::SeqCst));
        assert_eq!(queued.load(Ordering::SeqCst), 1, "waits for the read");
        let mut ready1 = Box::pin(ready1);
        assert!(futures_poll(&mut ready1).is_none(), "w1 not committed");
        assert_eq!(turn1.await, Some(0));
        drop(w1);
        assert!(futures_poll(&mut ready1).is_some(), "w1 committed");
        drop(r1);
        assert_eq!(queued.load(Ordering::SeqCst), 2, "read done: w2 queued");
        assert_eq!(turn2.await, Some(1));
        drop(w2);
        let (_r2, ready2) = lane.read();
        assert!(ready2.await.is_some());
    }

    fn futures_poll<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        match std::pin::Pin::new(f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn rest_lanes_live_while_in_flight() {
        let lanes = Lanes::default();
        let a = lanes.get("a");
        assert!(Arc::ptr_eq(&a, &lanes.get("a")));
        drop(a);
        for i in 0..1000 {
            drop(lanes.get(&i.to_string()));
        }
        assert!(
            lanes.by_client.lock().unwrap().len() <= 64,
            "dead lanes are purged"
        );
        let live = lanes.get("x");
        assert!(Arc::ptr_eq(&live, &lanes.get("x")));
    }
}
