//! The writer thread of the SQLite store: batches of writes, one transaction per batch, one
//! savepoint per write, the request record (scope, id, fingerprint, result) in the same
//! transaction, replies after COMMIT. What each write does is [`decide`]d once for both
//! stores; this file reads the row, allocates a create's id and executes the decision.
//!
//! The writes are taken from the [`Inbox`] one client at a time by a fair round, so a flood of
//! one client delays another's write by at most one turn of the round (and a batch that holds
//! several clients' writes is cut after as long as a COMMIT takes, [`MAX_BATCH_TIME`] at least);
//! each client's writes keep their order.
//!
//! After each COMMIT the batch's applied writes go to the change feed, in commit order, each
//! numbered by this process's count of committed writes ([`Change::seq`]), before any reply.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::inbox::Inbox;
use super::{internal, now_secs, MAX_BATCH, MAX_BATCH_TIME};
use crate::ids::MAX_ID;
use crate::store::change::{Change, FeedItem, Origin};
use crate::store::decide::{decide, Current, Decided, Effect, Recorded};
use crate::store::{Applied, RequestId, StoreError, Write, WriteOp};

/// A write as queued for the writer thread.
pub(super) struct Queued {
    /// The write.
    pub(super) write: Write,
    /// [`Write::fingerprint`] when it has a request id (computed before queueing).
    pub(super) fingerprint: Option<String>,
    /// The socket that sent it, left out of its broadcast.
    pub(super) origin: Option<Origin>,
}

/// Where the writer hands its committed changes: set once the store's feed is taken
/// ([`crate::store::Store::changes`]); until then nothing is kept.
pub(super) type FeedSlot = Arc<Mutex<Option<UnboundedSender<FeedItem>>>>;

/// The writer loop: wait for a write, then take writes from the inbox in its fair round (see
/// [`crate::store::fair`]), applying each inside its own savepoint (a failing write leaves no
/// trace and does not affect the others), until the batch holds [`MAX_BATCH`] writes, the
/// inbox is empty, or it has run while holding writes of more than one client (whose replies
/// all wait for its COMMIT) for as long as the last COMMIT took, [`MAX_BATCH_TIME`] at least;
/// COMMIT once, hand the applied writes' changes to the feed, and only then answer them all.
///
/// Tying the cut to the COMMIT's cost keeps both sides bounded: a write that joins a batch
/// waits for at most about two COMMITs' time (the batch's work, then its COMMIT), and a batch
/// spends at least half its time applying writes, not syncing them.
pub(super) fn run_writer(
    mut conn: Connection,
    inbox: Arc<Inbox>,
    max_doc_bytes: usize,
    feed: FeedSlot,
) {
    let mut seq = 0i64;
    let mut cut_after = MAX_BATCH_TIME;
    while inbox.wait() {
        let mut replies = Vec::new();
        match apply_batch(&mut conn, &inbox, &mut replies, cut_after, max_doc_bytes) {
            Ok((outcomes, commit_took)) => {
                cut_after = commit_took.max(MAX_BATCH_TIME);
                let mut results = Vec::with_capacity(outcomes.len());
                let mut changes = Vec::new();
                for (result, change) in outcomes {
                    results.push(result);
                    changes.extend(change);
                }
                publish(&feed, changes, &mut seq);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "batch commit failed");
                if replies.is_empty() {
                    // The transaction did not even begin: fail a batch's worth of writes.
                    let taken = std::iter::from_fn(|| inbox.pop()).take(MAX_BATCH);
                    replies.extend(taken.map(|(_, (_, reply))| reply));
                }
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Internal(error.to_string())));
                }
            }
        }
    }
}

/// Numbers a committed batch's changes and hands them to the feed, in commit order.
fn publish(feed: &FeedSlot, changes: Vec<Change>, seq: &mut i64) {
    let feed = feed.lock().expect("feed slot");
    for mut change in changes {
        *seq += 1;
        change.seq = *seq;
        if let Some(feed) = feed.as_ref() {
            let _ = feed.send(change.into());
        }
    }
}

/// Where a write's result goes.
type Reply = oneshot::Sender<Result<Applied, StoreError>>;

/// One write's result, and its change when it was applied now.
type Outcome = (Result<Applied, StoreError>, Option<Change>);

/// Applies writes taken from `inbox` in one transaction (see [`run_writer`]), pushing each
/// one's reply channel to `replies` as it is taken; returns their outcomes and how long the
/// COMMIT took.
fn apply_batch(
    conn: &mut Connection,
    inbox: &Inbox,
    replies: &mut Vec<Reply>,
    cut_after: Duration,
    max_doc_bytes: usize,
) -> rusqlite::Result<(Vec<Outcome>, Duration)> {
    let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let started = Instant::now();
    let mut first_client = None;
    let mut shared = false;
    let mut outcomes = Vec::new();
    while outcomes.len() < MAX_BATCH {
        if shared && started.elapsed() >= cut_after {
            break;
        }
        let Some((client, (queued, reply))) = inbox.pop() else {
            break;
        };
        replies.push(reply);
        match &first_client {
            None => first_client = Some(client),
            Some(first) => shared |= *first != client,
        }
        // Kept for recording a refusal: the write itself goes to `decide`.
        let key = queued
            .write
            .request_id
            .clone()
            .zip(queued.fingerprint.clone());
        let sp = tx.savepoint()?;
        match apply_write(&sp, queued, max_doc_bytes) {
            Ok(applied) => {
                sp.commit()?;
                outcomes.push(applied);
            }
            Err(error) => {
                drop(sp); // rolls the write back: nothing of it is stored
                let error = record_refusal(&tx, key.as_ref(), error);
                outcomes.push((Err(error), None));
            }
        }
    }
    let committing = Instant::now();
    tx.commit()?;
    Ok((outcomes, committing.elapsed()))
}

/// Records a refusal that a replay must answer again (a conflict), outside the rolled-back
/// write; returns the error to answer (the recording's own, if it failed).
fn record_refusal(
    conn: &Connection,
    key: Option<&(RequestId, String)>,
    error: StoreError,
) -> StoreError {
    let Some((request_id, fingerprint)) = key else {
        return error;
    };
    let Some(recorded) = Recorded::refused(&error) else {
        return error;
    };
    match record(conn, request_id, fingerprint, &recorded) {
        Ok(()) => error,
        Err(failed) => failed,
    }
}

/// Applies one write (or replays its request's record); returns its answer, with its change
/// when it was applied now.
fn apply_write(
    conn: &Connection,
    Queued {
        write,
        fingerprint,
        origin,
    }: Queued,
    max_doc_bytes: usize,
) -> Result<Outcome, StoreError> {
    let known = write.request_id.zip(fingerprint);
    if let Some((request_id, fingerprint)) = &known {
        if let Some((known_fingerprint, recorded)) = recorded(conn, request_id)? {
            if &known_fingerprint != fingerprint {
                return Err(StoreError::RequestIdReused);
            }
            // A replayed conflict is answered as an error and leaves the savepoint unused.
            return Ok((recorded.replay(), None));
        }
    }
    let Write {
        owner,
        op,
        if_version,
        ..
    } = write;
    let collection = op.collection().to_owned();
    let (id, current, new_id) = match &op {
        WriteOp::Create { .. } => {
            let id = next_id(conn, &owner, &collection)?;
            (id.to_string(), None, Some(id))
        }
        WriteOp::Update { id, .. } | WriteOp::Patch { id, .. } | WriteOp::Delete { id, .. } => {
            let current = load_current(conn, &owner, &collection, id)?;
            (id.clone(), current, None)
        }
    };
    let method = op.method();
    let decided = decide(op, if_version, current, new_id, max_doc_bytes)?;
    execute(conn, &owner, &collection, &id, &decided)?;
    if let Some((request_id, fingerprint)) = &known {
        record(conn, request_id, fingerprint, &Recorded::applied(&decided))?;
    }
    let applied = decided.applied();
    let change = Change {
        seq: 0, // numbered at COMMIT
        origin,
        owner,
        method: method.to_owned(),
        collection,
        id,
        item: decided.value,
        version: decided.version,
    };
    Ok((Ok(applied), Some(change)))
}

/// The model `id` as stored, with its version.
fn load_current(
    conn: &Connection,
    owner: &str,
    collection: &str,
    id: &str,
) -> Result<Option<Current>, StoreError> {
    let row: Option<(String, i64)> =
        run(conn, LOAD_DOC, params![owner, collection, id], |s, p| {
            s.query_row(p, |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })?;
    row.map(|(text, version)| match super::parse_doc(&text)? {
        serde_json::Value::Object(doc) => Ok(Current { doc, version }),
        _ => Err(StoreError::Internal(
            "stored document is not an object".into(),
        )),
    })
    .transpose()
}

/// Executes a decision on the row of `owner`'s model `id`.
fn execute(
    conn: &Connection,
    owner: &str,
    collection: &str,
    id: &str,
    decided: &Decided,
) -> Result<(), StoreError> {
    match &decided.effect {
        Effect::Put(text) => run(
            conn,
            PUT_DOC,
            params![owner, collection, id, text, decided.version],
            |stmt, p| stmt.execute(p),
        )?,
        Effect::Remove => run(
            conn,
            DELETE_DOC,
            params![owner, collection, id],
            |stmt, p| stmt.execute(p),
        )?,
    };
    Ok(())
}

/// The request record of `request_id`: its fingerprint and what it answered.
fn recorded(
    conn: &Connection,
    request_id: &RequestId,
) -> Result<Option<(String, Recorded)>, StoreError> {
    run(
        conn,
        LOAD_RECORD,
        params![request_id.scope, request_id.id],
        |stmt, p| {
            stmt.query_row(p, |row| {
                let recorded = Recorded {
                    text: row.get(1)?,
                    version: row.get(2)?,
                    conflict: row.get(3)?,
                };
                Ok((row.get(0)?, recorded))
            })
            .optional()
        },
    )
}

/// Records what `request_id` answered.
fn record(
    conn: &Connection,
    request_id: &RequestId,
    fingerprint: &str,
    recorded: &Recorded,
) -> Result<(), StoreError> {
    run(
        conn,
        INSERT_RECORD,
        params![
            request_id.scope,
            request_id.id,
            fingerprint,
            recorded.text,
            now_secs() as i64,
            recorded.version,
            recorded.conflict
        ],
        |stmt, p| stmt.execute(p),
    )
    .map(drop)
}

const LOAD_RECORD: &str = "SELECT fingerprint, result, version, conflict FROM requests
     WHERE scope = ?1 AND request_id = ?2";
const INSERT_RECORD: &str =
    "INSERT INTO requests (scope, request_id, fingerprint, result, created_at, version, conflict)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const LOAD_DOC: &str =
    "SELECT doc, version FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3";
/// An update keeps the row (and its place in the collection's order); an insert appends.
const PUT_DOC: &str =
    "INSERT INTO documents (owner, collection, id, doc, version) VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (owner, collection, id) DO UPDATE SET doc = excluded.doc, version = excluded.version";
const LAST_ID: &str = "SELECT last_id FROM sequences WHERE owner = ?1 AND collection = ?2";
const SET_LAST_ID: &str = "INSERT INTO sequences (owner, collection, last_id) VALUES (?1, ?2, ?3)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = excluded.last_id";
const ID_TAKEN: &str = "SELECT 1 FROM documents WHERE owner = ?1 AND collection = ?2 AND id = ?3";
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
