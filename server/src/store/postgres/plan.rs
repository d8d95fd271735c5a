//! What one batch of the PostgreSQL writer does, decided in Rust between its round trips: the
//! batch's writes folded in order through the shared [`decide`] (each sees what earlier ones
//! left), starting from the rows the first round trip locked and read, into the multi-row
//! statements of the second round trip ([`Plan`]) and each write's answer. Pure: no I/O.
//!
//! Repeated keys and requestIds within a batch behave as if the writes had been applied one
//! by one: a later write of a model sees the earlier one's result; a requestId recorded by an
//! earlier write answers a later repeat from that record (or refuses a different request).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::listen::record;
use crate::ids::MAX_ID;
use crate::store::change::Origin;
use crate::store::decide::{decide, Current, Effect, Recorded};
use crate::store::{Applied, StoreError, Write, WriteOp};

/// A document's key: (owner, collection, id).
pub type DocKey = (String, String, String);
/// A collection's key: (owner, collection).
pub type CollKey = (String, String);
/// A request record's key: (scope, request id).
pub type ReqKey = (String, String);

/// A request record found in the database (not the claim this batch made).
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    /// The fingerprint of the request that recorded it.
    pub fingerprint: String,
    /// Its outcome; `None` for a record without one (never written by this code).
    pub recorded: Option<Recorded>,
}

/// What the first round trip found.
#[derive(Debug, Default)]
pub struct Found {
    /// Request records that existed (committed by someone else); ids not in here were
    /// claimed by this batch.
    pub known: HashMap<ReqKey, Known>,
    /// The locked documents the batch touches by id (absent: no such document).
    pub docs: HashMap<DocKey, Current>,
    /// Each created-in collection's id before the block of ids the batch took for it.
    pub last_ids: HashMap<CollKey, i64>,
    /// Ids checked for being taken, per collection: `last_ids + 1 ..= checked_to` (the block).
    pub checked_to: HashMap<CollKey, i64>,
    /// The ids among those checked that exist.
    pub taken: HashSet<DocKey>,
}

/// One row of `bss_documents` to write.
#[derive(Debug, Clone, PartialEq)]
pub struct DocRow {
    pub key: DocKey,
    pub doc: String,
    pub version: i64,
}

/// One request record to write: what its claim row becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRow {
    pub key: ReqKey,
    pub fingerprint: String,
    pub recorded: Recorded,
}

/// The statements of the batch's second round trip, and its answers.
#[derive(Debug, Default)]
pub struct Plan {
    /// Each write's answer, in batch order.
    pub results: Vec<Result<Applied, StoreError>>,
    /// The last id handed out per collection created in (the rest of its block goes back).
    pub last_ids: Vec<(CollKey, i64)>,
    /// Documents to delete (first).
    pub deletes: Vec<DocKey>,
    /// Existing documents to update in place.
    pub updates: Vec<DocRow>,
    /// Documents to insert, in the order they were created (their `pos` order).
    pub inserts: Vec<DocRow>,
    /// Claimed request ids with an outcome to keep.
    pub records: Vec<RequestRow>,
    /// Claimed request ids with none (the write failed and may be retried): claims to drop.
    pub dropped_claims: Vec<ReqKey>,
    /// The change records of the applied writes, in order.
    pub changes: Vec<String>,
}

/// The batch needs more ids checked in a collection before it can be planned.
#[derive(Debug, PartialEq)]
pub struct NeedIds(pub CollKey);

/// The state of one model during the fold.
struct DocState {
    /// Whether it existed before the batch.
    existed: bool,
    /// Whether the batch removed it at some point (a later put inserts it anew).
    removed: bool,
    /// When it was last inserted by the batch (its `pos` order among inserts).
    inserted_at: Option<usize>,
    now: Option<Current>,
    /// The text of the document the batch put last (`None`: no put since the read).
    text: Option<String>,
}

/// The request ids of `writes`, each once, sorted, with the first fingerprint met: the claims.
pub fn claims(writes: &[(Write, Option<Origin>)]) -> Vec<(ReqKey, String)> {
    let mut claims = BTreeMap::new();
    for (write, _) in writes {
        if let Some(r) = &write.request_id {
            claims
                .entry((r.scope.clone(), r.id.clone()))
                .or_insert_with(|| write.fingerprint());
        }
    }
    claims.into_iter().collect()
}

/// The documents `writes` name by id, each once, sorted (the order they are locked in).
pub fn touched(writes: &[(Write, Option<Origin>)]) -> Vec<DocKey> {
    let mut keys: Vec<DocKey> = writes
        .iter()
        .filter_map(|(w, _)| doc_id(&w.op).map(|id| key(&w.owner, w.op.collection(), id)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The collections `writes` create in, sorted, each with how many ids to check past its last
/// one: its creates plus the batch's other writes there (each may take a candidate id).
pub fn created_in(writes: &[(Write, Option<Origin>)]) -> Vec<(CollKey, i64)> {
    let mut counts: BTreeMap<CollKey, i64> = BTreeMap::new();
    for (w, _) in writes {
        if matches!(w.op, WriteOp::Create { .. }) {
            *counts
                .entry((w.owner.clone(), w.op.collection().to_owned()))
                .or_default() += 1;
        }
    }
    for (w, _) in writes {
        let coll = (w.owner.clone(), w.op.collection().to_owned());
        if let (Some(n), Some(_)) = (counts.get_mut(&coll), doc_id(&w.op)) {
            *n += 1;
        }
    }
    counts.into_iter().collect()
}

fn doc_id(op: &WriteOp) -> Option<&str> {
    match op {
        WriteOp::Create { .. } => None,
        WriteOp::Update { id, .. } | WriteOp::Patch { id, .. } | WriteOp::Delete { id, .. } => {
            Some(id)
        }
    }
}

fn key(owner: &str, collection: &str, id: &str) -> DocKey {
    (owner.to_owned(), collection.to_owned(), id.to_owned())
}

/// Folds `writes` over what was `found`; `node` names this process in the change records.
/// Fails with [`NeedIds`] when a create runs past the ids checked in its collection.
pub fn plan(
    writes: &[(Write, Option<Origin>)],
    found: &Found,
    node: &str,
    max_doc_bytes: usize,
) -> Result<Plan, NeedIds> {
    let mut plan = Plan::default();
    let mut docs: BTreeMap<DocKey, DocState> = BTreeMap::new();
    for k in touched(writes) {
        let now = found.docs.get(&k).cloned();
        docs.insert(
            k,
            DocState {
                existed: now.is_some(),
                removed: false,
                inserted_at: None,
                now,
                text: None,
            },
        );
    }
    let mut last_ids: BTreeMap<CollKey, i64> = BTreeMap::new();
    // Claimed ids: `None` until an outcome is recorded by a write of this batch.
    let mut requests: HashMap<ReqKey, Option<Known>> = HashMap::new();
    for (index, (write, origin)) in writes.iter().enumerate() {
        let fingerprint = write.request_id.as_ref().map(|_| write.fingerprint());
        let req = write
            .request_id
            .as_ref()
            .map(|r| (r.scope.clone(), r.id.clone()));
        if let (Some(req), Some(fp)) = (&req, &fingerprint) {
            let known = match requests.get(req) {
                Some(mine) => mine.as_ref(),
                None => found.known.get(req),
            };
            if let Some(known) = known {
                plan.results.push(answer_known(known, fp, &req.1));
                continue;
            }
        }
        let coll = (write.owner.clone(), write.op.collection().to_owned());
        let (doc_key, new_id) = match doc_id(&write.op) {
            Some(id) => (key(&write.owner, &coll.1, id), None),
            None => {
                let id = next_id(&coll, &last_ids, found, &docs)?;
                let k = key(&write.owner, &coll.1, &id.map_or(0, |id| id).to_string());
                (k, Some(id))
            }
        };
        let result = match new_id {
            Some(None) => Err(StoreError::IdsExhausted),
            _ => {
                let current = docs.get(&doc_key).and_then(|d| d.now.clone());
                decide(
                    write.op.clone(),
                    write.if_version,
                    current,
                    new_id.flatten(),
                    max_doc_bytes,
                )
            }
        };
        let outcome = match result {
            Ok(decided) => {
                if let Some(Some(id)) = new_id {
                    last_ids.insert(coll.clone(), id);
                }
                let state = docs.entry(doc_key.clone()).or_insert(DocState {
                    existed: false,
                    removed: false,
                    inserted_at: None,
                    now: None,
                    text: None,
                });
                match &decided.effect {
                    Effect::Put(text) => {
                        state.text = Some(text.clone());
                        if state.now.is_none() {
                            state.inserted_at = Some(index);
                        }
                        let Value::Object(doc) = &decided.value else {
                            unreachable!("a put stores an object")
                        };
                        state.now = Some(Current {
                            doc: doc.clone(),
                            version: decided.version,
                        });
                    }
                    Effect::Remove => {
                        state.removed = true;
                        state.inserted_at = None;
                        state.now = None;
                        state.text = None;
                    }
                }
                plan.changes.push(record(
                    node,
                    origin.as_ref(),
                    &write.owner,
                    write.op.method(),
                    &coll.1,
                    &doc_key.2,
                    &decided.text,
                    decided.version,
                ));
                let applied = decided.applied();
                (Ok(applied), Some(Recorded::applied(&decided)))
            }
            Err(error) => {
                let recorded = Recorded::refused(&error);
                (Err(error), recorded)
            }
        };
        if let (Some(req), Some(fp)) = (req, fingerprint) {
            let known = outcome.1.map(|recorded| Known {
                fingerprint: fp,
                recorded: Some(recorded),
            });
            // A failure that is not recorded leaves the id free for a later repeat.
            let entry = requests.entry(req).or_insert(None);
            if known.is_some() {
                *entry = known;
            }
        }
        plan.results.push(outcome.0);
    }
    finish(&mut plan, docs, last_ids, requests);
    Ok(plan)
}

/// A repeat of a recorded request answers its record; another request under its id is
/// refused.
fn answer_known(known: &Known, fingerprint: &str, id: &str) -> Result<Applied, StoreError> {
    if known.fingerprint != fingerprint {
        return Err(StoreError::RequestIdReused);
    }
    match &known.recorded {
        Some(recorded) => recorded.replay(),
        None => Err(StoreError::Internal(format!("request {id} has no result"))),
    }
}

/// The next free id of `coll` after the ones this batch handed out (`Ok(None)`: past
/// [`MAX_ID`]).
fn next_id(
    coll: &CollKey,
    handed_out: &BTreeMap<CollKey, i64>,
    found: &Found,
    docs: &BTreeMap<DocKey, DocState>,
) -> Result<Option<i64>, NeedIds> {
    let need = || NeedIds(coll.clone());
    let last = match handed_out.get(coll) {
        Some(id) => *id,
        None => *found.last_ids.get(coll).ok_or_else(need)?,
    };
    let checked_to = found.checked_to.get(coll).copied().unwrap_or(last);
    let mut id = last.clamp(0, MAX_ID);
    loop {
        id += 1;
        if id > MAX_ID {
            return Ok(None);
        }
        let k = key(&coll.0, &coll.1, &id.to_string());
        let taken = match docs.get(&k) {
            Some(state) => state.now.is_some(),
            None if id > checked_to => return Err(need()),
            None => found.taken.contains(&k),
        };
        if !taken {
            return Ok(Some(id));
        }
    }
}

/// Turns the fold's final state into the second round trip's rows.
fn finish(
    plan: &mut Plan,
    docs: BTreeMap<DocKey, DocState>,
    last_ids: BTreeMap<CollKey, i64>,
    requests: HashMap<ReqKey, Option<Known>>,
) {
    plan.last_ids = last_ids.into_iter().collect();
    let mut inserts = Vec::new();
    for (key, state) in docs {
        if state.existed && (state.removed || state.now.is_none()) {
            plan.deletes.push(key.clone());
        }
        let (Some(now), Some(doc)) = (state.now, state.text) else {
            continue; // absent at the end, or only read
        };
        let row = DocRow {
            key,
            doc,
            version: now.version,
        };
        match state.inserted_at {
            Some(at) => inserts.push((at, row)),
            None => plan.updates.push(row),
        }
    }
    inserts.sort_by_key(|(at, _)| *at);
    plan.inserts = inserts.into_iter().map(|(_, row)| row).collect();
    let mut requests: Vec<_> = requests.into_iter().collect();
    requests.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, known) in requests {
        match known.and_then(|k| k.recorded.map(|r| (k.fingerprint, r))) {
            Some((fingerprint, recorded)) => plan.records.push(RequestRow {
                key,
                fingerprint,
                recorded,
            }),
            None => plan.dropped_claims.push(key),
        }
    }
}

#[cfg(test)]
mod tests;
