//! Collection reads, answered with the stored documents' JSON text as it comes from the store
//! (see [`crate::store::rows`]): never parsed into values and serialised again, and on REST
//! never held whole.
//!
//! - **REST**: the answer's body is written as the store reads the rows (chunked transfer
//!   encoding), a few pieces of about 64 KiB in memory at a time, all from one snapshot. The
//!   store counts the page first, so `X-Truncated-At` (when the server's bound cut the read)
//!   goes out in the headers, before the body.
//! - **socket.io**: an ack is one packet, so the array is built whole, straight from the rows'
//!   text, and handed to socketioxide as raw JSON ([`Payload::Raw`]): one string per read,
//!   where there used to be a value per model plus its serialisation.
//!
//! A [`CollectionRead`] is what [`crate::api::Api`] answers for a collection read once its
//! turn has come in its client's lane ([`crate::order`]); the transport runs it, holding the
//! turn until the store has taken its snapshot.

use std::fmt;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::ApiError;
use crate::order::{ReadSlot, Ticket};
use crate::store::rows::Rows;
use crate::store::{Query, Store};

/// A collection read whose turn has come, to be run by its transport.
pub struct CollectionRead {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) owner: String,
    pub(crate) collection: String,
    /// The query with the server's `--max-read` bound applied to its limit.
    pub(crate) query: Query,
    /// The client's own `_limit`, if any: a page cut there is no truncation.
    pub(crate) asked: Option<u64>,
    /// `--max-read-bytes`.
    pub(crate) max_bytes: usize,
    /// The read's place in its client's order, held until the store has its snapshot.
    pub(crate) turn: Option<(Ticket, ReadSlot)>,
}

impl fmt::Debug for CollectionRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectionRead")
            .field("owner", &self.owner)
            .field("collection", &self.collection)
            .field("query", &self.query)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl CollectionRead {
    /// True when the server's bound, not the client's own `_limit`, ended a page of `count`
    /// models while more matched.
    fn truncated(&self, count: u64, more: bool) -> bool {
        more && self.asked.is_none_or(|limit| limit > count)
    }

    /// Reads the page whole, as raw JSON (the socket's answer), and whether it was truncated.
    pub async fn json(mut self) -> Result<(Box<RawValue>, bool), ApiError> {
        let query = std::mem::take(&mut self.query);
        let read = self
            .store
            .read_json_page(&self.owner, &self.collection, query, self.max_bytes);
        let page = read.await?;
        // The read has run: the client's later requests may go ahead.
        drop(self.turn.take());
        let truncated = self.truncated(page.count, page.more);
        let raw = RawValue::from_string(page.json).map_err(|error| {
            tracing::error!(%error, "a page of stored documents is not JSON");
            ApiError::internal()
        })?;
        Ok((raw, truncated))
    }

    /// Starts the page's stream; resolves once the store has counted it and taken its
    /// snapshot, and releases the read's turn then (later writes cannot change the page).
    pub async fn stream(mut self) -> Result<(Rows, bool), ApiError> {
        let query = std::mem::take(&mut self.query);
        let read = self
            .store
            .stream_page(&self.owner, &self.collection, query, self.max_bytes);
        let rows = read.await?;
        drop(self.turn.take());
        let truncated = self.truncated(rows.count, rows.more);
        Ok((rows, truncated))
    }

    /// The REST answer: `200`, `application/json`, `X-Truncated-At: <count>` when the
    /// server's bound cut the read, and the array as the store reads it. A failure part way
    /// ends the body early (the connection is closed), as with any streamed answer.
    pub async fn respond(self, truncated_header: &'static str) -> Result<Response, ApiError> {
        let (rows, truncated) = self.stream().await?;
        let count = rows.count;
        let pieces = futures_util::stream::unfold(rows, |mut rows| async move {
            let piece = rows.next().await?;
            let piece = piece.map(Bytes::from).map_err(|error| {
                tracing::warn!(%error, "collection read failed part way");
                std::io::Error::other(error.to_string())
            });
            Some((piece, rows))
        });
        let mut response = Response::new(Body::from_stream(pieces));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if truncated {
            headers.insert(truncated_header, HeaderValue::from(count));
        }
        Ok(response)
    }
}

/// A socket reply: a value, or JSON text already made (a collection read).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// A value serialised when the packet is written.
    Value(Value),
    /// JSON text written as is.
    Raw(Box<RawValue>),
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload::Value(value)
    }
}
