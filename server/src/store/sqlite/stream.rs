//! Collection reads of the SQLite store as JSON text (see [`crate::store::rows`]): a page in
//! one string on a reader thread, or a page streamed by a thread of its own.
//!
//! A stream runs in one read transaction (WAL: a snapshot, never waiting for the writer): a
//! first walk over the rows counts the page without keeping anything, so that its size is
//! known before the first byte of the answer; a second walk over the same snapshot sends the
//! documents' text in pieces through a bounded channel, waiting for the consumer between
//! pieces (at most [`STALL_TIMEOUT`] each). It runs on its own thread, not on a reader
//! thread: a slow consumer would otherwise hold up every other collection read.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::{internal, open_connection};
use crate::store::rows::{
    ArrayWriter, Cutter, JsonPage, PageRequest, Rows, Verdict, STALL_TIMEOUT,
};
use crate::store::{Query, StoreError};

/// Walks the rows of `owner`'s `collection` in order, offering each document to a [`Cutter`]
/// of `query` and handing the taken ones to `take` (which returns false to stop); returns the
/// page's model count and whether more matched.
fn walk(
    conn: &Connection,
    owner: &str,
    collection: &str,
    query: &Query,
    max_bytes: usize,
    mut take: impl FnMut(&str) -> bool,
) -> Result<(u64, bool), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT doc FROM documents WHERE owner = ?1 AND collection = ?2
             ORDER BY rowid LIMIT -1 OFFSET ?3",
        )
        .map_err(internal)?;
    let mut rows = stmt
        .query(params![owner, collection, Cutter::sql_offset(query)])
        .map_err(internal)?;
    let mut cutter = Cutter::new(query, max_bytes);
    while let Some(row) = rows.next().map_err(internal)? {
        let doc = row.get_ref(0).map_err(internal)?;
        let doc = doc
            .as_str()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        match cutter.offer(doc)? {
            Verdict::Take if !take(doc) => break,
            Verdict::Take | Verdict::Pass => {}
            Verdict::Stop => break,
        }
    }
    Ok((cutter.count(), cutter.more()))
}

/// One page as a JSON array of the stored text, in one walk.
pub(super) fn json_page(
    conn: &Connection,
    owner: &str,
    collection: &str,
    query: &Query,
    max_bytes: usize,
) -> Result<JsonPage, StoreError> {
    let mut array = ArrayWriter::whole(4096);
    let (count, more) = walk(conn, owner, collection, query, max_bytes, |doc| {
        array.push(doc);
        true
    })?;
    Ok(JsonPage {
        json: array.finish(),
        count,
        more,
    })
}

/// Starts a stream on a thread of its own with a connection of its own to `path`; `head`
/// receives the [`Rows`] once the page is counted (or the error). `permit` is held until the
/// stream ends (it bounds the streams running at once).
pub(super) fn start(
    path: &Path,
    request: PageRequest,
    permit: OwnedSemaphorePermit,
    head: oneshot::Sender<Result<Rows, StoreError>>,
) -> Result<(), StoreError> {
    let handle = Handle::try_current().map_err(|e| StoreError::Internal(e.to_string()))?;
    let path: Arc<Path> = path.into();
    std::thread::Builder::new()
        .name("sqlite-stream".into())
        .spawn(move || {
            super::readers::lower_priority();
            match open_connection(&path) {
                Ok(conn) => run(&conn, &handle, &request, head),
                Err(error) => {
                    let _ = head.send(Err(error));
                }
            }
            drop(permit);
        })
        .map(|_| ())
        .map_err(|e| StoreError::Internal(e.to_string()))
}

/// Counts, then streams, inside one read transaction. Errors before the head is sent go to
/// the head; later ones end the stream with the error.
fn run(
    conn: &Connection,
    handle: &Handle,
    request: &PageRequest,
    head: oneshot::Sender<Result<Rows, StoreError>>,
) {
    let PageRequest {
        owner,
        collection,
        query,
        max_bytes,
    } = request;
    let counted = conn
        .execute_batch("BEGIN")
        .map_err(internal)
        .and_then(|()| walk(conn, owner, collection, query, *max_bytes, |_| true));
    let (count, more) = match counted {
        Ok(counted) => counted,
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            let _ = head.send(Err(error));
            return;
        }
    };
    let (tx, rows) = Rows::channel(count, more);
    if head.send(Ok(rows)).is_err() {
        let _ = conn.execute_batch("ROLLBACK");
        return; // nobody waits for it any more
    }
    // Waits for the consumer with the runtime's timer (this thread is not a runtime thread).
    let send = |piece: Result<String, StoreError>| {
        handle
            .block_on(async { tokio::time::timeout(STALL_TIMEOUT, tx.send(piece)).await })
            .is_ok_and(|sent| sent.is_ok())
    };
    let mut array = ArrayWriter::pieces();
    let mut delivered = true;
    let walked = walk(
        conn,
        owner,
        collection,
        query,
        *max_bytes,
        |doc| match array.push(doc) {
            Some(piece) => {
                delivered = send(Ok(piece));
                delivered
            }
            None => true,
        },
    );
    let _ = conn.execute_batch("COMMIT");
    match walked {
        Ok(_) if delivered => {
            send(Ok(array.finish()));
        }
        Ok(_) => tracing::debug!("collection stream not taken in time (or dropped); stopped"),
        Err(error) => {
            send(Err(error));
        }
    }
}
