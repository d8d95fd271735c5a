//! The writer thread of the SQLite store: batches of writes, one transaction per batch, one
//! savepoint per write, the requestId record in the same transaction, replies after COMMIT.

use std::sync::mpsc;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{internal, load, now_secs, Job, MAX_BATCH};
use crate::store::{Applied, Object, StoreError, Write, WriteOp};

/// The writer loop: wait for a job, take every job already queued (up to [`MAX_BATCH`]), apply
/// each inside its own savepoint (a failing write leaves no trace and does not affect the
/// others), COMMIT once, and only then answer them all.
pub(super) fn run_writer(mut conn: Connection, rx: mpsc::Receiver<Job>, max_doc_bytes: usize) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = apply_batch(&mut conn, &batch, max_doc_bytes);
        match outcome {
            Ok(results) => {
                for ((_, reply), result) in batch.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "batch commit failed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Internal(error.to_string())));
                }
            }
        }
    }
}

type BatchResult = Vec<Result<Applied, StoreError>>;

fn apply_batch(
    conn: &mut Connection,
    batch: &[Job],
    max_doc_bytes: usize,
) -> rusqlite::Result<BatchResult> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for (write, _) in batch {
        let sp = tx.savepoint()?;
        let result = apply_write(&sp, write, max_doc_bytes);
        if result.is_ok() {
            sp.commit()?;
        } // else: dropping the savepoint rolls it back
        results.push(result);
    }
    tx.commit()?;
    Ok(results)
}

fn apply_write(
    conn: &Connection,
    write: &Write,
    max_doc_bytes: usize,
) -> Result<Applied, StoreError> {
    let method = write.op.method();
    let endpoint = write.op.endpoint();
    if let Some(request_id) = &write.request_id {
        let known: Option<(String, String, String)> = conn
            .query_row(
                "SELECT method, endpoint, result FROM requests WHERE request_id = ?1",
                [request_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(internal)?;
        if let Some((known_method, known_endpoint, result)) = known {
            if known_method != method || known_endpoint != endpoint {
                return Err(StoreError::RequestIdReused);
            }
            let value =
                serde_json::from_str(&result).map_err(|e| StoreError::Internal(e.to_string()))?;
            return Ok(Applied {
                value,
                replayed: true,
            });
        }
    }
    let value = apply_op(conn, &write.op, max_doc_bytes)?;
    if let Some(request_id) = &write.request_id {
        conn.execute(
            "INSERT INTO requests (request_id, method, endpoint, result, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![request_id, method, endpoint, value.to_string(), now_secs() as i64],
        )
        .map_err(internal)?;
    }
    Ok(Applied {
        value,
        replayed: false,
    })
}

fn apply_op(conn: &Connection, op: &WriteOp, max_doc_bytes: usize) -> Result<Value, StoreError> {
    match op {
        WriteOp::Create { collection, item } => {
            let id: i64 = conn
                .query_row(
                    "INSERT INTO sequences (collection, last_id) VALUES (?1, 1)
                     ON CONFLICT (collection) DO UPDATE SET last_id = last_id + 1
                     RETURNING last_id",
                    [collection],
                    |row| row.get(0),
                )
                .map_err(internal)?;
            let mut item = item.clone();
            item.insert("id".into(), Value::from(id));
            let doc = to_doc(&item, max_doc_bytes)?;
            conn.execute(
                "INSERT INTO documents (collection, id, doc) VALUES (?1, ?2, ?3)",
                params![collection, id.to_string(), doc],
            )
            .map_err(internal)?;
            Ok(Value::Object(item))
        }
        WriteOp::Update {
            collection,
            id,
            item,
        } => {
            let doc = to_doc(item, max_doc_bytes)?;
            conn.execute(
                "INSERT INTO documents (collection, id, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (collection, id) DO UPDATE SET doc = excluded.doc",
                params![collection, id, doc],
            )
            .map_err(internal)?;
            // Keep ids assigned by create above any integer id a client chose itself.
            if let Ok(n) = id.parse::<i64>() {
                conn.execute(
                    "INSERT INTO sequences (collection, last_id) VALUES (?1, ?2)
                     ON CONFLICT (collection) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                    params![collection, n],
                )
                .map_err(internal)?;
            }
            Ok(Value::Object(item.clone()))
        }
        WriteOp::Patch {
            collection,
            id,
            item,
        } => {
            let Some(Value::Object(mut stored)) = load(conn, collection, id)? else {
                return Err(StoreError::NotFound);
            };
            for (key, value) in item {
                if key != "id" {
                    stored.insert(key.clone(), value.clone());
                }
            }
            let doc = to_doc(&stored, max_doc_bytes)?;
            conn.execute(
                "UPDATE documents SET doc = ?3 WHERE collection = ?1 AND id = ?2",
                params![collection, id, doc],
            )
            .map_err(internal)?;
            Ok(Value::Object(stored))
        }
        WriteOp::Delete { collection, id } => {
            let removed = conn
                .execute(
                    "DELETE FROM documents WHERE collection = ?1 AND id = ?2",
                    params![collection, id],
                )
                .map_err(internal)?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(Value::Object(Object::new()))
        }
    }
}

fn to_doc(item: &Object, max_doc_bytes: usize) -> Result<String, StoreError> {
    let doc = serde_json::to_string(item).map_err(|e| StoreError::Internal(e.to_string()))?;
    if doc.len() > max_doc_bytes {
        return Err(StoreError::TooLarge(max_doc_bytes));
    }
    Ok(doc)
}
