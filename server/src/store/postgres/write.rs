//! The writer task of the PostgreSQL store: batches of writes in call order, one transaction
//! per batch behind the nodes' shared write lock, one savepoint per write (a refused write,
//! 404 or 413, leaves neither its change nor its request claim), replies after COMMIT. An
//! applied write also records and NOTIFYs its change in its savepoint (see [`super::listen`]).

use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;

use super::listen::{keep_and_notify, record};
use super::{parse_doc, pg_error, pool_error, Job, MAX_BATCH};
use crate::ids::MAX_ID;
use crate::store::change::Origin;
use crate::store::{Applied, Object, StoreError, Write, WriteOp};

/// Test fault point: with `BSS_FAULT_AFTER_COMMIT=N` in its environment, the process aborts
/// right after its N-th committed batch, before it answers or broadcasts any write of it (the
/// multi-node tests show that other nodes still broadcast those writes, once).
const FAULT_AFTER_COMMIT: &str = "BSS_FAULT_AFTER_COMMIT";

/// Key of the advisory lock every node's batch holds until it commits.
const WRITE_LOCK: i64 = 0x6273_735f_7772_6974; // "bss_writ"

const TAKE_WRITE_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
/// `created_at` is left to the database's clock (see `FEED_SCHEMA`), which the sweep's cutoff
/// reads too.
const CLAIM: &str = "INSERT INTO bss_requests (scope, request_id, fingerprint)
     VALUES ($1, $2, $3) ON CONFLICT (scope, request_id) DO NOTHING";
const KNOWN: &str =
    "SELECT fingerprint, result FROM bss_requests WHERE scope = $1 AND request_id = $2";
const RECORD: &str = "UPDATE bss_requests SET result = $3 WHERE scope = $1 AND request_id = $2";
const LAST_ID: &str =
    "SELECT last_id FROM bss_sequences WHERE owner = $1 AND collection = $2 FOR UPDATE";
const SET_LAST_ID: &str = "INSERT INTO bss_sequences (owner, collection, last_id)
     VALUES ($1, $2, $3)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = excluded.last_id";
const ID_TAKEN: &str =
    "SELECT 1 FROM bss_documents WHERE owner = $1 AND collection = $2 AND id = $3";
const INSERT_DOC: &str =
    "INSERT INTO bss_documents (owner, collection, id, doc) VALUES ($1, $2, $3, $4)";
const UPSERT_DOC: &str =
    "INSERT INTO bss_documents (owner, collection, id, doc) VALUES ($1, $2, $3, $4)
     ON CONFLICT (owner, collection, id) DO UPDATE SET doc = excluded.doc";
const LOCK_DOC: &str =
    "SELECT doc FROM bss_documents WHERE owner = $1 AND collection = $2 AND id = $3 FOR UPDATE";
const UPDATE_DOC: &str =
    "UPDATE bss_documents SET doc = $4 WHERE owner = $1 AND collection = $2 AND id = $3";
const DELETE_DOC: &str =
    "DELETE FROM bss_documents WHERE owner = $1 AND collection = $2 AND id = $3";

/// The writer loop: wait for a write, take every write already queued (up to [`MAX_BATCH`]),
/// apply them in order in one transaction, COMMIT, and only then answer them all. A batch that
/// cannot commit (the database went away) answers every write in it with that error.
pub(super) async fn run_writer(
    pool: Pool,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    max_doc_bytes: usize,
    node: String,
) {
    let notify = keep_and_notify();
    let mut fault_after: Option<u64> = std::env::var(FAULT_AFTER_COMMIT)
        .ok()
        .and_then(|n| n.parse().ok());
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|(write, origin, reply)| ((write, origin), reply))
            .unzip();
        let writer = Writer {
            node: &node,
            notify: &notify,
            max_doc_bytes,
        };
        match writer.apply_batch(&pool, writes).await {
            Ok(results) => {
                if let Some(n) = fault_after.as_mut() {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        eprintln!("bss-server: {FAULT_AFTER_COMMIT}: aborting after a commit");
                        std::process::abort();
                    }
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "batch not committed");
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

/// What every write of a batch is applied with.
struct Writer<'a> {
    /// This process's id, in its changes.
    node: &'a str,
    /// The statement that keeps and NOTIFYs a change ([`keep_and_notify`]).
    notify: &'a str,
    max_doc_bytes: usize,
}

impl Writer<'_> {
    async fn apply_batch(
        &self,
        pool: &Pool,
        batch: Vec<(Write, Option<Origin>)>,
    ) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let mut client = pool.get().await.map_err(pool_error)?;
        let mut tx = client.transaction().await.map_err(pg_error)?;
        exec(&tx, TAKE_WRITE_LOCK, &[&WRITE_LOCK]).await?;
        let mut results = Vec::with_capacity(batch.len());
        for (write, origin) in batch {
            let savepoint = tx.savepoint("write").await.map_err(pg_error)?;
            let result = self.apply_write(&savepoint, write, origin.as_ref()).await;
            match result {
                Ok(_) => savepoint.commit().await.map_err(pg_error)?,
                Err(StoreError::Unavailable(message)) => {
                    return Err(StoreError::Unavailable(message))
                }
                Err(_) => savepoint.rollback().await.map_err(pg_error)?,
            }
            results.push(result);
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(results)
    }

    /// Applies one write inside its savepoint and records its change, or answers its request
    /// id's recorded result (a replay: no change).
    async fn apply_write(
        &self,
        tx: &Transaction<'_>,
        write: Write,
        origin: Option<&Origin>,
    ) -> Result<Applied, StoreError> {
        let fingerprint = write.request_id.as_ref().map(|_| write.fingerprint());
        if let (Some(request_id), Some(fingerprint)) = (&write.request_id, &fingerprint) {
            // Claim first: a transaction elsewhere holding the same id makes this wait until it
            // ends; then either its record is visible (replay) or the claim is ours.
            let key: [&(dyn ToSql + Sync); 2] = [&request_id.scope, &request_id.id];
            let claimed = exec(tx, CLAIM, &[key[0], key[1], fingerprint]).await?;
            if claimed == 0 {
                let stmt = tx.prepare_cached(KNOWN).await.map_err(pg_error)?;
                let row = tx.query_one(&stmt, &key).await.map_err(pg_error)?;
                let known: &str = row.get(0);
                if known != fingerprint {
                    return Err(StoreError::RequestIdReused);
                }
                let result: Option<&str> = row.get(1);
                let result = result.ok_or_else(|| {
                    StoreError::Internal(format!("request {} has no result", request_id.id))
                })?;
                return Ok(Applied {
                    value: parse_doc(result)?,
                    replayed: true,
                    version: 0, // kept by the store from the versions commit on
                });
            }
        }
        let (method, collection) = (write.op.method(), write.op.collection().to_owned());
        let id = match &write.op {
            WriteOp::Create { .. } => None,
            WriteOp::Update { id, .. } | WriteOp::Patch { id, .. } | WriteOp::Delete { id, .. } => {
                Some(id.clone())
            }
        };
        let (value, text) = apply_op(tx, &write.owner, write.op, self.max_doc_bytes).await?;
        if let Some(request_id) = &write.request_id {
            exec(tx, RECORD, &[&request_id.scope, &request_id.id, &text]).await?;
        }
        let id = id.unwrap_or_else(|| value["id"].to_string());
        let change = record(
            self.node,
            origin,
            &write.owner,
            method,
            &collection,
            &id,
            &text,
        );
        exec(tx, self.notify, &[&change]).await?;
        Ok(Applied {
            value,
            replayed: false,
            version: 0,
        })
    }
}

/// Applies one change; returns the reply and its JSON text (the stored document itself, so
/// the request record does not serialise it again).
async fn apply_op(
    tx: &Transaction<'_>,
    owner: &str,
    op: WriteOp,
    max_doc_bytes: usize,
) -> Result<(Value, String), StoreError> {
    match op {
        WriteOp::Create {
            collection,
            mut item,
        } => {
            let id = next_id(tx, owner, &collection).await?;
            item.insert("id".into(), Value::from(id));
            let doc = to_doc(&item, max_doc_bytes)?;
            exec(
                tx,
                INSERT_DOC,
                &[&owner, &collection, &id.to_string(), &doc],
            )
            .await?;
            Ok((Value::Object(item), doc))
        }
        WriteOp::Update {
            collection,
            id,
            item,
        } => {
            let doc = to_doc(&item, max_doc_bytes)?;
            exec(tx, UPSERT_DOC, &[&owner, &collection, &id, &doc]).await?;
            Ok((Value::Object(item), doc))
        }
        WriteOp::Patch {
            collection,
            id,
            item,
        } => {
            let stmt = tx.prepare_cached(LOCK_DOC).await.map_err(pg_error)?;
            let row = tx
                .query_opt(&stmt, &[&owner, &collection, &id])
                .await
                .map_err(pg_error)?
                .ok_or(StoreError::NotFound)?;
            let Value::Object(mut stored) = parse_doc(row.get(0))? else {
                return Err(StoreError::Internal(
                    "stored document is not an object".into(),
                ));
            };
            for (key, value) in item {
                if key != "id" {
                    stored.insert(key, value);
                }
            }
            let doc = to_doc(&stored, max_doc_bytes)?;
            exec(tx, UPDATE_DOC, &[&owner, &collection, &id, &doc]).await?;
            Ok((Value::Object(stored), doc))
        }
        WriteOp::Delete { collection, id } => {
            if exec(tx, DELETE_DOC, &[&owner, &collection, &id]).await? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok((Value::Object(Object::new()), "{}".into()))
        }
    }
}

/// The next id of `owner`'s `collection`, recorded as used: one past the last one handed out,
/// skipping ids clients chose themselves with `update` (which never move the sequence), never
/// past [`MAX_ID`] (the same rule as the SQLite store).
async fn next_id(tx: &Transaction<'_>, owner: &str, collection: &str) -> Result<i64, StoreError> {
    let stmt = tx.prepare_cached(LAST_ID).await.map_err(pg_error)?;
    let last: i64 = tx
        .query_opt(&stmt, &[&owner, &collection])
        .await
        .map_err(pg_error)?
        .map_or(0, |row| row.get(0));
    let taken = tx.prepare_cached(ID_TAKEN).await.map_err(pg_error)?;
    let mut id = last.clamp(0, MAX_ID);
    loop {
        id = id
            .checked_add(1)
            .filter(|id| *id <= MAX_ID)
            .ok_or(StoreError::IdsExhausted)?;
        let exists = tx
            .query_opt(&taken, &[&owner, &collection, &id.to_string()])
            .await
            .map_err(pg_error)?;
        if exists.is_none() {
            break;
        }
    }
    exec(tx, SET_LAST_ID, &[&owner, &collection, &id]).await?;
    Ok(id)
}

/// Runs a statement prepared once per connection; returns the rows it changed.
async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(pg_error)?;
    tx.execute(&stmt, params).await.map_err(pg_error)
}

fn to_doc(item: &Object, max_doc_bytes: usize) -> Result<String, StoreError> {
    let doc = serde_json::to_string(item).map_err(|e| StoreError::Internal(e.to_string()))?;
    if doc.len() > max_doc_bytes {
        return Err(StoreError::TooLarge(max_doc_bytes));
    }
    Ok(doc)
}
