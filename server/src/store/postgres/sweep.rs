//! What the PostgreSQL store forgets, on a schedule, by the database's clock (a node whose
//! clock runs fast must not delete fresh rows): outbox rows older than [`OUTBOX_RETENTION`]
//! and request records older than the store's request retention. Every node sweeps; sweeps
//! running at once delete each row once.
//!
//! The outbox is swept as a prefix in the feed's `(xid, seq)` order (see
//! [`super::listen`]), and the last row deleted becomes the watermark in `bss_outbox_swept`,
//! in the same transaction: a listener whose cursor is below it knows it lost changes.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::Client;

use super::listen::Pos;
use super::{pg_error, pool_error};
use crate::store::expiry;
use crate::store::StoreError;

/// How long a change stays in `bss_outbox` for listeners that were away.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(600);
/// How often each node sweeps the outbox.
const OUTBOX_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The first row (in `(xid, seq)` order) of a transaction that has ended and that is younger
/// than `$1` seconds, and the xmin: the sweep deletes every row before that one.
const FIRST_KEPT: &str = "SELECT b.xmin::text::bigint, y.xid::text::bigint, y.seq
     FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) b
     LEFT JOIN LATERAL (
         SELECT xid, seq FROM bss_outbox
          WHERE xid < b.xmin AND created_at >= now() - make_interval(secs => $1)
          ORDER BY xid, seq LIMIT 1) y ON true";
/// Deletes the rows before `$1/$2` and raises the watermark to the last one deleted.
const DELETE_BEFORE: &str = "WITH gone AS (
         DELETE FROM bss_outbox WHERE (xid, seq) < ($1::bigint::text::xid8, $2::bigint)
         RETURNING xid, seq),
     edge AS (SELECT xid, seq FROM gone ORDER BY xid DESC, seq DESC LIMIT 1),
     raised AS (
         UPDATE bss_outbox_swept w SET xid = edge.xid, seq = edge.seq FROM edge
          WHERE (edge.xid, edge.seq) > (w.xid, w.seq) RETURNING 1)
     SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM raised)";
/// Forgets request records older than `$1` seconds.
const DELETE_REQUESTS: &str = "DELETE FROM bss_requests
     WHERE created_at < extract(epoch FROM now() - make_interval(secs => $1))::bigint";

/// Sweeps until the store closes (the task is aborted): the outbox every
/// [`OUTBOX_SWEEP_EVERY`], request records as often as their retention asks
/// ([`expiry::sweep_every`]).
pub(super) async fn run(pool: Pool, request_retention: Duration) {
    let mut outbox = tokio::time::interval(OUTBOX_SWEEP_EVERY);
    let mut requests = tokio::time::interval(expiry::sweep_every(request_retention));
    for timer in [&mut outbox, &mut requests] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        let swept = tokio::select! {
            _ = outbox.tick() => outbox_older_than(&pool, OUTBOX_RETENTION).await,
            _ = requests.tick() => requests_older_than(&pool, request_retention).await,
        };
        if let Err(error) = swept {
            tracing::warn!(%error, "sweep failed; trying again at the next one");
        }
    }
}

/// Deletes the outbox rows older than `age` (by the database's clock) and raises the
/// watermark past them; returns how many were deleted.
pub(super) async fn outbox_older_than(pool: &Pool, age: Duration) -> Result<u64, StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    sweep_outbox(&mut client, age).await
}

async fn sweep_outbox(client: &mut Client, age: Duration) -> Result<u64, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let row = tx
        .query_one(FIRST_KEPT, &[&age.as_secs_f64()])
        .await
        .map_err(pg_error)?;
    let first_kept = match (row.get(1), row.get(2)) {
        (Some(xid), Some(seq)) => Pos { xid, seq },
        // Every row of an ended transaction is old: all of them go.
        _ => Pos::before_xid(row.get(0)),
    };
    let row = tx
        .query_one(DELETE_BEFORE, &[&first_kept.xid, &first_kept.seq])
        .await
        .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    let gone: i64 = row.get(0);
    Ok(gone as u64)
}

/// Deletes the request records older than `age` (by the database's clock); returns how many.
pub(super) async fn requests_older_than(pool: &Pool, age: Duration) -> Result<u64, StoreError> {
    let client = pool.get().await.map_err(pool_error)?;
    client
        .execute(DELETE_REQUESTS, &[&age.as_secs_f64()])
        .await
        .map_err(pg_error)
}
