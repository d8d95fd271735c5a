//! Fair shares of a store's writer: writes wait in one queue per client and the writer takes
//! them by deficit round-robin on their size, so one client's flood does not delay another
//! client's single write behind it (written once for both stores; each writer only pulls).
//!
//! - A client is the socket that sent the write, else (REST) the owner whose documents it
//!   changes ([`Client::of`]). Sockets, not users: the flood that hurts is one connection's
//!   pipeline, a per-client order is a per-connection order ([`crate::order`]), and with
//!   authentication off every user is the same owner `""`, which would leave nobody to be fair
//!   to. One user's many sockets get a share each, as many as `--max-connections` allows.
//! - Each client's writes leave in the order they came (its queue is FIFO), which is all that
//!   read-your-writes and the store's order promise ([`super::Store::write`]); writes of
//!   different clients interleave.
//! - Deficit round-robin: at each turn a client may take [`QUANTUM`] bytes more; a write costs
//!   its body's JSON size plus [`WRITE_COST`]. A client that had nothing queued joins the end
//!   of the round, so its write is taken after at most one turn of every other client.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use super::change::Origin;
use super::{Write, WriteOp};

/// Bytes a client may take per turn of the round.
pub const QUANTUM: usize = 16 << 10;
/// What any write costs beyond its body (its statements, its request record).
pub const WRITE_COST: usize = 256;

/// Whose share a write is counted in (see the module's doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A socket: its namespace and id.
    Socket(Origin),
    /// A write without a socket (REST): the owner it writes for.
    Owner(String),
}

impl Client {
    /// The client of `write`, sent by `origin` if by a socket.
    pub fn of(write: &Write, origin: Option<&Origin>) -> Self {
        match origin {
            Some(origin) => Client::Socket(origin.clone()),
            None => Client::Owner(write.owner.clone()),
        }
    }
}

/// What `write` costs in its client's share: its body's JSON size plus [`WRITE_COST`].
pub fn cost(write: &Write) -> usize {
    let body = match &write.op {
        WriteOp::Create { item, .. }
        | WriteOp::Update { item, .. }
        | WriteOp::Patch { item, .. } => {
            let mut counter = Counter(0);
            let _ = serde_json::to_writer(&mut counter, item);
            counter.0
        }
        WriteOp::Delete { .. } => 0,
    };
    WRITE_COST + body
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One client's queued writes and what it may still take in its current turn.
struct Flow<T> {
    items: VecDeque<(T, usize)>,
    deficit: usize,
}

/// Items queued per key, taken by deficit round-robin on their cost.
pub struct FairQueue<K, T> {
    flows: HashMap<K, Flow<T>>,
    /// Keys with items queued, the one whose turn it is first.
    round: VecDeque<K>,
    /// Whether the first key of `round` has had its quantum for this turn.
    turn_started: bool,
    len: usize,
}

impl<K: Hash + Eq + Clone, T> Default for FairQueue<K, T> {
    fn default() -> Self {
        Self {
            flows: HashMap::new(),
            round: VecDeque::new(),
            turn_started: false,
            len: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, T> FairQueue<K, T> {
    /// Queues `item` of `key`, costing `cost`, after `key`'s earlier items.
    pub fn push(&mut self, key: K, item: T, cost: usize) {
        self.len += 1;
        let flow = self.flows.entry(key).or_insert_with_key(|key| {
            // A client with nothing queued joins the end of the round.
            self.round.push_back(key.clone());
            Flow {
                items: VecDeque::new(),
                deficit: 0,
            }
        });
        flow.items.push_back((item, cost));
    }

    /// The next item in the round, with its key.
    pub fn pop(&mut self) -> Option<(K, T)> {
        loop {
            let key = self.round.front()?;
            let flow = self
                .flows
                .get_mut(key)
                .expect("a key in the round has a flow");
            if !self.turn_started {
                flow.deficit = flow.deficit.saturating_add(QUANTUM);
                self.turn_started = true;
            }
            let cost = flow.items.front().expect("a flow in the round has items").1;
            if cost > flow.deficit {
                // Its turn is over: the rest of its deficit waits for its next turn.
                self.round.rotate_left(1);
                self.turn_started = false;
                continue;
            }
            flow.deficit -= cost;
            let (item, _) = flow.items.pop_front().expect("checked above");
            self.len -= 1;
            let key = key.clone();
            if flow.items.is_empty() {
                // An emptied flow keeps no credit (it would let it burst later).
                self.flows.remove(&key);
                self.round.pop_front();
                self.turn_started = false;
            }
            return Some((key, item));
        }
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys with items queued.
    pub fn clients(&self) -> usize {
        self.round.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &mut FairQueue<&'static str, u32>) -> Vec<(&'static str, u32)> {
        std::iter::from_fn(|| queue.pop()).collect()
    }

    #[test]
    fn a_lone_write_waits_one_turn_of_a_flood() {
        let mut queue = FairQueue::default();
        for i in 0..10_000 {
            queue.push("flood", i, 300);
        }
        queue.push("one", 0, 300);
        let order = drain(&mut queue);
        let at = order.iter().position(|(key, _)| *key == "one").unwrap();
        assert_eq!(at, QUANTUM / 300, "after one turn of the flood");
        let flood: Vec<u32> = order
            .iter()
            .filter(|(k, _)| *k == "flood")
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(
            flood,
            (0..10_000).collect::<Vec<_>>(),
            "each key in its order"
        );
    }

    #[test]
    fn shares_are_by_bytes_and_large_writes_still_go() {
        let mut queue = FairQueue::default();
        for i in 0..100 {
            queue.push("big", i, 3 * QUANTUM);
            queue.push("small", i, QUANTUM / 4);
        }
        let order = drain(&mut queue);
        assert_eq!(order.len(), 200);
        // Until "small" runs out, it takes 4 writes per turn and "big" one per 3 turns.
        let first_big = order.iter().position(|(k, _)| *k == "big").unwrap();
        let small_before = order[..first_big]
            .iter()
            .filter(|(k, _)| *k == "small")
            .count();
        assert_eq!(
            small_before, 8,
            "big waits 3 turns: small took 2 turns meanwhile"
        );
        assert!(queue.is_empty() && queue.clients() == 0);
    }

    #[test]
    fn an_emptied_flow_keeps_no_credit() {
        let mut queue = FairQueue::default();
        queue.push("a", 1, 10);
        assert_eq!(queue.pop(), Some(("a", 1)));
        for i in 0..3 {
            queue.push("b", i, QUANTUM);
        }
        queue.push("a", 2, QUANTUM);
        queue.push("a", 3, QUANTUM);
        let keys: Vec<_> = drain(&mut queue).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "b", "a", "b"]);
    }
}
