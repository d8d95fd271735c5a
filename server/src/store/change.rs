//! Committed writes as a feed, for a store that carries its writes' broadcasts itself.
//!
//! The PostgreSQL store does ([`super::postgres`]): each write's broadcast record is written
//! and NOTIFYed inside the write's own transaction, so it is delivered at COMMIT to every node
//! listening — also when the node that wrote it dies right after its COMMIT, before it could
//! reply or broadcast anything. Every node turns the feed into emits to its own sockets
//! ([`crate::live`]). Nodes write at the same time, so the feed's order is not a total order
//! of one document's writes: each change carries the document's `version`, and a consumer
//! keeps the highest. Where a feed lost changes it says so ([`FeedItem::Resync`]).
//!
//! The SQLite store does too ([`super::sqlite`]), for this process's writes only: its writer
//! thread hands each batch's changes on right after COMMIT, in commit order, so that one task
//! emits them in that order (requests broadcasting after their own writes race each other,
//! and a subscriber's last broadcast could be older than the stored model). A store without a
//! feed leaves the broadcast to its caller, after the write.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

/// The socket a write came from: its namespace and socket id. It has its reply, so its own
/// write's broadcast leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The socket's namespace, e.g. `/`.
    pub ns: String,
    /// The socket id, as socket.io prints it.
    pub sid: String,
}

/// One committed write, as every node's broadcaster receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The write's place in the feed, for logs and clients: PostgreSQL's outbox row (unique,
    /// with gaps, not in commit order across nodes: order by `version`), SQLite's count of
    /// this process's committed writes.
    pub seq: i64,
    /// The socket that sent it, when that socket is on this node (else `None`: every
    /// subscriber here hears it).
    pub origin: Option<Origin>,
    /// Whose documents it changed (`""` when authentication is off).
    pub owner: String,
    /// `create`, `update`, `patch` or `delete`.
    pub method: String,
    /// The collection path.
    pub collection: String,
    /// The model's id segment (a create's new id).
    pub id: String,
    /// The stored model (`{}` for a delete).
    pub item: Value,
    /// The model's version after the write (see [`super::Applied::version`]).
    pub version: i64,
}

/// One item of a change feed.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// A committed write.
    Change(Change),
    /// The feed lost changes it can no longer deliver (its listener was away for longer than
    /// the database keeps them): whoever follows this node's feed must catch up by reading
    /// again (the `resync` event of [`crate::live`]).
    Resync,
}

impl From<Change> for FeedItem {
    fn from(change: Change) -> Self {
        Self::Change(change)
    }
}

/// The changes of every node, each once, or a [`FeedItem::Resync`] where some were lost (see
/// [`super::Store::changes`]).
pub type ChangeFeed = mpsc::UnboundedReceiver<FeedItem>;
