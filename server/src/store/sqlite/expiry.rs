//! Request records expire while the SQLite store runs: a thread of its own, with its own
//! connection, deletes the records older than the retention every
//! [`expiry::sweep_every`] (WAL: readers never wait for it; the writer waits at most for
//! one short delete, done in chunks).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{internal, now_secs, open_connection};
use crate::store::expiry;
use crate::store::StoreError;

/// The index the sweep finds expired records by.
const INDEX: &str = "CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at)";
/// Deletes up to 1,000 records older than `?1` (unix seconds).
const DELETE_CHUNK: &str = "DELETE FROM requests WHERE rowid IN
     (SELECT rowid FROM requests WHERE created_at < ?1 LIMIT 1000)";

/// The sweeping thread; it stops when this is dropped.
pub(super) struct Sweeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Creates the index on `conn` (the store's, under its schema), forgets the records
    /// already expired, and starts the thread on a connection of its own to `path`.
    pub fn start(conn: &Connection, path: &Path, retention: Duration) -> Result<Self, StoreError> {
        conn.execute_batch(INDEX).map_err(internal)?;
        sweep(conn, retention).map_err(internal)?;
        let sweeper_conn = open_connection(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-expiry".into())
            .spawn(move || {
                let every = expiry::sweep_every(retention);
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if let Err(error) = sweep(&sweeper_conn, retention) {
                        tracing::warn!(%error, "request records: sweep failed");
                    }
                }
            })
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Deletes the records older than `retention`, a chunk per transaction.
fn sweep(conn: &Connection, retention: Duration) -> rusqlite::Result<usize> {
    let cutoff = now_secs().saturating_sub(retention.as_secs()) as i64;
    let mut total = 0;
    loop {
        let gone = conn.execute(DELETE_CHUNK, [cutoff])?;
        total += gone;
        if gone == 0 {
            return Ok(total);
        }
    }
}
