//! The document store behind a small trait, so another database (PostgreSQL) can be added
//! beside the embedded SQLite one without touching the socket or REST layers.
//!
//! Documents are JSON objects keyed by (collection path, id). Every write may carry a
//! client-generated request id: the store records it with the write's result in the same
//! transaction, and answers a repeat with the recorded result instead of applying it again.

pub mod open;
pub mod postgres;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A JSON object: what Backbone models serialize to.
pub type Object = Map<String, Value>;

/// The future a store method returns (boxed so the trait can be used as `dyn Store`).
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// What can go wrong in a store.
#[derive(Debug)]
pub enum StoreError {
    /// The model does not exist.
    NotFound,
    /// The stored document would exceed the size bound (bytes).
    TooLarge(usize),
    /// The request id was already used for a different method or endpoint.
    RequestIdReused,
    /// The database failed; the message is for the log.
    Internal(String),
    /// The database cannot be reached right now (lost connection, shutting down, starting up):
    /// the request may be retried; the message is for the log.
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::TooLarge(limit) => ApiError::too_large(limit),
            StoreError::RequestIdReused => ApiError {
                status: 409,
                message: "requestId was already used for another request".into(),
            },
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
    /// Insert `item` with a fresh integer id, unique in the collection.
    Create {
        /// Collection path.
        collection: String,
        /// The new model's attributes (any `id` in it is replaced).
        item: Object,
    },
    /// Replace the model (inserting it when absent: PUT semantics).
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

/// A write plus the client's request id, if it sent one.
#[derive(Debug, Clone)]
pub struct Write {
    /// What to change.
    pub op: WriteOp,
    /// `signature.requestId`: a repeat returns the first result without applying again.
    pub request_id: Option<String>,
}

/// The result of a committed write.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The reply: the stored model, or `{}` for a delete.
    pub value: Value,
    /// True when the request id was already known and nothing was applied now
    /// (so a live broadcast must not be sent again).
    pub replayed: bool,
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

/// A document store. Every method resolves only after its write is durable.
pub trait Store: Send + Sync + 'static {
    /// Applies one write (or replays the recorded result of its request id).
    fn write(&self, write: Write) -> StoreFuture<Applied>;

    /// All models of a collection matching `query`, in insertion order.
    fn read_collection(&self, collection: &str, query: Query) -> StoreFuture<Vec<Value>>;

    /// One model, or [`StoreError::NotFound`].
    fn read_model(&self, collection: &str, id: &str) -> StoreFuture<Value>;

    /// Finishes pending writes and releases the database.
    fn close(&self) -> StoreFuture<()>;

    /// Creates a model in `collection`; see [`WriteOp::Create`].
    fn create(
        &self,
        collection: &str,
        item: Object,
        request_id: Option<String>,
    ) -> StoreFuture<Applied> {
        self.write(Write {
            op: WriteOp::Create {
                collection: collection.into(),
                item,
            },
            request_id,
        })
    }

    /// Replaces a model; see [`WriteOp::Update`].
    fn update(
        &self,
        collection: &str,
        id: &str,
        item: Object,
        request_id: Option<String>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Update {
            collection: collection.into(),
            id: id.into(),
            item,
        };
        self.write(Write { op, request_id })
    }

    /// Merges into a model; see [`WriteOp::Patch`].
    fn patch(
        &self,
        collection: &str,
        id: &str,
        item: Object,
        request_id: Option<String>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Patch {
            collection: collection.into(),
            id: id.into(),
            item,
        };
        self.write(Write { op, request_id })
    }

    /// Deletes a model; see [`WriteOp::Delete`].
    fn delete(
        &self,
        collection: &str,
        id: &str,
        request_id: Option<String>,
    ) -> StoreFuture<Applied> {
        let op = WriteOp::Delete {
            collection: collection.into(),
            id: id.into(),
        };
        self.write(Write { op, request_id })
    }
}
