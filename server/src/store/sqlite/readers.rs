//! The reader threads of the SQLite store: a fixed set of threads, each with its own
//! connection, fed by one shared queue.
//!
//! This replaces one `spawn_blocking` per read (a task hand-off, a thread wake-up and a lock on
//! a connection pool for every read). A pushed read wakes a sleeping reader only when no reader
//! is awake to take it: an awake reader takes every queued read (up to [`MAX_TAKE`]) before it
//! sleeps again, so under load reads are served in runs without any wake-up. A second reader
//! is woken when the queue grows past [`BACKLOG`], so one long read (a big collection) does not
//! hold up the rest.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::open_connection;
use crate::store::StoreError;

/// One read: runs on a reader thread with its connection and sends its own reply.
pub(super) type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// Most reads a reader takes from the queue at once.
const MAX_TAKE: usize = 64;
/// Queued reads beyond which another sleeping reader is woken.
const BACKLOG: usize = 16;

#[derive(Default)]
struct State {
    jobs: VecDeque<ReadJob>,
    /// Readers running or about to run (not waiting on the condvar).
    awake: usize,
    /// Readers waiting on the condvar.
    sleeping: usize,
    /// Wake-ups signalled and not yet taken by a sleeping reader (so that the pushes that
    /// follow do not signal again).
    signals: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The reader threads and their queue.
pub(super) struct Readers {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Readers {
    /// Opens `count` connections to `path`, each owned by its own thread.
    pub(super) fn start(path: &Path, count: usize) -> Result<Self, StoreError> {
        let readers = Self {
            shared: Arc::new(Shared::default()),
            threads: Mutex::new(Vec::with_capacity(count)),
        };
        // On an error the threads already started are stopped by `drop(readers)`.
        for n in 0..count {
            let conn = open_connection(path)?;
            let shared = readers.shared.clone();
            shared.state.lock().expect("reader queue").awake += 1;
            let thread = std::thread::Builder::new()
                .name(format!("sqlite-reader-{n}"))
                .spawn(move || run_reader(conn, &shared))
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            readers.threads.lock().expect("reader threads").push(thread);
        }
        Ok(readers)
    }

    /// Queues a read; false when the readers are stopped.
    pub(super) fn push(&self, job: ReadJob) -> bool {
        let mut state = self.shared.state.lock().expect("reader queue");
        if state.closed {
            return false;
        }
        state.jobs.push_back(job);
        let wanted = if state.jobs.len() > BACKLOG { 2 } else { 1 };
        if state.awake + state.signals < wanted && state.sleeping > state.signals {
            state.signals += 1;
            drop(state);
            self.shared.wake.notify_one();
        }
        true
    }

    /// Stops the readers once the queued reads are served, and waits for them.
    pub(super) fn stop(&self) {
        self.shared.state.lock().expect("reader queue").closed = true;
        self.shared.wake.notify_all();
        for thread in self.threads.lock().expect("reader threads").drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Scheduling priority of the reader threads (Linux `nice`): collection reads are bulk work,
/// so on a busy machine the writer thread and the async workers (model lookups, replies) get
/// the CPU first, and a client that reads big collections flat out does not slow the others'
/// small requests.
const READER_NICE: i32 = 10;

fn run_reader(conn: Connection, shared: &Shared) {
    lower_priority();
    let mut taken: Vec<ReadJob> = Vec::with_capacity(MAX_TAKE);
    loop {
        {
            let mut state = shared.state.lock().expect("reader queue");
            while state.jobs.is_empty() {
                if state.closed {
                    state.awake -= 1;
                    return;
                }
                state.awake -= 1;
                state.sleeping += 1;
                state = shared.wake.wait(state).expect("reader queue");
                state.sleeping -= 1;
                state.awake += 1;
                state.signals = state.signals.saturating_sub(1);
            }
            let n = state.jobs.len().min(MAX_TAKE);
            taken.extend(state.jobs.drain(..n));
        }
        for job in taken.drain(..) {
            job(&conn);
        }
    }
}

/// Lowers this thread's priority to [`READER_NICE`] (on Linux `setpriority` with who = 0
/// applies to the calling thread only).
pub(super) fn lower_priority() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: setpriority only changes the scheduling priority of the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, READER_NICE);
    }
}
