//! The writer thread of the SQLite store: batches of writes, one transaction per batch, one
//! savepoint per write, the request record (scope, id, fingerprint, result) in the same
//! transaction, replies after COMMIT.

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
        let (writes, replies): (Vec<Write>, Vec<_>) = batch.into_iter().unzip();
        match apply_batch(&mut conn, writes, max_doc_bytes) {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "batch commit failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Internal(error.to_string())));
                }
            }
        }
    }
}

type BatchResult = Vec<Result<Applied, StoreError>>;

fn apply_batch(
    conn: &mut Connection,
    batch: Vec<Write>,
    max_doc_bytes: usize,
) -> rusqlite::Result<BatchResult> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(batch.len());
    for write in batch {
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
    write: Write,
    max_doc_bytes: usize,
) -> Result<Applied, StoreError> {
    let fingerprint = write.request_id.as_ref().map(|_| write.fingerprint());
    if let (Some(request_id), Some(fingerprint)) = (&write.request_id, &fingerprint) {
        let known: Option<(String, String)> = conn
            .prepare_cached(
                "SELECT fingerprint, result FROM requests WHERE scope = ?1 AND request_id = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![request_id.scope, request_id.id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
            })
            .map_err(internal)?;
        if let Some((known_fingerprint, result)) = known {
            if &known_fingerprint != fingerprint {
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
    let (value, text) = apply_op(conn, &write.owner, write.op, max_doc_bytes)?;
    if let (Some(request_id), Some(fingerprint)) = (&write.request_id, &fingerprint) {
        conn.prepare_cached(
            "INSERT INTO requests (scope, request_id, fingerprint, result, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                request_id.scope,
                request_id.id,
                fingerprint,
                text,
                now_secs() as i64
            ])
        })
        .map_err(internal)?;
    }
    Ok(Applied {
        value,
        replayed: false,
    })
}

/// Applies one write; returns the reply and its JSON text (the stored document itself, so the
/// request record does not serialise it again).
fn apply_op(
    conn: &Connection,
    owner: &str,
    op: WriteOp,
    max_doc_bytes: usize,
) -> Result<(Value, String), StoreError> {
    match op {
        WriteOp::Create {
            collection,
            mut item,
        } => {
            let id: i64 = run(conn, NEXT_ID, params![owner, collection], |stmt, p| {
                stmt.query_row(p, |row| row.get(0))
            })?;
            item.insert("id".into(), Value::from(id));
            let doc = to_doc(&item, max_doc_bytes)?;
            run(
                conn,
                INSERT_DOC,
                params![owner, collection, id.to_string(), doc],
                |stmt, p| stmt.execute(p),
            )?;
            Ok((Value::Object(item), doc))
        }
        WriteOp::Update {
            collection,
            id,
            item,
        } => {
            let doc = to_doc(&item, max_doc_bytes)?;
            run(
                conn,
                UPSERT_DOC,
                params![owner, collection, id, doc],
                |stmt, p| stmt.execute(p),
            )?;
            // Keep ids assigned by create above any integer id a client chose itself.
            if let Ok(n) = id.parse::<i64>() {
                run(conn, RAISE_ID, params![owner, collection, n], |stmt, p| {
                    stmt.execute(p)
                })?;
            }
            Ok((Value::Object(item), doc))
        }
        WriteOp::Patch {
            collection,
            id,
            item,
        } => {
            let Some(Value::Object(mut stored)) = load(conn, owner, &collection, &id)? else {
                return Err(StoreError::NotFound);
            };
            for (key, value) in item {
                if key != "id" {
                    stored.insert(key, value);
                }
            }
            let doc = to_doc(&stored, max_doc_bytes)?;
            run(
                conn,
                UPDATE_DOC,
                params![owner, collection, id, doc],
                |stmt, p| stmt.execute(p),
            )?;
            Ok((Value::Object(stored), doc))
        }
        WriteOp::Delete { collection, id } => {
            let removed = run(
                conn,
                DELETE_DOC,
                params![owner, collection, id],
                |stmt, p| stmt.execute(p),
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok((Value::Object(Object::new()), "{}".into()))
        }
    }
}

const NEXT_ID: &str = "INSERT INTO sequences (owner, collection, last_id) VALUES (?1, ?2, 1)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = last_id + 1
     RETURNING last_id";
const INSERT_DOC: &str =
    "INSERT INTO documents (owner, collection, id, doc) VALUES (?1, ?2, ?3, ?4)";
const UPSERT_DOC: &str =
    "INSERT INTO documents (owner, collection, id, doc) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (owner, collection, id) DO UPDATE SET doc = excluded.doc";
const RAISE_ID: &str = "INSERT INTO sequences (owner, collection, last_id) VALUES (?1, ?2, ?3)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = max(last_id, excluded.last_id)";
const UPDATE_DOC: &str =
    "UPDATE documents SET doc = ?4 WHERE owner = ?1 AND collection = ?2 AND id = ?3";
const DELETE_DOC: &str = "DELETE FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3";

/// Runs `f` on the cached prepared statement for `sql` (parsed once per connection).
fn run<P, T>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&mut rusqlite::CachedStatement<'_>, P) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    f(&mut stmt, params).map_err(internal)
}

fn to_doc(item: &Object, max_doc_bytes: usize) -> Result<String, StoreError> {
    let doc = serde_json::to_string(item).map_err(|e| StoreError::Internal(e.to_string()))?;
    if doc.len() > max_doc_bytes {
        return Err(StoreError::TooLarge(max_doc_bytes));
    }
    Ok(doc)
}
