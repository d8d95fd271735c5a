//! Collection reads of the PostgreSQL store as JSON text (see [`crate::store::rows`]), with
//! rows taken from the server one at a time (`query_raw`), never all at once.
//!
//! A stream runs on a pooled connection in one `REPEATABLE READ READ ONLY` transaction: a
//! first pass counts the page without keeping anything (so its size is known before the
//! answer's first byte), a second pass over the same snapshot sends the documents' text in
//! pieces through a bounded channel, waiting for the consumer between pieces (at most
//! [`STALL_TIMEOUT`] each).

use deadpool_postgres::{GenericClient, Pool};
use futures_util::{pin_mut, TryStreamExt};
use tokio::sync::mpsc::Sender;
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::{pg_error, pool_error};
use crate::store::rows::{
    ArrayWriter, Cutter, JsonPage, PageRequest, Rows, Verdict, STALL_TIMEOUT,
};
use crate::store::StoreError;

/// Where the rows a page takes go.
enum Take<'a> {
    /// Nowhere: the page is only counted.
    Count,
    /// Into one array.
    Whole(&'a mut ArrayWriter),
    /// Into an array sent in pieces.
    Stream(&'a mut ArrayWriter, &'a Sender<Result<String, StoreError>>),
}

/// Sends a piece, waiting at most [`STALL_TIMEOUT`]; false when it was not taken.
async fn send(to: &Sender<Result<String, StoreError>>, piece: Result<String, StoreError>) -> bool {
    tokio::time::timeout(STALL_TIMEOUT, to.send(piece))
        .await
        .is_ok_and(|sent| sent.is_ok())
}

/// Walks the rows of the request's collection in order on `client`, offering each document to
/// a [`Cutter`] and putting the taken ones where `take` says; returns the page's model count,
/// whether more matched, and whether every piece was taken.
async fn walk<C: GenericClient>(
    client: &C,
    request: &PageRequest,
    mut take: Take<'_>,
) -> Result<(u64, bool, bool), StoreError> {
    let query = &request.query;
    // Without filters the offset is skipped by SQL and one row past the limit tells whether
    // more matched; with them, every row may be needed.
    let limit = query
        .filters
        .is_empty()
        .then(|| {
            query
                .limit
                .map(|l| l.saturating_add(1).min(i64::MAX as u64) as i64)
        })
        .flatten();
    let stmt = client
        .prepare_cached(
            "SELECT doc FROM bss_documents WHERE owner = $1 AND collection = $2
             ORDER BY pos LIMIT $3 OFFSET $4",
        )
        .await
        .map_err(pg_error)?;
    let offset = Cutter::sql_offset(query);
    let params: [&(dyn ToSql + Sync); 4] = [&request.owner, &request.collection, &limit, &offset];
    let rows = client.query_raw(&stmt, params).await.map_err(pg_error)?;
    pin_mut!(rows);
    let mut cutter = Cutter::new(query, request.max_bytes);
    while let Some(row) = rows.try_next().await.map_err(pg_error)? {
        let doc: &str = row
            .try_get(0)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        match cutter.offer(doc)? {
            Verdict::Take => match &mut take {
                Take::Count => {}
                Take::Whole(array) => {
                    array.push(doc);
                }
                Take::Stream(array, to) => {
                    if let Some(piece) = array.push(doc) {
                        if !send(to, Ok(piece)).await {
                            return Ok((cutter.count(), cutter.more(), false));
                        }
                    }
                }
            },
            Verdict::Pass => {}
            Verdict::Stop => break,
        }
    }
    Ok((cutter.count(), cutter.more(), true))
}

/// One page as a JSON array of the stored text.
pub(super) async fn json_page(pool: &Pool, request: PageRequest) -> Result<JsonPage, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let mut array = ArrayWriter::whole(4096);
    let (count, more, _) = walk(&client, &request, Take::Whole(&mut array)).await?;
    Ok(JsonPage {
        json: array.finish(),
        count,
        more,
    })
}

/// Streams a page (see the module's doc); resolves once it is counted.
pub(super) async fn stream_page(pool: Pool, request: PageRequest) -> Result<Rows, StoreError> {
    let (head, rows) = oneshot::channel();
    tokio::spawn(async move {
        if let Err(error) = run(&pool, &request, head).await {
            tracing::warn!(%error, "collection stream failed");
        }
    });
    rows.await
        .map_err(|_| StoreError::Internal("stream task stopped".into()))?
}

/// Counts, then streams, in one transaction. Errors before the head is sent go to the head;
/// later ones end the stream with the error.
async fn run(
    pool: &Pool,
    request: &PageRequest,
    head: oneshot::Sender<Result<Rows, StoreError>>,
) -> Result<(), StoreError> {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let _ = head.send(Err(pool_error(error)));
            return Ok(());
        }
    };
    let started = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_error);
    let tx = match started {
        Ok(tx) => tx,
        Err(error) => {
            let _ = head.send(Err(error));
            return Ok(());
        }
    };
    let (count, more) = match walk(&tx, request, Take::Count).await {
        Ok((count, more, _)) => (count, more),
        Err(error) => {
            let _ = head.send(Err(error));
            return Ok(());
        }
    };
    let (sender, rows) = Rows::channel(count, more);
    if head.send(Ok(rows)).is_err() {
        return Ok(()); // nobody waits for it any more; the transaction rolls back
    }
    let mut array = ArrayWriter::pieces();
    match walk(&tx, request, Take::Stream(&mut array, &sender)).await {
        Ok((_, _, true)) => {
            send(&sender, Ok(array.finish())).await;
        }
        Ok(_) => tracing::debug!("collection stream not taken in time (or dropped); stopped"),
        Err(error) => {
            send(&sender, Err(error)).await;
        }
    }
    tx.commit().await.map_err(pg_error)
}
