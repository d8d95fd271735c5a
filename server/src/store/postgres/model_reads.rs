//! Reads of single models, coalesced: [`READERS`] tasks each take every read queued (up to
//! [`MAX_READS`]) and answer them all from one query on a pooled connection, so a burst of
//! model reads costs the database a few statements instead of one each. A read queued after a
//! write was answered sees that write (read-your-writes holds: the query starts later).

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::plan::DocKey;
use super::{parse_doc, pg_error, pool_error};
use crate::store::{StoreError, Stored};

/// Reader tasks, each with a query in flight at most: few, so that reads arriving while they
/// query pile up into the next query (a query's cost hardly depends on its size).
const READERS: usize = 2;
/// Most reads answered by one query.
const MAX_READS: usize = 256;

const READ_MODELS: &str = "SELECT t.n, d.doc, d.version
     FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(o, c, i, n)
     JOIN bss_documents d ON d.owner = t.o AND d.collection = t.c AND d.id = t.i";

type Read = (DocKey, oneshot::Sender<Result<Stored, StoreError>>);

/// The queue of model reads (the tasks end when it is dropped).
pub(super) struct ModelReads {
    queue: mpsc::UnboundedSender<Read>,
}

impl ModelReads {
    /// Starts the reader tasks on `pool`.
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, reads) = mpsc::unbounded_channel();
        let reads = Arc::new(Mutex::new(reads));
        for _ in 0..READERS {
            tokio::spawn(run_reader(pool.clone(), reads.clone()));
        }
        Self { queue }
    }

    /// Queues a read of `key`; the receiver answers it.
    pub(super) fn read(&self, key: DocKey) -> oneshot::Receiver<Result<Stored, StoreError>> {
        let (reply, answer) = oneshot::channel();
        // A closed queue drops `reply`: the caller sees the channel closed.
        let _ = self.queue.send((key, reply));
        answer
    }
}

async fn run_reader(pool: Pool, reads: Arc<Mutex<mpsc::UnboundedReceiver<Read>>>) {
    loop {
        let batch = {
            let mut reads = reads.lock().await;
            let Some(first) = reads.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_READS {
                match reads.try_recv() {
                    Ok(read) => batch.push(read),
                    Err(_) => break,
                }
            }
            batch
        };
        let (keys, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let started = std::time::Instant::now();
        let read = read_all(&pool, &keys).await;
        tracing::debug!(
            reads = keys.len(),
            us = started.elapsed().as_micros() as u64,
            "model reads"
        );
        match read {
            Ok(found) => {
                for (reply, stored) in replies.into_iter().zip(found) {
                    let _ = reply.send(stored.unwrap_or(Err(StoreError::NotFound)));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(match &error {
                        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                        other => StoreError::Internal(other.to_string()),
                    }));
                }
            }
        }
    }
}

/// Each key's model, in order (`None`: no such model).
async fn read_all(
    pool: &Pool,
    keys: &[DocKey],
) -> Result<Vec<Option<Result<Stored, StoreError>>>, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client.prepare_cached(READ_MODELS).await.map_err(pg_error)?;
    let owners: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    let colls: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
    let rows = client
        .query(&stmt, &[&owners, &colls, &ids])
        .await
        .map_err(pg_error)?;
    let mut found: Vec<Option<Result<Stored, StoreError>>> = keys.iter().map(|_| None).collect();
    for row in rows {
        let n: i64 = row.get(0);
        let stored = parse_doc(row.get(1)).map(|value| Stored {
            value,
            version: row.get(2),
        });
        if let Some(slot) = usize::try_from(n - 1).ok().and_then(|i| found.get_mut(i)) {
            *slot = Some(stored);
        }
    }
    Ok(found)
}
