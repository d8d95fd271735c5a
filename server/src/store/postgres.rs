//! The PostgreSQL store, for several server nodes sharing one database (`--db postgres://…`).
//!
//! Same semantics as the SQLite store (see [`super::sqlite`]): documents keyed by owner, ids
//! per owner and collection from a sequence row (skipping ids clients chose), documents in
//! insertion order, `_limit`/`_offset`, patch merging top-level keys, request records keyed by
//! (scope, id) and bound to the request's fingerprint, written in the same transaction as the
//! write. Writes of one collection are applied in the order `write` is called; each node has a
//! few writer lanes, each committing the writes queued to it together, in one transaction of
//! two pipelined round trips whatever the batch's size ([`write`], [`batch`]), every write
//! decided in Rust by the shared [`super::decide`] ([`plan`]). Other nodes write at the same
//! time, and no lock is shared beyond a batch's own row locks, so:
//! - a write with a requestId first claims it (`INSERT … ON CONFLICT DO NOTHING`): a duplicate
//!   in flight elsewhere makes the claim wait until that transaction ends, then the committed
//!   record is found and its result answered (or the claim succeeds, if it rolled back);
//! - a batch locks the sequence rows of its creates and the documents it names `FOR UPDATE`,
//!   always in the same table order and in key order; a deadlock or a document inserted
//!   meanwhile rolls the batch back, and it is retried;
//! - a frozen node's transaction is ended by the server after
//!   `idle_in_transaction_session_timeout`, which releases its locks.
//!
//! Documents are kept as `text`, so their JSON comes back byte-for-byte as written; the
//! schema is created under an advisory lock so that nodes starting together do not race; every
//! connection runs with `synchronous_commit = on`, so a reply means the write is durable.
//!
//! Broadcasts share their write's fate: each applied write's change is inserted into
//! `bss_outbox` and NOTIFYed in its batch's transaction, so PostgreSQL delivers it at COMMIT to
//! every node's listener ([`listen`], [`Store::changes`]), even when the writing node dies
//! right after COMMIT; a refused write or a batch that does not commit sends nothing.
//!
//! A database that goes away at run time makes requests fail with
//! [`StoreError::Unavailable`] (503); the pool drops the broken connections and opens new ones
//! once the database is back.

mod batch;
mod ids;
mod listen;
mod model_reads;
mod plan;
mod schema;
mod stream;
mod sweep;
mod write;

pub use listen::{keep_and_notify, APPLICATION_NAME as FEED_APPLICATION_NAME};
pub use sweep::OUTBOX_RETENTION;

use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::change::{ChangeFeed, Origin};
use super::rows::{JsonPage, PageRequest, Rows};
use super::{Applied, Page, Query, Store, StoreError, StoreFuture, Stored, Write};

/// Connections per node for reads (the writer lanes have their own, see [`write::LANES`]).
const POOL_SIZE: usize = 16;
/// Most writes committed in one transaction.
const MAX_BATCH: usize = 256;
/// How long a request waits for a free connection or for a new one to open before it fails
/// with 503 (the database is down or overloaded).
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// The writers' session settings: a transaction left idle (its node frozen or cut off) is
/// ended by the server, releasing its row locks, after about a second; a batch waits at most
/// this long for a lock (then it is retried) and for a statement.
///
/// Every statement is planned for its actual arrays and the table's current size
/// (`force_custom_plan`): a generic plan made while the tables were small (a hash join over a
/// sequential scan of `bss_documents`) was kept as they grew, and made each batch's lookups
/// scan the whole table.
const WRITER_OPTIONS: &str =
    "-c synchronous_commit=on -c idle_in_transaction_session_timeout=1500 \
     -c lock_timeout=2000 -c statement_timeout=10000 -c plan_cache_mode=force_custom_plan";
/// The readers': the same bounds, looser, since a streamed page keeps its transaction open
/// while its consumer takes the pieces (for at most [`super::rows::STALL_TIMEOUT`] each).
const READER_OPTIONS: &str =
    "-c synchronous_commit=on -c idle_in_transaction_session_timeout=30000 \
     -c lock_timeout=2000 -c statement_timeout=300000 -c plan_cache_mode=force_custom_plan";

type Job = (
    Write,
    Option<Origin>,
    oneshot::Sender<Result<Applied, StoreError>>,
);

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    /// Model reads, coalesced into shared queries.
    model_reads: model_reads::ModelReads,
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// This process's id in the changes it writes (see [`listen`]).
    node: String,
    /// What the change feed's listener connects with.
    config: tokio_postgres::Config,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// Where the change feed starts: after every transaction that had ended when this store
    /// connected.
    feed_start: listen::Pos,
    feed_taken: std::sync::atomic::AtomicBool,
    /// The task that sweeps the outbox and expired request records ([`sweep`]).
    sweeper: JoinHandle<()>,
    pool_for_sweeps: Pool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`, libpq syntax, unix sockets as a
    /// percent-encoded path host) and creates the schema if needed; stored documents are
    /// limited to `max_doc_bytes` of JSON text, request records kept for `request_retention`.
    pub async fn connect(
        url: &str,
        max_doc_bytes: usize,
        request_retention: Duration,
    ) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("invalid database url: {e}")))?;
        // Explicit, whatever the server's default: a reply promises a durable write.
        config.options("-c synchronous_commit=on");
        config.application_name("bss-server");
        config.connect_timeout(CONNECT_WAIT);
        // Reads share a pool; the writer lanes have connections of their own, so that they
        // never queue behind hundreds of reads for one.
        let pool = new_pool(config.clone().options(READER_OPTIONS), POOL_SIZE)?;
        let write_pool = new_pool(config.clone().options(WRITER_OPTIONS), write::LANES)?;
        schema::create(&write_pool).await?;
        // Changes committed from now on are this node's to broadcast, whenever its listener
        // starts (it catches up from here).
        let feed_start = listen::start(&*write_pool.get().await.map_err(pool_error)?).await?;
        let sweeps = new_pool(&config, 1)?;
        let sweeper = tokio::spawn(sweep::run(sweeps.clone(), request_retention));
        let node = node_id();
        let (queue, jobs) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write::run_writer(
            write_pool,
            jobs,
            max_doc_bytes,
            node.clone(),
        ));
        Ok(Self {
            model_reads: model_reads::ModelReads::start(pool.clone()),
            pool,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
            node,
            config,
            listener: Mutex::new(None),
            feed_start,
            feed_taken: Default::default(),
            sweeper,
            pool_for_sweeps: sweeps,
        })
    }

    /// Sweeps the change feed's outbox now: deletes the changes committed more than `age` ago
    /// (by the database's clock) and raises the watermark past them, so that a listener that
    /// has not read them yet tells its followers to resync. Every node does this every minute
    /// with [`OUTBOX_RETENTION`]; returns how many changes were deleted.
    pub async fn sweep_changes(&self, age: Duration) -> Result<u64, StoreError> {
        sweep::outbox_older_than(&self.pool_for_sweeps, age).await
    }
}

/// A random id for this process, telling its own changes from other nodes' ones.
fn node_id() -> String {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A pool of at most `size` connections to `config`, waiting at most [`CONNECT_WAIT`] for one.
fn new_pool(config: &tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_WAIT))
        .create_timeout(Some(CONNECT_WAIT))
        .build()
        .map_err(|e| StoreError::Internal(format!("connection pool: {e}")))
}

impl Store for PostgresStore {
    /// Queued now, in call order: the writer applies the queue in order.
    fn write(&self, write: Write) -> StoreFuture<Applied> {
        self.write_from(write, None)
    }

    /// Queued like [`Store::write`]; `origin` is carried in the write's change.
    fn write_from(&self, write: Write, origin: Option<Origin>) -> StoreFuture<Applied> {
        let (tx, rx) = oneshot::channel();
        let queued = match self.queue.lock().expect("queue").as_ref() {
            Some(queue) => queue.send((write, origin, tx)).is_ok(),
            None => false,
        };
        Box::pin(async move {
            if !queued {
                return Err(StoreError::Internal("store is closed".into()));
            }
            rx.await
                .map_err(|_| StoreError::Internal("writer task stopped".into()))?
        })
    }

    /// Starts this node's listener (see [`listen`]).
    fn changes(&self) -> Option<ChangeFeed> {
        use std::sync::atomic::Ordering;
        if self.feed_taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        let (feed, changes) = mpsc::unbounded_channel();
        let listener = tokio::spawn(listen::run(
            self.config.clone(),
            self.node.clone(),
            self.feed_start,
            feed,
        ));
        *self.listener.lock().expect("listener") = Some(listener);
        Some(changes)
    }

    fn read_collection(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
    ) -> StoreFuture<Vec<Value>> {
        let pool = self.pool.clone();
        let (owner, collection) = (owner.to_owned(), collection.to_owned());
        Box::pin(async move {
            let client = pool.get().await.map_err(pool_error)?;
            // Without filters, paging is pushed down to SQL; with them, it applies after
            // filtering (the same rule as the SQLite store).
            let (limit, offset) = if query.filters.is_empty() {
                (
                    query.limit.map(|l| l.min(i64::MAX as u64) as i64),
                    query.offset.min(i64::MAX as u64) as i64,
                )
            } else {
                (None, 0)
            };
            let stmt = client
                .prepare_cached(
                    "SELECT doc FROM bss_documents WHERE owner = $1 AND collection = $2
                     ORDER BY pos LIMIT $3 OFFSET $4",
                )
                .await
                .map_err(pg_error)?;
            let rows = client
                .query(&stmt, &[&owner, &collection, &limit, &offset])
                .await
                .map_err(pg_error)?;
            let mut models = Vec::with_capacity(rows.len());
            for row in rows {
                models.push(parse_doc(row.get(0))?);
            }
            Ok(filter_page(models, &query))
        })
    }

    /// Through [`Store::read_json_page`], so that the byte bound applies here too.
    fn read_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Page> {
        let read = self.read_json_page(owner, collection, query, max_bytes);
        Box::pin(async move {
            let page = read.await?;
            let models = serde_json::from_str(&page.json)
                .map_err(|e| StoreError::Internal(format!("corrupt document: {e}")))?;
            Ok(Page {
                models,
                more: page.more,
            })
        })
    }

    fn read_json_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<JsonPage> {
        let pool = self.pool.clone();
        let request = PageRequest::new(owner, collection, query, max_bytes);
        Box::pin(async move { stream::json_page(&pool, request).await })
    }

    fn stream_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Rows> {
        let request = PageRequest::new(owner, collection, query, max_bytes);
        Box::pin(stream::stream_page(self.pool.clone(), request))
    }

    /// Queued with the reads arriving meanwhile, answered by one query (see [`model_reads`]).
    fn read_model(&self, owner: &str, collection: &str, id: &str) -> StoreFuture<Stored> {
        let key = (owner.to_owned(), collection.to_owned(), id.to_owned());
        let answer = self.model_reads.read(key);
        Box::pin(async move {
            answer
                .await
                .map_err(|_| StoreError::Internal("store is closed".into()))?
        })
    }

    fn close(&self) -> StoreFuture<()> {
        // Dropping the queue ends the writer once the queued writes are committed; then the
        // pool refuses everything.
        self.queue.lock().expect("queue").take();
        let writer = self.writer.lock().expect("writer").take();
        if let Some(listener) = self.listener.lock().expect("listener").take() {
            listener.abort();
        }
        self.sweeper.abort();
        let pool = self.pool.clone();
        let sweeps = self.pool_for_sweeps.clone();
        Box::pin(async move {
            if let Some(writer) = writer {
                writer
                    .await
                    .map_err(|e| StoreError::Internal(format!("writer task: {e}")))?;
            }
            pool.close();
            sweeps.close();
            Ok(())
        })
    }
}

/// Applies equality filters, then `_offset` and `_limit`, to rows read without paging (with
/// no filters the rows were already paged by SQL).
fn filter_page(models: Vec<Value>, query: &Query) -> Vec<Value> {
    if query.filters.is_empty() {
        return models;
    }
    let matches = |model: &Value| {
        query
            .filters
            .iter()
            .all(|(key, want)| model.get(key) == Some(want))
    };
    let take = query
        .limit
        .map_or(usize::MAX, |l| l.min(usize::MAX as u64) as usize);
    models
        .into_iter()
        .filter(matches)
        .skip(query.offset.min(usize::MAX as u64) as usize)
        .take(take)
        .collect()
}

fn parse_doc(doc: &str) -> Result<Value, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Internal(format!("corrupt document: {e}")))
}

/// A failure to get a connection: the database is unreachable (or every connection is busy
/// for longer than [`CONNECT_WAIT`]); a closed pool means the store was closed.
fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Closed => StoreError::Internal("store is closed".into()),
        PoolError::Backend(error) => pg_error(error),
        other => StoreError::Unavailable(with_causes(&other)),
    }
}

/// A failed statement: lost connections and a database shutting down or starting up are
/// [`StoreError::Unavailable`] (the request may be retried); anything else is internal.
fn pg_error(error: tokio_postgres::Error) -> StoreError {
    let unavailable = match error.code() {
        // No SQLSTATE: the connection failed (closed, i/o, connect, timeout) or a value did
        // not convert; only the former is worth a retry.
        None => {
            error.is_closed()
                || std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>())
                || error.to_string().starts_with("error connecting")
                || error.to_string().starts_with("timeout")
        }
        Some(code) => {
            code.code().starts_with("08") // connection exception
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
                || *code == SqlState::TOO_MANY_CONNECTIONS
                // A batch that kept meeting locks (a frozen node's, until the server ends its
                // transaction) or ran out of time: worth a retry.
                || *code == SqlState::LOCK_NOT_AVAILABLE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::QUERY_CANCELED
                || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        }
    };
    let message = with_causes(&error);
    if unavailable {
        StoreError::Unavailable(message)
    } else {
        StoreError::Internal(message)
    }
}

/// `error: cause: cause…`, since tokio-postgres keeps the reason (the i/o error, the
/// server's message) in the source chain.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}
