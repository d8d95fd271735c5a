//! The writer thread's inbox: the writes queued for it, one queue per client, taken by the
//! fair round of [`crate::store::fair`]; the thread sleeps while it is empty.

use std::sync::{Condvar, Mutex};

use super::Job;
use crate::store::fair::{Client, FairQueue};

/// Writes waiting for the writer thread (see the module's doc).
#[derive(Default)]
pub(super) struct Inbox {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    queue: FairQueue<Client, Job>,
    closed: bool,
}

impl Inbox {
    /// Queues `job` of `client`, costing `cost` in its share; false (dropping it) once
    /// closed.
    pub(super) fn push(&self, client: Client, job: Job, cost: usize) -> bool {
        let mut state = self.state.lock().expect("inbox");
        if state.closed {
            return false;
        }
        // The writer only sleeps on an empty inbox: wake it for the first write only.
        let wake = state.queue.is_empty();
        state.queue.push(client, job, cost);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        true
    }

    /// Takes no more writes: the writer ends once it has taken those queued.
    pub(super) fn close(&self) {
        self.state.lock().expect("inbox").closed = true;
        self.ready.notify_all();
    }

    /// Waits until a write is queued: false once the inbox is closed and empty.
    pub(super) fn wait(&self) -> bool {
        let state = self.state.lock().expect("inbox");
        let state = self
            .ready
            .wait_while(state, |state| state.queue.is_empty() && !state.closed)
            .expect("inbox");
        !state.queue.is_empty()
    }

    /// The next write in the fair round, with its client.
    pub(super) fn pop(&self) -> Option<(Client, Job)> {
        self.state.lock().expect("inbox").queue.pop()
    }
}
