//! The writer thread of the SQLite store: batches of writes, one transaction per batch, one
//! savepoint per write, the request record (scope, id, fingerprint, result) in the same
//! transaction, replies after COMMIT.

use std::sync::mpsc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::{internal, load, now_secs, Job, MAX_BATCH};
use crate::ids::MAX_ID;
use crate::store::{Applied, Object, StoreError, Write, WriteOp};

/// A write as queued for the writer thread.
pub(super) struct Queued {
    /// The write.
    pub(super) write: Write,
    /// [`Write::fingerprint`] when it has a request id (computed before queueing).
    pub(super) fingerprint: Option<String>,
}

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
        let (writes, replies): (Vec<Queued>, Vec<_>) = batch.into_iter().unzip();
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
    batch: Vec<Queued>,
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
    Queued { write, fingerprint }: Queued,
    max_doc_bytes: usize,
) -> Result<Applied, StoreError> {
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
                version: 0, // kept by the store from the versions commit on
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
        version: 0,
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
            let id = next_id(conn, owner, &collection)?;
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

const LAST_ID: &str = "SELECT last_id FROM sequences WHERE owner = ?1 AND collection = ?2";
const SET_LAST_ID: &str = "INSERT INTO sequences (owner, collection, last_id) VALUES (?1, ?2, ?3)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = excluded.last_id";
const ID_TAKEN: &str = "SELECT 1 FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3";
const INSERT_DOC: &str =
    "INSERT INTO documents (owner, collection, id, doc) VALUES (?1, ?2, ?3, ?4)";
const UPSERT_DOC: &str =
    "INSERT INTO documents (owner, collection, id, doc) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (owner, collection, id) DO UPDATE SET doc = excluded.doc";
const UPDATE_DOC: &str =
    "UPDATE documents SET doc = ?4 WHERE owner = ?1 AND collection = ?2 AND id = ?3";
const DELETE_DOC: &str = "DELETE FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3";

/// The next id of `owner`'s `collection` sequence, recorded as used: one past the last one handed
/// out, skipping ids that clients chose themselves with `update` (which never move the
/// sequence, so one client cannot exhaust it for the others), and never past [`MAX_ID`].
///
/// A `last_id` that is not an integer in range (left by a server before ids were bounded,
/// which moved it to a client's id and then past `i64::MAX` into a REAL) restarts the count
/// at 0: taken ids are skipped, so no model is overwritten.
fn next_id(conn: &Connection, owner: &str, collection: &str) -> Result<i64, StoreError> {
    let last: Option<SqlValue> = run(conn, LAST_ID, params![owner, collection], |stmt, p| {
        stmt.query_row(p, |row| row.get(0)).optional()
    })?;
    let last = match last {
        None => 0,
        Some(SqlValue::Integer(n)) if (0..=MAX_ID).contains(&n) => n,
        Some(other) => {
            tracing::warn!(
                collection,
                ?other,
                "id sequence out of range; restarting it"
            );
            0
        }
    };
    let mut id = last;
    loop {
        id = id
            .checked_add(1)
            .filter(|id| *id <= MAX_ID)
            .ok_or(StoreError::IdsExhausted)?;
        let taken = run(
            conn,
            ID_TAKEN,
            params![owner, collection, id.to_string()],
            |stmt, p| stmt.exists(p),
        )?;
        if !taken {
            break;
        }
    }
    run(
        conn,
        SET_LAST_ID,
        params![owner, collection, id],
        |stmt, p| stmt.execute(p),
    )?;
    Ok(id)
}

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
