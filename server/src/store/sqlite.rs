//! The embedded SQLite store: one file, WAL journal, one writer thread that commits the writes
//! arriving together in one transaction, and a small pool of reader connections.
//!
//! Durability: `synchronous = FULL`. In WAL mode NORMAL already survives a crash of this
//! process, but can lose the last commits on power loss or an OS crash; a reply here means
//! "stored", so every commit is fsynced. Batching amortises that fsync over all the writes
//! that queued up while the previous batch was committing, which is what makes FULL cheap.
//!
//! SQLite calls block, so they never run on the async runtime: writes go to the writer thread
//! over a channel and come back through a oneshot after COMMIT; collection reads go to a fixed
//! set of reader threads over one queue (`readers.rs`) and come back the same way. The one
//! exception is a model lookup by primary key: bounded and never waiting for the writer in WAL
//! mode, it runs in place (see [`Store::read_model`] below).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::oneshot;

mod expiry;
mod inbox;
mod readers;
mod schema;
mod stream;
mod writer;

use inbox::Inbox;
use readers::Readers;

use super::change::{ChangeFeed, Origin};
use super::fair::{self, Client};
use super::rows::{JsonPage, PageRequest, Rows};
use super::{Applied, Page, Query, Store, StoreError, StoreFuture, Stored, Write};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long a batch that holds writes of more than one client goes on taking writes, at
/// least (else as long as the last COMMIT took, see `writer.rs`): every write of a batch waits
/// for its COMMIT, so one client's flood must not make a long batch of the one another
/// client's write is in (a lone client's batch is bounded by count only).
const MAX_BATCH_TIME: Duration = Duration::from_millis(2);
/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader threads, each with its own connection (WAL: they read while the writer commits).
const READER_THREADS: usize = 2;
/// Idle connections kept for in-place model lookups (one per runtime worker is enough).
const MAX_IDLE_LOOKUPS: usize = 4;
/// Collection streams (REST reads) running at once, each on its own thread and connection;
/// more wait for one to end.
const MAX_STREAMS: usize = 16;

/// A write for the writer thread, with its request's fingerprint already computed (by the
/// caller, on its own thread: the writer thread is the one serial stage of every write, so
/// hashing a large body there would slow every other write down).
type Job = (writer::Queued, oneshot::Sender<Result<Applied, StoreError>>);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// The writes queued for the writer thread, in per-client queues.
    inbox: Arc<Inbox>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
    path: PathBuf,
    /// Connections for model lookups run in place (see [`Store::read_model`]).
    lookups: Mutex<Vec<Connection>>,
    /// Permits of the collection streams running (see `stream.rs`).
    streams: Arc<tokio::sync::Semaphore>,
    closed: AtomicBool,
    /// Where the writer thread hands its committed changes, once [`Store::changes`] took them.
    feed: writer::FeedSlot,
    /// Forgets expired request records while the store runs.
    sweeper: Mutex<Option<expiry::Sweeper>>,
}

impl SqliteStore {
    /// Opens (creating it and its directories if needed) the database at `path`; stored
    /// documents are limited to `max_doc_bytes` of JSON text, request records kept for
    /// `request_retention`.
    pub fn open(
        path: &Path,
        max_doc_bytes: usize,
        request_retention: Duration,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Internal(format!("creating {}: {e}", dir.display())))?;
        }
        let mut conn = open_connection(path)?;
        schema::prepare(&mut conn)?;
        let sweeper = expiry::Sweeper::start(&conn, path, request_retention)?;
        let readers = Arc::new(Readers::start(path, READER_THREADS)?);
        let inbox = Arc::new(Inbox::default());
        let feed = writer::FeedSlot::default();
        let (writer_inbox, writer_feed) = (inbox.clone(), feed.clone());
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer::run_writer(conn, writer_inbox, max_doc_bytes, writer_feed))
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(Self {
            inbox,
            thread: Mutex::new(Some(thread)),
            readers,
            path: path.to_owned(),
            lookups: Mutex::new(Vec::new()),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            closed: AtomicBool::new(false),
            feed,
            sweeper: Mutex::new(Some(sweeper)),
        })
    }

    /// Runs `f` on a reader thread's connection.
    fn read<T, F>(&self, f: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let queued = self.readers.push(Box::new(move |conn: &Connection| {
            let _ = tx.send(f(conn));
        }));
        Box::pin(async move {
            if !queued {
                return Err(StoreError::Internal("store is closed".into()));
            }
            rx.await
                .map_err(|_| StoreError::Internal("reader thread stopped".into()))?
        })
    }

    /// One model by primary key, on the caller's thread with a pooled connection.
    fn lookup(&self, owner: &str, collection: &str, id: &str) -> Result<Stored, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Internal("store is closed".into()));
        }
        let pooled = self.lookups.lock().expect("lookup pool").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result =
            load(&conn, owner, collection, id).and_then(|doc| doc.ok_or(StoreError::NotFound));
        let mut pool = self.lookups.lock().expect("lookup pool");
        if pool.len() < MAX_IDLE_LOOKUPS && !self.closed.load(Ordering::Acquire) {
            pool.push(conn);
        }
        result
    }
}

impl Store for SqliteStore {
    fn write(&self, write: Write) -> StoreFuture<Applied> {
        self.write_from(write, None)
    }

    fn write_from(&self, write: Write, origin: Option<Origin>) -> StoreFuture<Applied> {
        let (tx, rx) = oneshot::channel();
        let fingerprint = write.request_id.as_ref().map(|_| write.fingerprint());
        let (client, cost) = (Client::of(&write, origin.as_ref()), fair::cost(&write));
        let queued = writer::Queued {
            write,
            fingerprint,
            origin,
        };
        let sent = self.inbox.push(client, (queued, tx), cost);
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Internal("store is closed".into()));
            }
            rx.await
                .map_err(|_| StoreError::Internal("writer thread stopped".into()))?
        })
    }

    /// This process's committed writes, in commit order, numbered by a count of them kept by
    /// the writer thread (from 1 at each start): the writer hands each batch's changes on
    /// right after its COMMIT, before it answers the batch.
    fn changes(&self) -> Option<ChangeFeed> {
        let mut slot = self.feed.lock().expect("feed slot");
        if slot.is_some() {
            return None;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *slot = Some(tx);
        Some(rx)
    }

    /// Only this process writes through this store's feed: another node on the same file
    /// hears its changes through the adapter.
    fn changes_are_local(&self) -> bool {
        true
    }

    fn read_collection(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
    ) -> StoreFuture<Vec<Value>> {
        let owner = owner.to_owned();
        let collection = collection.to_owned();
        self.read(move |conn| read_collection(conn, &owner, &collection, &query))
    }

    fn read_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Page> {
        let owner = owner.to_owned();
        let collection = collection.to_owned();
        self.read(move |conn| read_page(conn, &owner, &collection, &query, max_bytes))
    }

    fn read_json_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<JsonPage> {
        let owner = owner.to_owned();
        let collection = collection.to_owned();
        self.read(move |conn| stream::json_page(conn, &owner, &collection, &query, max_bytes))
    }

    fn stream_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Rows> {
        let request = PageRequest::new(owner, collection, query, max_bytes);
        let closed = self.closed.load(Ordering::Acquire);
        let (streams, path) = (self.streams.clone(), self.path.clone());
        Box::pin(async move {
            if closed {
                return Err(StoreError::Internal("store is closed".into()));
            }
            let permit = streams
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Internal("store is closed".into()))?;
            let (head, rows) = oneshot::channel();
            stream::start(&path, request, permit, head)?;
            rows.await
                .map_err(|_| StoreError::Internal("stream thread stopped".into()))?
        })
    }

    /// Runs in place, on the caller's thread: one primary-key lookup of a document bounded by
    /// `max_doc_bytes` in a WAL database (readers never wait for the writer) costs a few
    /// microseconds, less than handing it to another thread and waking the caller again.
    fn read_model(&self, owner: &str, collection: &str, id: &str) -> StoreFuture<Stored> {
        let result = self.lookup(owner, collection, id);
        Box::pin(async move { result })
    }

    fn close(&self) -> StoreFuture<()> {
        self.closed.store(true, Ordering::Release);
        self.streams.close();
        self.lookups.lock().expect("lookup pool").clear();
        // The writer loop ends once the queued jobs are committed.
        self.inbox.close();
        let thread = self.thread.lock().expect("thread").take();
        let readers = self.readers.clone();
        let sweeper = self.sweeper.lock().expect("sweeper").take();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                drop(sweeper);
                readers.stop()
            })
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?;
            if let Some(thread) = thread {
                tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))?
                    .map_err(|_| StoreError::Internal("writer thread panicked".into()))?;
            }
            Ok(())
        })
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Internal(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(internal)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(internal)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(internal)?;
    Ok(conn)
}

fn internal(error: rusqlite::Error) -> StoreError {
    StoreError::Internal(error.to_string())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn parse_doc(doc: &str) -> Result<Value, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Internal(format!("corrupt document: {e}")))
}

fn load(
    conn: &Connection,
    owner: &str,
    collection: &str,
    id: &str,
) -> Result<Option<Stored>, StoreError> {
    let row: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT doc, version FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![owner, collection, id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
        })
        .map_err(internal)?;
    row.map(|(doc, version)| {
        Ok(Stored {
            value: parse_doc(&doc)?,
            version,
        })
    })
    .transpose()
}

fn read_collection(
    conn: &Connection,
    owner: &str,
    collection: &str,
    query: &Query,
) -> Result<Vec<Value>, StoreError> {
    read_page(conn, owner, collection, query, usize::MAX).map(|page| page.models)
}

/// Walks the collection's rows once, keeping only the page: filters, offset, `limit` and the
/// byte bound apply as the rows go by, so a read never holds more than what it returns.
fn read_page(
    conn: &Connection,
    owner: &str,
    collection: &str,
    query: &Query,
    max_bytes: usize,
) -> Result<Page, StoreError> {
    // Without filters, the offset is pushed down to SQL; with them, it counts matches.
    let (sql_offset, mut skip) = if query.filters.is_empty() {
        (query.offset.min(i64::MAX as u64) as i64, 0)
    } else {
        (0, query.offset)
    };
    let limit = query.limit.unwrap_or(u64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM documents WHERE owner = ?1 AND collection = ?2
             ORDER BY rowid LIMIT -1 OFFSET ?3",
        )
        .map_err(internal)?;
    let mut rows = stmt
        .query(params![owner, collection, sql_offset])
        .map_err(internal)?;
    let mut page = Page::default();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(internal)? {
        let doc = row.get_ref(0).map_err(internal)?;
        let doc = doc
            .as_str()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let model = parse_doc(doc)?;
        let matches = query
            .filters
            .iter()
            .all(|(key, want)| model.get(key) == Some(want));
        if !matches {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let full = page.models.len() as u64 >= limit
            || (!page.models.is_empty() && bytes.saturating_add(doc.len()) > max_bytes);
        if full {
            page.more = true;
            break;
        }
        bytes = bytes.saturating_add(doc.len());
        page.models.push(model);
    }
    Ok(page)
}
