//! One batch of writes in one transaction, in two pipelined round trips whatever its size:
//!
//! 1. `BEGIN`; claim the batch's request ids and read the records of those already taken;
//!    read which ids of the blocks it took for its creates ([`IdRanges`], reserved outside
//!    the transaction: no batch locks a sequence row) are taken; lock and read the documents
//!    it names by id. Locks are always taken in this table order and in key order, so batches
//!    of different nodes and lanes do not deadlock (and one that does anyway is retried, see
//!    [`super::write`]).
//! 2. after the batch is folded in Rust ([`plan`]): the document deletes, updates
//!    and inserts, request records, dropped claims, the outbox rows and their NOTIFYs, and
//!    `COMMIT`, each one multi-row statement (`unnest` of arrays).
//!
//! A create whose next ids turn out to be taken beyond those checked costs one more round
//! trip. No statement can fail for one write alone, so there are no savepoints: a failed
//! statement fails the batch.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use deadpool_postgres::Object as Client;
use futures_util::TryFutureExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::ids::{self, IdRanges};
use super::plan::{self, CollKey, Found, Known, NeedIds, Plan};
use crate::store::change::Origin;
use crate::store::decide::{Current, Recorded};
use crate::store::{Applied, Object, StoreError, Write};

/// Why a batch did not commit.
#[derive(Debug)]
pub(super) enum BatchError {
    /// A statement failed (the transaction rolled back, or the connection is gone).
    Pg(tokio_postgres::Error),
    /// Something read back is unusable.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for BatchError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Pg(error)
    }
}

const CLAIM: &str = "INSERT INTO bss_requests (scope, request_id, fingerprint)
     SELECT s, r, f FROM unnest($1::text[], $2::text[], $3::text[]) AS t(s, r, f) ORDER BY s, r
     ON CONFLICT (scope, request_id) DO NOTHING RETURNING scope, request_id";
const KNOWN: &str = "SELECT q.scope, q.request_id, q.fingerprint, q.result, q.version, q.conflict
     FROM bss_requests q JOIN unnest($1::text[], $2::text[]) AS t(s, r)
       ON q.scope = t.s AND q.request_id = t.r";
/// The taken ids among those listed (the blocks of [`IdRanges`] a batch took), one key per
/// row: the planner looks each up by primary key. (With `generate_series` over the blocks it
/// expected a thousand rows per block and scanned the collection: 4.5 ms a batch, measured
/// with `pg_stat_statements`, more than every other statement of the batch together.)
const TAKEN: &str = "SELECT d.owner, d.collection, d.id
     FROM bss_documents d JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(o, c, i)
       ON d.owner = t.o AND d.collection = t.c AND d.id = t.i";
const LOCK_DOCUMENTS: &str = "SELECT d.owner, d.collection, d.id, d.doc, d.version
     FROM bss_documents d JOIN unnest($1::text[], $2::text[], $3::text[]) AS t(o, c, i)
       ON d.owner = t.o AND d.collection = t.c AND d.id = t.i
     ORDER BY d.owner, d.collection, d.id FOR UPDATE OF d";
const DELETE_DOCUMENTS: &str = "DELETE FROM bss_documents d
     USING unnest($1::text[], $2::text[], $3::text[]) AS t(o, c, i)
     WHERE d.owner = t.o AND d.collection = t.c AND d.id = t.i";
const UPDATE_DOCUMENTS: &str = "UPDATE bss_documents d SET doc = t.doc, version = t.v
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
       AS t(o, c, i, doc, v)
     WHERE d.owner = t.o AND d.collection = t.c AND d.id = t.i";
/// Inserted in creation order, which is their `pos` order; a document inserted meanwhile by
/// another transaction fails the batch (unique violation), which is then retried.
const INSERT_DOCUMENTS: &str = "INSERT INTO bss_documents (owner, collection, id, doc, version)
     SELECT o, c, i, doc, v
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
       WITH ORDINALITY AS t(o, c, i, doc, v, n)
     ORDER BY n";
const RECORD_REQUESTS: &str = "UPDATE bss_requests q
     SET fingerprint = t.f, result = t.res, version = t.v, conflict = t.k
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bool[])
       AS t(s, r, f, res, v, k)
     WHERE q.scope = t.s AND q.request_id = t.r";
const DROP_CLAIMS: &str = "DELETE FROM bss_requests q
     USING unnest($1::text[], $2::text[]) AS t(s, r)
     WHERE q.scope = t.s AND q.request_id = t.r";

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;
type Pending<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// Runs `queries` back to back on one connection: each is sent when first polled, and they
/// are first polled in order, all before any answer is awaited. Answers come in order.
async fn pipeline(queries: Vec<Pending<'_>>) -> Vec<Result<Vec<Row>, tokio_postgres::Error>> {
    let mut slots: Vec<_> = queries.into_iter().map(|q| (q, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (query, out) in slots.iter_mut().filter(|(_, out)| out.is_none()) {
            match query.as_mut().poll(cx) {
                Poll::Ready(result) => *out = Some(result),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots
        .into_iter()
        .map(|(_, out)| out.expect("done"))
        .collect()
}

/// Sends `sql` with no parameters, without preparing it (`BEGIN`, `COMMIT`).
fn simple<'a>(client: &'a Client, sql: &'a str) -> Pending<'a> {
    Box::pin(client.batch_execute(sql).map_ok(|()| Vec::new()))
}

fn run<'a>(client: &'a Client, stmt: &'a Statement, params: &'a Params<'a>) -> Pending<'a> {
    Box::pin(client.query(stmt, params))
}

/// The first error of a pipeline (later ones only say the transaction was aborted), or every
/// answer.
fn all_ok(
    answers: Vec<Result<Vec<Row>, tokio_postgres::Error>>,
) -> Result<Vec<Vec<Row>>, tokio_postgres::Error> {
    answers.into_iter().collect()
}

/// What a batch writes with: this node's id, its notify statement, the document bound and
/// the node's reserved ids.
pub(super) struct Batch<'a> {
    pub node: &'a str,
    pub notify: &'a str,
    pub max_doc_bytes: usize,
    pub ids: &'a IdRanges,
}

/// The blocks of ids a batch took, per collection: (first, how many).
type Drawn = BTreeMap<CollKey, (i64, i64)>;

impl Batch<'_> {
    /// Applies `writes` in one transaction on `client` and commits it; returns each write's
    /// answer. On an error the transaction is not committed (the caller rolls back).
    pub(super) async fn apply(
        &self,
        client: &Client,
        writes: &[(Write, Option<Origin>)],
    ) -> Result<Vec<Result<Applied, StoreError>>, BatchError> {
        let mut drawn = Drawn::new();
        let done = self.apply_drawn(client, writes, &mut drawn).await;
        // The ids past the last one handed out go back (all of them when nothing committed).
        for (coll, (first, n)) in drawn {
            let used = match &done {
                Ok(plan) => plan
                    .last_ids
                    .iter()
                    .find(|(c, _)| *c == coll)
                    .map(|(_, l)| *l),
                Err(_) => None,
            };
            let from = used.map_or(first, |last| (last + 1).max(first));
            self.ids.give_back(&coll, from, first + n - 1);
        }
        Ok(done?.results)
    }

    async fn apply_drawn(
        &self,
        client: &Client,
        writes: &[(Write, Option<Origin>)],
        drawn: &mut Drawn,
    ) -> Result<Plan, BatchError> {
        let mut found = self.read(client, writes, drawn).await?;
        let plan = loop {
            match plan::plan(writes, &found, self.node, self.max_doc_bytes) {
                Ok(plan) => break plan,
                Err(NeedIds(coll)) => self.more_ids(client, &mut found, drawn, coll).await?,
            }
        };
        self.write(client, &plan).await?;
        Ok(plan)
    }

    /// Round trip 1: BEGIN, claims, records, sequences, taken ids, locked documents.
    async fn read(
        &self,
        client: &Client,
        writes: &[(Write, Option<Origin>)],
        drawn: &mut Drawn,
    ) -> Result<Found, BatchError> {
        let claims = plan::claims(writes);
        let touched = plan::touched(writes);
        let created = plan::created_in(writes);
        let mut found = Found::default();
        for (coll, n) in &created {
            let first = self.ids.take(client, coll, *n).await?;
            drawn.insert(coll.clone(), (first, *n));
            found.last_ids.insert(coll.clone(), first - 1);
            found.checked_to.insert(coll.clone(), first - 1 + n);
        }
        let [claim, known, taken, lock_docs] =
            [CLAIM, KNOWN, TAKEN, LOCK_DOCUMENTS].map(|sql| client.prepare_cached(sql));
        let (claim, known, taken, lock_docs) =
            futures_util::try_join!(claim, known, taken, lock_docs)?;
        let scopes: Vec<&str> = claims.iter().map(|((s, _), _)| s.as_str()).collect();
        let ids: Vec<&str> = claims.iter().map(|((_, r), _)| r.as_str()).collect();
        let fps: Vec<&str> = claims.iter().map(|(_, f)| f.as_str()).collect();
        let candidates = Candidates::of(drawn);
        let d_owners: Vec<&str> = touched.iter().map(|(o, _, _)| o.as_str()).collect();
        let d_colls: Vec<&str> = touched.iter().map(|(_, c, _)| c.as_str()).collect();
        let d_ids: Vec<&str> = touched.iter().map(|(_, _, i)| i.as_str()).collect();
        let claim_params: Params = vec![&scopes, &ids, &fps];
        let known_params: Params = vec![&scopes, &ids];
        let taken_params: Params = vec![&candidates.0, &candidates.1, &candidates.2];
        let doc_params: Params = vec![&d_owners, &d_colls, &d_ids];
        let mut queries = vec![simple(client, "BEGIN")];
        if !claims.is_empty() {
            queries.push(run(client, &claim, &claim_params));
            queries.push(run(client, &known, &known_params));
        }
        if !created.is_empty() {
            queries.push(run(client, &taken, &taken_params));
        }
        if !touched.is_empty() {
            queries.push(run(client, &lock_docs, &doc_params));
        }
        let mut answers = all_ok(pipeline(queries).await)?.into_iter().skip(1);
        if !claims.is_empty() {
            let claimed: HashSet<(String, String)> = answers
                .next()
                .expect("claim")
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()?;
            for row in answers.next().expect("known") {
                let key = (row.try_get(0)?, row.try_get(1)?);
                if claimed.contains(&key) {
                    continue;
                }
                let result: Option<String> = row.try_get(3)?;
                let recorded = match result {
                    Some(text) => Some(Recorded {
                        text,
                        version: row.try_get(4)?,
                        conflict: row.try_get(5)?,
                    }),
                    None => None,
                };
                let fingerprint = row.try_get(2)?;
                found.known.insert(
                    key,
                    Known {
                        fingerprint,
                        recorded,
                    },
                );
            }
        }
        if !created.is_empty() {
            for row in answers.next().expect("taken") {
                found
                    .taken
                    .insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
            }
        }
        if !touched.is_empty() {
            for row in answers.next().expect("documents") {
                let key = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let doc: Object = serde_json::from_str(row.try_get(3)?).map_err(|e| {
                    BatchError::Store(StoreError::Internal(format!("corrupt document: {e}")))
                })?;
                let version = row.try_get(4)?;
                found.docs.insert(key, Current { doc, version });
            }
        }
        Ok(found)
    }

    /// Round trip 2: every change of the plan, then COMMIT.
    async fn write(&self, client: &Client, plan: &Plan) -> Result<(), BatchError> {
        let sqls = [
            DELETE_DOCUMENTS,
            UPDATE_DOCUMENTS,
            INSERT_DOCUMENTS,
            RECORD_REQUESTS,
            DROP_CLAIMS,
            self.notify,
        ];
        let [deletes, updates, inserts, records, drops, notify] =
            sqls.map(|sql| client.prepare_cached(sql));
        let (deletes, updates, inserts, records, drops, notify) =
            futures_util::try_join!(deletes, updates, inserts, records, drops, notify)?;
        let del = columns3(plan.deletes.iter());
        let upd = columns3(plan.updates.iter().map(|r| &r.key));
        let upd_doc: Vec<&str> = plan.updates.iter().map(|r| r.doc.as_str()).collect();
        let upd_v: Vec<i64> = plan.updates.iter().map(|r| r.version).collect();
        let ins = columns3(plan.inserts.iter().map(|r| &r.key));
        let ins_doc: Vec<&str> = plan.inserts.iter().map(|r| r.doc.as_str()).collect();
        let ins_v: Vec<i64> = plan.inserts.iter().map(|r| r.version).collect();
        let rec_s: Vec<&str> = plan.records.iter().map(|r| r.key.0.as_str()).collect();
        let rec_r: Vec<&str> = plan.records.iter().map(|r| r.key.1.as_str()).collect();
        let rec_f: Vec<&str> = plan
            .records
            .iter()
            .map(|r| r.fingerprint.as_str())
            .collect();
        let rec_t: Vec<&str> = plan
            .records
            .iter()
            .map(|r| r.recorded.text.as_str())
            .collect();
        let rec_v: Vec<i64> = plan.records.iter().map(|r| r.recorded.version).collect();
        let rec_k: Vec<bool> = plan.records.iter().map(|r| r.recorded.conflict).collect();
        let drop_s: Vec<&str> = plan.dropped_claims.iter().map(|k| k.0.as_str()).collect();
        let drop_r: Vec<&str> = plan.dropped_claims.iter().map(|k| k.1.as_str()).collect();
        let params: [(bool, &Statement, Params); 6] = [
            (!del.0.is_empty(), &deletes, vec![&del.0, &del.1, &del.2]),
            (
                !upd_v.is_empty(),
                &updates,
                vec![&upd.0, &upd.1, &upd.2, &upd_doc, &upd_v],
            ),
            (
                !ins_v.is_empty(),
                &inserts,
                vec![&ins.0, &ins.1, &ins.2, &ins_doc, &ins_v],
            ),
            (
                !rec_s.is_empty(),
                &records,
                vec![&rec_s, &rec_r, &rec_f, &rec_t, &rec_v, &rec_k],
            ),
            (!drop_s.is_empty(), &drops, vec![&drop_s, &drop_r]),
            (!plan.changes.is_empty(), &notify, vec![&plan.changes]),
        ];
        let mut queries: Vec<Pending> = params
            .iter()
            .filter(|(needed, _, _)| *needed)
            .map(|(_, stmt, params)| run(client, stmt, params))
            .collect();
        queries.push(simple(client, "COMMIT"));
        all_ok(pipeline(queries).await)?;
        Ok(())
    }
}

/// The owner, collection and id columns of document keys.
fn columns3<'a>(
    keys: impl Iterator<Item = &'a (String, String, String)>,
) -> (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for (o, c, i) in keys {
        columns.0.push(o.as_str());
        columns.1.push(c.as_str());
        columns.2.push(i.as_str());
    }
    columns
}

impl Batch<'_> {
    /// Takes a block twice as large for `coll`, whose creates ran past the free ids of the
    /// block taken (clients took some of them), and checks it: one more round trip, rare.
    async fn more_ids(
        &self,
        client: &Client,
        found: &mut Found,
        drawn: &mut Drawn,
        coll: CollKey,
    ) -> Result<(), BatchError> {
        let (first, n) = drawn.get(&coll).copied().unwrap_or((1, 8));
        // Nothing was handed out yet (the plan is only a plan): the block goes back whole,
        // and comes back extended when nobody took ids past it meanwhile.
        self.ids.give_back(&coll, first, first + n - 1);
        let n = n.saturating_mul(2).max(16);
        let first = match self.ids.take_held(&coll, n) {
            Some(first) => first,
            // Not kept in the node's range: those ids roll back with this transaction.
            None => ids::reserve_in_transaction(client, &coll, n).await?,
        };
        drawn.insert(coll.clone(), (first, n));
        found.last_ids.insert(coll.clone(), first - 1);
        found.checked_to.insert(coll.clone(), first - 1 + n);
        let stmt = client.prepare_cached(TAKEN).await?;
        let block = Drawn::from([(coll.clone(), (first, n))]);
        let candidates = Candidates::of(&block);
        let rows = client
            .query(&stmt, &[&candidates.0, &candidates.1, &candidates.2])
            .await?;
        for row in rows {
            found
                .taken
                .insert((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
        Ok(())
    }
}

/// The keys of every id of the blocks drawn, as the owner, collection and id columns of
/// [`TAKEN`].
struct Candidates<'a>(Vec<&'a str>, Vec<&'a str>, Vec<String>);

impl<'a> Candidates<'a> {
    fn of(drawn: &'a Drawn) -> Self {
        let mut columns = Candidates(Vec::new(), Vec::new(), Vec::new());
        for ((owner, coll), (first, n)) in drawn {
            for id in *first..first + n {
                columns.0.push(owner.as_str());
                columns.1.push(coll.as_str());
                columns.2.push(id.to_string());
            }
        }
        columns
    }
}
