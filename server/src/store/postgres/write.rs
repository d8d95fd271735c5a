//! One write as one PostgreSQL transaction: claim the requestId, apply, record the result,
//! COMMIT; a refused write (404, 413) rolls back, leaving neither the change nor the claim.

use deadpool_postgres::{Client, Transaction};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{now_secs, parse_doc, pg_error};
use crate::store::{Applied, Object, StoreError, Write, WriteOp};

const CLAIM: &str = "INSERT INTO bss_requests (request_id, method, endpoint, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING";
const KNOWN: &str = "SELECT method, endpoint, result FROM bss_requests WHERE request_id = $1";
const RECORD: &str = "UPDATE bss_requests SET result = $2 WHERE request_id = $1";
const NEXT_ID: &str = "INSERT INTO bss_sequences (collection, last_id) VALUES ($1, 1)
     ON CONFLICT (collection) DO UPDATE SET last_id = bss_sequences.last_id + 1
     RETURNING last_id";
const RAISE_ID: &str = "INSERT INTO bss_sequences (collection, last_id) VALUES ($1, $2)
     ON CONFLICT (collection) DO UPDATE
     SET last_id = GREATEST(bss_sequences.last_id, excluded.last_id)";
const INSERT_DOC: &str = "INSERT INTO bss_documents (collection, id, doc) VALUES ($1, $2, $3)";
const UPSERT_DOC: &str = "INSERT INTO bss_documents (collection, id, doc) VALUES ($1, $2, $3)
     ON CONFLICT (collection, id) DO UPDATE SET doc = excluded.doc";
const LOCK_DOC: &str = "SELECT doc FROM bss_documents WHERE collection = $1 AND id = $2 FOR UPDATE";
const UPDATE_DOC: &str = "UPDATE bss_documents SET doc = $3 WHERE collection = $1 AND id = $2";
const DELETE_DOC: &str = "DELETE FROM bss_documents WHERE collection = $1 AND id = $2";

/// Applies `write` (or answers its requestId's recorded result) in one transaction.
pub(super) async fn apply(
    client: &mut Client,
    write: Write,
    max_doc_bytes: usize,
) -> Result<Applied, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let method = write.op.method();
    let endpoint = write.op.endpoint();
    if let Some(request_id) = &write.request_id {
        // Claim first: a concurrent transaction holding the same id makes this wait until it
        // ends, and then either its record is visible (replay) or the claim is ours.
        let claimed = exec(
            &tx,
            CLAIM,
            &[request_id, &method, &endpoint, &(now_secs() as i64)],
        )
        .await?;
        if claimed == 0 {
            let row = tx
                .query_one(
                    &tx.prepare_cached(KNOWN).await.map_err(pg_error)?,
                    &[request_id],
                )
                .await
                .map_err(pg_error)?;
            tx.rollback().await.map_err(pg_error)?;
            let (known_method, known_endpoint): (&str, &str) = (row.get(0), row.get(1));
            if known_method != method || known_endpoint != endpoint {
                return Err(StoreError::RequestIdReused);
            }
            let result: Option<&str> = row.get(2);
            let result = result.ok_or_else(|| {
                StoreError::Internal(format!("request {request_id} has no recorded result"))
            })?;
            return Ok(Applied {
                value: parse_doc(result)?,
                replayed: true,
            });
        }
    }
    let (value, text) = match apply_op(&tx, write.op, max_doc_bytes).await {
        Ok(applied) => applied,
        Err(error) => {
            // Refused (404, 413) or failed: nothing of it stays, the claim included.
            let _ = tx.rollback().await;
            return Err(error);
        }
    };
    if let Some(request_id) = &write.request_id {
        exec(&tx, RECORD, &[request_id, &text]).await?;
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(Applied {
        value,
        replayed: false,
    })
}

/// Applies one change; returns the reply and its JSON text (the stored document itself, so
/// the request record does not serialise it again).
async fn apply_op(
    tx: &Transaction<'_>,
    op: WriteOp,
    max_doc_bytes: usize,
) -> Result<(Value, String), StoreError> {
    match op {
        WriteOp::Create {
            collection,
            mut item,
        } => {
            // The sequence row stays locked until COMMIT: creates in one collection queue here.
            let stmt = tx.prepare_cached(NEXT_ID).await.map_err(pg_error)?;
            let id: i64 = tx
                .query_one(&stmt, &[&collection])
                .await
                .map_err(pg_error)?
                .get(0);
            item.insert("id".into(), Value::from(id));
            let doc = to_doc(&item, max_doc_bytes)?;
            exec(tx, INSERT_DOC, &[&collection, &id.to_string(), &doc]).await?;
            Ok((Value::Object(item), doc))
        }
        WriteOp::Update {
            collection,
            id,
            item,
        } => {
            let doc = to_doc(&item, max_doc_bytes)?;
            // Keep ids assigned by create above any integer id a client chose itself. The
            // sequence row is locked before the document, in the same order as create, so the
            // two cannot deadlock.
            if let Ok(n) = id.parse::<i64>() {
                exec(tx, RAISE_ID, &[&collection, &n]).await?;
            }
            exec(tx, UPSERT_DOC, &[&collection, &id, &doc]).await?;
            Ok((Value::Object(item), doc))
        }
        WriteOp::Patch {
            collection,
            id,
            item,
        } => {
            let stmt = tx.prepare_cached(LOCK_DOC).await.map_err(pg_error)?;
            let row = tx
                .query_opt(&stmt, &[&collection, &id])
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
            exec(tx, UPDATE_DOC, &[&collection, &id, &doc]).await?;
            Ok((Value::Object(stored), doc))
        }
        WriteOp::Delete { collection, id } => {
            if exec(tx, DELETE_DOC, &[&collection, &id]).await? == 0 {
                return Err(StoreError::NotFound);
            }
            Ok((Value::Object(Object::new()), "{}".into()))
        }
    }
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
