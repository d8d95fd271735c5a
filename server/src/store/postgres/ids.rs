//! Ids for creates, reserved by each node in ranges outside any batch's transaction.
//!
//! A batch that creates takes a block of consecutive ids from its node's range of the
//! collection ([`IdRanges::take`]); when the range runs short, the node reserves the next ids
//! of the collection's sequence row with one short statement of its own (`reserve`), so no
//! batch holds the sequence row: batches of one collection, in several lanes or nodes, run
//! side by side. Ids of a block that a batch did not use go back to the range when they are
//! its last ones handed out (so one node's ids stay dense), else they are skipped. Ids that
//! clients took themselves are checked by each batch (`TAKEN` in [`super::batch`]), and one
//! inserted meanwhile fails the batch, which is retried: ids stay unique.

use std::collections::HashMap;
use std::sync::Mutex;

use deadpool_postgres::Object as Client;

use super::plan::CollKey;

/// The fewest ids a node reserves at once.
const RESERVE: i64 = 512;

/// Reserves `$3` ids past the collection's last one; returns the new last id. Its own
/// transaction, committed without waiting for the WAL flush: every batch that inserts one of
/// these ids commits later with a flush, which writes this commit too (the WAL is written in
/// order), so no stored id can come from a reservation lost in a crash.
const RESERVE_SQL: &str = "INSERT INTO bss_sequences (owner, collection, last_id)
     VALUES ($1, $2, $3)
     ON CONFLICT (owner, collection) DO UPDATE SET last_id = bss_sequences.last_id + $3
     RETURNING last_id";

/// A node's reserved, not yet handed out ids: `next ..= end` per collection.
#[derive(Default)]
pub(super) struct IdRanges {
    ranges: Mutex<HashMap<CollKey, (i64, i64)>>,
}

impl IdRanges {
    /// Takes `n` consecutive ids of `coll`, reserving more on `client` when the range is
    /// short; returns the first.
    pub(super) async fn take(
        &self,
        client: &Client,
        coll: &CollKey,
        n: i64,
    ) -> Result<i64, tokio_postgres::Error> {
        loop {
            if let Some(first) = self.take_held(coll, n) {
                return Ok(first);
            }
            let size = n.max(RESERVE);
            let last = reserve(client, coll, size).await?;
            self.add(coll, last - size + 1, last);
        }
    }

    /// Takes `n` consecutive ids of `coll` from the range held, if it has that many.
    pub(super) fn take_held(&self, coll: &CollKey, n: i64) -> Option<i64> {
        let mut ranges = self.ranges.lock().expect("id ranges");
        let (next, end) = ranges.get_mut(coll)?;
        if *end - *next + 1 < n {
            return None;
        }
        let first = *next;
        *next += n;
        Some(first)
    }

    /// A new reservation: extends the range when it follows it, else replaces it (the rest
    /// of the old range is skipped).
    fn add(&self, coll: &CollKey, first: i64, last: i64) {
        let mut ranges = self.ranges.lock().expect("id ranges");
        match ranges.get_mut(coll) {
            Some((_, end)) if *end + 1 == first => *end = last,
            _ => {
                ranges.insert(coll.clone(), (first, last));
            }
        }
    }

    /// Hands back `first ..= last`, unused: kept when they are the last ids handed out.
    pub(super) fn give_back(&self, coll: &CollKey, first: i64, last: i64) {
        if first > last {
            return;
        }
        let mut ranges = self.ranges.lock().expect("id ranges");
        if let Some((next, _)) = ranges.get_mut(coll) {
            if *next == last + 1 {
                *next = first;
            }
        }
    }
}

/// Reserves `n` ids of `coll` inside the transaction open on `client` (its sequence row stays
/// locked until it ends, and the reservation rolls back with it); returns the first. For a
/// batch that needs more ids than it took, which may not end its transaction.
pub(super) async fn reserve_in_transaction(
    client: &Client,
    coll: &CollKey,
    n: i64,
) -> Result<i64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(RESERVE_SQL).await?;
    let last: i64 = client
        .query_one(&stmt, &[&coll.0, &coll.1, &n])
        .await?
        .try_get(0)?;
    Ok(last - n + 1)
}

async fn reserve(client: &Client, coll: &CollKey, n: i64) -> Result<i64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(RESERVE_SQL).await?;
    client
        .batch_execute("BEGIN; SET LOCAL synchronous_commit TO off")
        .await?;
    let reserved = client.query_one(&stmt, &[&coll.0, &coll.1, &n]).await;
    let row = match reserved {
        Ok(row) => row,
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(error);
        }
    };
    client.batch_execute("COMMIT").await?;
    row.try_get(0)
}
