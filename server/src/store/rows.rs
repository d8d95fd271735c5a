//! Collection reads as JSON text straight from the store's rows: documents are stored as JSON
//! text, so a page of them is answered by joining that text into an array, never by parsing
//! every document into a `Value` and serialising it again (only the documents a filter must
//! look into are parsed).
//!
//! Two shapes, for the two transports:
//! - [`JsonPage`]: the whole array in one string (a socket.io ack is one packet);
//! - [`Rows`]: the array in pieces of about [`PIECE_BYTES`], sent by the store as it reads
//!   them through a small bounded channel (an HTTP body is written as it comes), with the
//!   page's model count and whether more matched known before the first piece (the REST
//!   answer's `X-Truncated-At` header goes out before its body).
//!
//! [`Cutter`] holds the paging rules both backends apply as rows go by: equality filters,
//! `_offset`, `_limit` and the byte bound.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Page, Query, StoreError};

/// About how many bytes of JSON one piece of a [`Rows`] stream holds.
pub const PIECE_BYTES: usize = 64 * 1024;
/// Pieces a stream may have read ahead of its consumer (so at most about 512 KiB).
pub const PIECES_AHEAD: usize = 8;
/// How long a stream waits for its consumer to take a piece before it gives up: a client
/// that stops reading its answer must not hold a database connection and its snapshot for
/// ever.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// What a collection read as stored text asks a store for (both backends' pages and streams).
pub struct PageRequest {
    /// The reader's owner scope.
    pub owner: String,
    /// The collection read.
    pub collection: String,
    /// Its filters, order, `_limit` and `_offset`.
    pub query: Query,
    /// The page's byte bound.
    pub max_bytes: usize,
}

impl PageRequest {
    /// The request for `owner`'s `collection` under `query`, at most `max_bytes`.
    pub fn new(owner: &str, collection: &str, query: Query, max_bytes: usize) -> Self {
        Self {
            owner: owner.to_owned(),
            collection: collection.to_owned(),
            query,
            max_bytes,
        }
    }
}

/// One page of a collection read as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPage {
    /// The models as a JSON array, each document's text as stored.
    pub json: String,
    /// How many models the array holds.
    pub count: u64,
    /// True when the read stopped (at the limit or at the byte bound) before every model that
    /// matched.
    pub more: bool,
}

impl JsonPage {
    /// The text of a page read as values (what the [`super::Store`] default methods build on).
    pub fn from_page(page: Page) -> Result<Self, StoreError> {
        let json = serde_json::to_string(&page.models)
            .map_err(|e| StoreError::Internal(format!("serialising a page: {e}")))?;
        Ok(Self {
            json,
            count: page.models.len() as u64,
            more: page.more,
        })
    }
}

/// A collection read on its way out of the store: its size first, then its JSON array text
/// in pieces, in order. Dropping it tells the store to stop reading.
pub struct Rows {
    /// How many models the array will hold.
    pub count: u64,
    /// True when the read stops before every model that matched (see [`JsonPage::more`]).
    pub more: bool,
    pieces: mpsc::Receiver<Result<String, StoreError>>,
}

impl Rows {
    /// A stream of `count` models to be sent through the returned sender, in pieces.
    pub fn channel(count: u64, more: bool) -> (mpsc::Sender<Result<String, StoreError>>, Self) {
        let (tx, pieces) = mpsc::channel(PIECES_AHEAD);
        (
            tx,
            Self {
                count,
                more,
                pieces,
            },
        )
    }

    /// A stream of one piece: a page already read whole.
    pub fn from_json(page: JsonPage) -> Self {
        let (tx, rows) = Self::channel(page.count, page.more);
        // The channel has room for it, and the receiver is alive.
        let _ = tx.try_send(Ok(page.json));
        rows
    }

    /// The next piece of the array; `None` after the last one. An error means the store
    /// failed (or gave up waiting, see [`STALL_TIMEOUT`]) part way: the array is incomplete.
    pub async fn next(&mut self) -> Option<Result<String, StoreError>> {
        self.pieces.recv().await
    }
}

/// What to do with a row offered to a [`Cutter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It belongs to the page.
    Take,
    /// It does not match the filters, or falls before the offset.
    Pass,
    /// The page is full (limit or byte bound) and this row matched: stop reading.
    Stop,
}

/// The paging rules of a collection read, applied to its rows in order: equality filters on
/// top-level attributes, then `_offset`, then `_limit` and the byte bound (a page holds at
/// least one model).
pub struct Cutter<'q> {
    query: &'q Query,
    skip: u64,
    limit: u64,
    max_bytes: usize,
    count: u64,
    bytes: usize,
    more: bool,
}

impl<'q> Cutter<'q> {
    /// The rules of `query` with at most `max_bytes` of documents. Without filters the store
    /// skips the offset in SQL ([`Cutter::sql_offset`]); with them, it is counted here.
    pub fn new(query: &'q Query, max_bytes: usize) -> Self {
        Self {
            query,
            skip: if query.filters.is_empty() {
                0
            } else {
                query.offset
            },
            limit: query.limit.unwrap_or(u64::MAX),
            max_bytes,
            count: 0,
            bytes: 0,
            more: false,
        }
    }

    /// The rows the store's SQL query skips itself: the offset, when there are no filters.
    pub fn sql_offset(query: &Query) -> i64 {
        if query.filters.is_empty() {
            query.offset.min(i64::MAX as u64) as i64
        } else {
            0
        }
    }

    /// Decides about the next row, whose document is `doc`.
    pub fn offer(&mut self, doc: &str) -> Result<Verdict, StoreError> {
        if !self.query.filters.is_empty() && !self.matches(doc)? {
            return Ok(Verdict::Pass);
        }
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(Verdict::Pass);
        }
        let full = self.count >= self.limit
            || (self.count > 0 && self.bytes.saturating_add(doc.len()) > self.max_bytes);
        if full {
            self.more = true;
            return Ok(Verdict::Stop);
        }
        self.count += 1;
        self.bytes = self.bytes.saturating_add(doc.len());
        Ok(Verdict::Take)
    }

    fn matches(&self, doc: &str) -> Result<bool, StoreError> {
        let model: Value = serde_json::from_str(doc)
            .map_err(|e| StoreError::Internal(format!("corrupt document: {e}")))?;
        Ok(self
            .query
            .filters
            .iter()
            .all(|(key, want)| model.get(key) == Some(want)))
    }

    /// Models taken so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True once a matching row was refused because the page was full.
    pub fn more(&self) -> bool {
        self.more
    }
}

/// A JSON array written a document at a time, handed out in pieces of about [`PIECE_BYTES`].
#[derive(Debug)]
pub struct ArrayWriter {
    buf: String,
    started: bool,
    piece_bytes: usize,
}

impl ArrayWriter {
    /// An array to be handed out in pieces (see [`ArrayWriter::push`]).
    pub fn pieces() -> Self {
        Self {
            buf: String::with_capacity(PIECE_BYTES + 1024),
            started: false,
            piece_bytes: PIECE_BYTES,
        }
    }

    /// An array kept whole, with room for `capacity` bytes.
    pub fn whole(capacity: usize) -> Self {
        Self {
            buf: String::with_capacity(capacity),
            started: false,
            piece_bytes: usize::MAX,
        }
    }

    /// Appends one document; returns a piece when one is full.
    pub fn push(&mut self, doc: &str) -> Option<String> {
        self.buf.push(if self.started { ',' } else { '[' });
        self.started = true;
        self.buf.push_str(doc);
        (self.buf.len() >= self.piece_bytes)
            .then(|| std::mem::replace(&mut self.buf, String::with_capacity(PIECE_BYTES + 1024)))
    }

    /// Closes the array: the last piece (or, for a whole array, all of it).
    pub fn finish(mut self) -> String {
        if !self.started {
            self.buf.push('[');
        }
        self.buf.push(']');
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offer_all(query: &Query, max_bytes: usize, docs: &[&str]) -> (Vec<usize>, bool) {
        let mut cutter = Cutter::new(query, max_bytes);
        let mut taken = Vec::new();
        for (n, doc) in docs.iter().enumerate() {
            match cutter.offer(doc).unwrap() {
                Verdict::Take => taken.push(n),
                Verdict::Pass => {}
                Verdict::Stop => break,
            }
        }
        assert_eq!(cutter.count(), taken.len() as u64);
        (taken, cutter.more())
    }

    #[test]
    fn filters_offset_limit_and_bytes() {
        let docs = [
            r#"{"id":1,"k":"a"}"#,
            r#"{"id":2,"k":"b"}"#,
            r#"{"id":3,"k":"a"}"#,
            r#"{"id":4,"k":"a"}"#,
        ];
        let all = Query::default();
        assert_eq!(
            offer_all(&all, usize::MAX, &docs),
            (vec![0, 1, 2, 3], false)
        );
        let limited = Query {
            limit: Some(2),
            ..Query::default()
        };
        assert_eq!(offer_all(&limited, usize::MAX, &docs), (vec![0, 1], true));
        let mut filtered = Query {
            offset: 1,
            ..Query::default()
        };
        filtered.filters.insert("k".into(), json!("a"));
        assert_eq!(offer_all(&filtered, usize::MAX, &docs), (vec![2, 3], false));
        assert_eq!(Cutter::sql_offset(&filtered), 0, "counted here");
        assert_eq!(Cutter::sql_offset(&limited), 0);
        // Each document is 16 bytes: 40 bytes hold two; a page holds at least one.
        assert_eq!(offer_all(&all, 40, &docs), (vec![0, 1], true));
        assert_eq!(offer_all(&all, 1, &docs), (vec![0], true));
    }

    #[test]
    fn arrays_in_pieces_join_to_the_whole() {
        let mut writer = ArrayWriter::pieces();
        let doc = format!(r#"{{"p":"{}"}}"#, "x".repeat(1000));
        let mut text = String::new();
        for _ in 0..200 {
            if let Some(piece) = writer.push(&doc) {
                assert!(piece.len() >= PIECE_BYTES);
                text.push_str(&piece);
            }
        }
        text.push_str(&writer.finish());
        let parsed: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 200);
        assert_eq!(ArrayWriter::whole(0).finish(), "[]");
        let mut one = ArrayWriter::whole(16);
        assert_eq!(one.push("{}"), None);
        assert_eq!(one.finish(), "[{}]");
    }
}
