//! The document store behind a small trait, so another database (PostgreSQL) can be added
//! beside the embedded SQLite one without touching the socket or REST layers.
//!
//! Documents are JSON objects keyed by (owner, collection path, id): the owner is the
//! authenticated user (`sub`), or `""` when authentication is off, so each user's collections
//! are their own and ids are assigned per owner and collection. Every write may carry a
//! client-generated request id, scoped (per user, or per client identity; see [`RequestId`]):
//! the store records it with a fingerprint of the request ([`Write::fingerprint`]) and the
//! write's result in the same transaction, answers a repeat of the same request with the
//! recorded result instead of applying it again, and refuses the same id for a different
//! request ([`StoreError::RequestIdReused`]).

pub mod change;
pub mod decide;
pub mod expiry;
pub mod fair;
pub mod open;
pub mod postgres;
pub mod rows;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::error::ApiError;
use rows::{JsonPage, Rows};

/// A JSON object: what Backbone models serialize to.
pub type Object = Map<String, Value>;

/// The future a store method returns (boxed so the trait can be used as `dyn Store`).
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The model does not exist.
    #[error("not found")]
    NotFound,
    /// The stored document would exceed the size bound (bytes).
    #[error("document larger than {0} bytes")]
    TooLarge(usize),
    /// The request id was already used, in its scope, for a different request (another
    /// method, endpoint, body or owner).
    #[error("request id already used for another request")]
    RequestIdReused,
    /// The write's condition ([`Write::if_version`]) is not the stored version: nothing was
    /// applied. A replay of the same request answers the same conflict.
    #[error("version conflict: stored version is {version}")]
    Conflict {
        /// The stored document (`null` when there is none).
        current: Value,
        /// Its version (0 when there is none).
        version: i64,
    },
    /// The collection's integer ids are used up to [`crate::ids::MAX_ID`].
    #[error("the collection's integer ids are used up")]
    IdsExhausted,
    /// The database failed; the message is for the log.
    #[error("database error: {0}")]
    Internal(String),
    /// The database cannot be reached right now (lost connection, shutting down, starting up):
    /// the request may be retried; the message is for the log.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::TooLarge(limit) => ApiError::too_large(limit),
            StoreError::RequestIdReused => {
                ApiError::new(409, "requestId was already used for another request")
            }
            StoreError::Conflict { current, version } => ApiError::conflict(current, version),
            StoreError::IdsExhausted => ApiError::new(
                507,
                format!(
                    "the collection's integer ids are used up (largest is {})",
                    crate::ids::MAX_ID
                ),
            ),
            StoreError::Internal(message) => {
                tracing::error!(%message, "store failure");
                ApiError::internal()
            }
            StoreError::Unavailable(message) => {
                tracing::warn!(%message, "database unavailable");
                ApiError::unavailable()
            }
        }
    }
}

/// One write, as the store applies it. Ids are the endpoint's last segment.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert `item` with a fresh integer id, unique in the collection: the next of the
    /// collection's sequence (1..=[`crate::ids::MAX_ID`], never reused), skipping ids that
    /// clients chose with [`WriteOp::Update`]; client-chosen ids never move the sequence.
    /// Past the largest id, [`StoreError::IdsExhausted`].
    Create {
        /// Collection path.
        collection: String,
        /// The new model's attributes (any `id` in it is replaced).
        item: Object,
    },
    /// Replace the model (inserting it when absent: PUT semantics). The id is never moved
    /// into the collection's sequence.
    Update {
        /// Collection path.
        collection: String,
        /// Model id segment.
        id: String,
        /// The model's new attributes, `id` already consistent with the endpoint.
        item: Object,
    },
    /// Merge top-level keys into an existing model.
    Patch {
        /// Collection path.
        collection: String,
        /// Model id segment.
        id: String,
        /// The attributes to set.
        item: Object,
    },
    /// Remove the model.
    Delete {
        /// Collection path.
        collection: String,
        /// Model id segment.
        id: String,
    },
}

impl WriteOp {
    /// The Backbone method name of this write.
    pub fn method(&self) -> &'static str {
        match self {
            WriteOp::Create { .. } => "create",
            WriteOp::Update { .. } => "update",
            WriteOp::Patch { .. } => "patch",
            WriteOp::Delete { .. } => "delete",
        }
    }

    /// The collection path the write changes.
    pub fn collection(&self) -> &str {
        match self {
            WriteOp::Create { collection, .. }
            | WriteOp::Update { collection, .. }
            | WriteOp::Patch { collection, .. }
            | WriteOp::Delete { collection, .. } => collection,
        }
    }

    /// The endpoint path the write was sent to.
    pub fn endpoint(&self) -> String {
        match self {
            WriteOp::Create { collection, .. } => collection.clone(),
            WriteOp::Update { collection, id, .. }
            | WriteOp::Patch { collection, id, .. }
            | WriteOp::Delete { collection, id } => format!("{collection}/{id}"),
        }
    }
}

/// `io::Write` into a SHA-256 context, so serde_json can serialize straight into the hash.
struct Digest<'a>(&'a mut ring::digest::Context);

impl std::io::Write for Digest<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A client's request id within its scope: the pair is the key of the store's request record.
///
/// The scope keeps one client from ever matching another's ids: it is the user (`sub`) when
/// authentication is on, the client id a connection or REST call declared when it is off, and
/// [`RequestId::SHARED_SCOPE`] for clients that declare none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    /// Whose ids these are.
    pub scope: String,
    /// `signature.requestId` or the REST `X-Request-Id` header.
    pub id: String,
}

impl RequestId {
    /// The scope of clients that declare no identity (authentication off, no client id).
    pub const SHARED_SCOPE: &'static str = "";

    /// The id `id` in `scope`.
    pub fn new(scope: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            id: id.into(),
        }
    }
}

/// A write plus its owner and the client's request id, if it sent one.
#[derive(Debug, Clone)]
pub struct Write {
    /// Whose documents it changes (`""` when authentication is off).
    pub owner: String,
    /// What to change.
    pub op: WriteOp,
    /// A repeat of the same request under this id returns the first result without applying
    /// it again; a different request under it is refused.
    pub request_id: Option<RequestId>,
    /// Apply only if the model's stored version is this one (0: only if there is no such
    /// model), else fail with [`StoreError::Conflict`]; `None` applies unconditionally (last
    /// writer wins). Socket `ifVersion`, REST `If-Match`.
    pub if_version: Option<i64>,
}

impl Write {
    /// The hex SHA-256 of the owner, method, endpoint and body: what a request record is bound
    /// to, so a request id answers only a repeat of the very request that recorded it. Every
    /// store keeps this text as is; the body is hashed as serde_json writes it.
    pub fn fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [self.owner.as_str(), self.op.method(), &self.op.endpoint()] {
            // Length-prefixed, so no two different triples hash the same bytes.
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        if let WriteOp::Create { item, .. }
        | WriteOp::Update { item, .. }
        | WriteOp::Patch { item, .. } = &self.op
        {
            // Streamed into the hash: no copy of a large body is built.
            let _ = serde_json::to_writer(Digest(&mut ctx), item);
        }
        if let Some(version) = self.if_version {
            // Only conditional writes hash it, so the fingerprints recorded before versions
            // existed stay the same.
            ctx.update(b"ifVersion");
            ctx.update(&version.to_be_bytes());
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = ctx.finish();
        let mut hex = String::with_capacity(2 * digest.as_ref().len());
        for byte in digest.as_ref() {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        hex
    }
}

/// The result of a committed write.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The reply: the stored model, or `{}` for a delete.
    pub value: Value,
    /// True when the request id was already known and nothing was applied now
    /// (so a live broadcast must not be sent again).
    pub replayed: bool,
    /// The model's version after the write: 1 when created, one more at each write (for a
    /// delete, the version the model had when it was deleted, plus one).
    pub version: i64,
}

/// A stored model and its version (see [`Applied::version`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The model.
    pub value: Value,
    /// Its version.
    pub version: i64,
}

/// Filters and paging for reading a collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Top-level attributes that must equal these values.
    pub filters: Object,
    /// At most this many models.
    pub limit: Option<u64>,
    /// Skip this many models first.
    pub offset: u64,
}

/// One page of a collection read: the models, and whether more matched after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The models, in insertion order.
    pub models: Vec<Value>,
    /// True when the read stopped (at `limit` or at the byte bound) before every model that
    /// matched.
    pub more: bool,
}

/// A document store. Every method resolves only after its write is durable.
pub trait Store: Send + Sync + 'static {
    /// Applies one write (or replays the recorded result of its request id).
    ///
    /// Order: the write takes its place when `write` is *called*, not when the future is
    /// first polled, and the writes of one client ([`fair::Client`]: the socket `origin` of
    /// [`Store::write_from`], else the owner) are applied in the order of those calls (two
    /// writes to the same model from one client end with the later one). Read-your-writes
    /// ([`crate::order`]) relies on it: it calls `write` in each client's request order and
    /// lets a client's pipelined writes share a batch. Writes of different clients may be
    /// interleaved, so that each client gets its share of the writer ([`fair`]).
    fn write(&self, write: Write) -> StoreFuture<Applied>;

    /// Like [`Store::write`], for a write sent by the socket `origin`, which its broadcast
    /// leaves out. A store with a [`Store::changes`] feed carries `origin` in the write's
    /// change; the default ignores it (the caller broadcasts).
    fn write_from(&self, write: Write, origin: Option<change::Origin>) -> StoreFuture<Applied> {
        let _ = origin;
        self.write(write)
    }

    /// The committed writes of every node sharing the database, each once (a
    /// [`change::FeedItem::Resync`] where some were lost), when the store carries its writes' broadcasts itself (see [`change`]); `None`
    /// (the default) when the caller must broadcast after each write. Started by the first
    /// call, which takes the feed; later calls return `None`.
    fn changes(&self) -> Option<change::ChangeFeed> {
        None
    }

    /// True when [`Store::changes`] carries this node's writes only (an embedded database),
    /// so its broadcasts must reach other nodes through the adapter; false (the default) when
    /// every node reads every node's changes from the shared database.
    fn changes_are_local(&self) -> bool {
        false
    }

    /// All of `owner`'s models of a collection matching `query`, in insertion order.
    fn read_collection(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
    ) -> StoreFuture<Vec<Value>>;

    /// Like [`Store::read_collection`], but also says whether more models matched after the
    /// page, and stops before the model that would take the page's documents past
    /// `max_bytes` of JSON text (a page holds at least one model). Only the page is ever held
    /// in memory. The default reads one model more than `query.limit` to tell whether more
    /// matched, and ignores `max_bytes`.
    fn read_page(
        &self,
        owner: &str,
        collection: &str,
        mut query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Page> {
        let _ = max_bytes;
        let limit = query.limit;
        query.limit = limit.map(|l| l.saturating_add(1));
        let read = self.read_collection(owner, collection, query);
        Box::pin(async move {
            let mut models = read.await?;
            let more = limit.is_some_and(|l| models.len() as u64 > l);
            if let Some(l) = limit.filter(|_| more) {
                models.truncate(l as usize);
            }
            Ok(Page { models, more })
        })
    }

    /// Like [`Store::read_page`], as one JSON array made of the stored documents' text (see
    /// [`rows`]). The default serialises what `read_page` reads.
    fn read_json_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<JsonPage> {
        let read = self.read_page(owner, collection, query, max_bytes);
        Box::pin(async move { JsonPage::from_page(read.await?) })
    }

    /// Like [`Store::read_json_page`], streamed: resolves as soon as the page's model count
    /// and whether more matched are known, then yields the array in pieces as the store reads
    /// them, all from one snapshot; only a few pieces are ever held in memory. The default
    /// reads the page whole.
    fn stream_page(
        &self,
        owner: &str,
        collection: &str,
        query: Query,
        max_bytes: usize,
    ) -> StoreFuture<Rows> {
        let read = self.read_json_page(owner, collection, query, max_bytes);
        Box::pin(async move { Ok(Rows::from_json(read.await?)) })
    }

    /// One of `owner`'s models, or [`StoreError::NotFound`] (also when another owner has it).
    fn read_model(&self, owner: &str, collection: &str, id: &str) -> StoreFuture<Stored>;

    /// Finishes pending writes and releases the database.
    fn close(&self) -> StoreFuture<()>;

    /// Creates a model in `collection`; see [`WriteOp::Create`].
    fn create(
        &self,
        owner: &str,
        collection: &str,
        item: Object,
        request_id: Option<RequestId>,
    ) -> StoreFuture<Applied> {
        self.write(Write {
            owner: owner.into(),
            op: WriteOp::Create {
                collection: collection.into(),
                item,
            },
            request_id,
            if_version: None,
        })
    }

    /// Replaces a model; see [`WriteOp::Update`].
    fn update(
        &self,
        owner: &str,
        collection: &str,
        id: &str,
        item: Object,
        request_id: Option<RequestId>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Update {
            collection: collection.into(),
            id: id.into(),
            item,
        };
        self.write(Write {
            owner: owner.into(),
            op,
            request_id,
            if_version: None,
        })
    }

    /// Merges into a model; see [`WriteOp::Patch`].
    fn patch(
        &self,
        owner: &str,
        collection: &str,
        id: &str,
        item: Object,
        request_id: Option<RequestId>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Patch {
            collection: collection.into(),
            id: id.into(),
            item,
        };
        self.write(Write {
            owner: owner.into(),
            op,
            request_id,
            if_version: None,
        })
    }

    /// Deletes a model; see [`WriteOp::Delete`].
    fn delete(
        &self,
        owner: &str,
        collection: &str,
        id: &str,
        request_id: Option<RequestId>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Delete {
            collection: collection.into(),
            id: id.into(),
        };
        self.write(Write {
            owner: owner.into(),
            op,
            request_id,
            if_version: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint is stored: its bytes must never change between versions (or backends).
    #[test]
    fn fingerprints_are_stable() {
        let item = serde_json::json!({"t": 1}).as_object().unwrap().clone();
        let create = Write {
            owner: "alice".into(),
            op: WriteOp::Create {
                collection: "/api/todos".into(),
                item,
            },
            request_id: None,
            if_version: None,
        };
        assert_eq!(
            create.fingerprint(),
            "bd6a640233f5c65ad16282b6f1dc978a07e9d9b4051f966afb47e0f753332ea2"
        );
        let delete = Write {
            owner: String::new(),
            op: WriteOp::Delete {
                collection: "/api/todos".into(),
                id: "1".into(),
            },
            request_id: None,
            if_version: None,
        };
        assert_eq!(
            delete.fingerprint(),
            "37c855be419fbf155f4ee20d483a8646b0375dc5ff3db49242f9d88e914cf5d4"
        );
    }
}
