//! The fold of a batch, on literal inputs: no database.

use serde_json::json;

use super::*;
use crate::store::RequestId;

fn w(op: WriteOp, request_id: Option<&str>) -> (Write, Option<Origin>) {
    let write = Write {
        owner: String::new(),
        op,
        request_id: request_id.map(|id| RequestId::new("", id)),
        if_version: None,
    };
    (write, None)
}

fn create() -> WriteOp {
    WriteOp::Create {
        collection: "/c".into(),
        item: Default::default(),
    }
}

fn update(id: &str) -> WriteOp {
    WriteOp::Update {
        collection: "/c".into(),
        id: id.into(),
        item: json!({"id": id}).as_object().unwrap().clone(),
    }
}

fn delete(id: &str) -> WriteOp {
    WriteOp::Delete {
        collection: "/c".into(),
        id: id.into(),
    }
}

fn coll() -> CollKey {
    (String::new(), "/c".into())
}

fn doc(id: &str) -> DocKey {
    (String::new(), "/c".into(), id.into())
}

/// What the first round trip finds for a batch creating in `/c` whose last id is `last`, with
/// ids up to `checked_to` checked and these of them `taken`.
fn found(last: i64, checked_to: i64, taken: &[&str]) -> Found {
    Found {
        last_ids: [(coll(), last)].into(),
        checked_to: [(coll(), checked_to)].into(),
        taken: taken.iter().map(|id| doc(id)).collect(),
        ..Found::default()
    }
}

#[test]
fn creates_skip_taken_ids_and_ask_for_more_past_those_checked() {
    let batch = [w(create(), None), w(update("4"), None), w(create(), None)];
    let plan = plan(&batch, &found(2, 5, &["3"]), "n", 1000).unwrap();
    let values: Vec<_> = plan
        .results
        .iter()
        .map(|r| r.as_ref().unwrap().value.clone())
        .collect();
    // The first create takes 4 (3 is taken), the update replaces it, the second takes 5.
    assert_eq!(
        values,
        [json!({"id": 4}), json!({"id": "4"}), json!({"id": 5})]
    );
    assert_eq!(plan.last_ids, [(coll(), 5)]);
    let inserted: Vec<_> = plan.inserts.iter().map(|r| r.key.2.as_str()).collect();
    assert_eq!(inserted, ["4", "5"]);
    assert_eq!(plan.changes.len(), 3);
    // One more create than the checked range allows: the planner asks for more ids.
    let more = [
        w(create(), None),
        w(create(), None),
        w(create(), None),
        w(create(), None),
    ];
    assert_eq!(plan_err(&more, &found(2, 5, &["3"])), NeedIds(coll()));
}

fn plan_err(batch: &[(Write, Option<Origin>)], found: &Found) -> NeedIds {
    plan(batch, found, "n", 1000).expect_err("needs ids")
}

#[test]
fn a_request_id_recorded_in_the_batch_answers_its_repeats_and_a_failure_leaves_it_free() {
    let batch = [
        w(delete("gone"), Some("a")), // 404: not recorded, "a" stays free
        w(update("x"), Some("a")),    // another request under "a": applied
        w(update("x"), Some("a")),    // its repeat: replayed
        w(delete("x"), Some("a")),    // yet another request: refused
    ];
    let plan = plan(&batch, &Found::default(), "n", 1000).unwrap();
    assert!(matches!(plan.results[0], Err(StoreError::NotFound)));
    let (first, again) = (
        plan.results[1].as_ref().unwrap(),
        plan.results[2].as_ref().unwrap(),
    );
    assert!(!first.replayed && again.replayed && first.value == again.value);
    assert!(matches!(plan.results[3], Err(StoreError::RequestIdReused)));
    assert_eq!(plan.records.len(), 1);
    assert_eq!(plan.records[0].fingerprint, batch[1].0.fingerprint());
    assert!(plan.dropped_claims.is_empty());
    assert_eq!(plan.changes.len(), 1, "one applied write, one change");
}

#[test]
fn deleted_and_recreated_models_are_deleted_then_inserted_and_reads_write_nothing() {
    let mut found = Found::default();
    for id in ["x", "y", "z"] {
        let current = Current {
            doc: json!({"id": id}).as_object().unwrap().clone(),
            version: 4,
        };
        found.docs.insert(doc(id), current);
    }
    let batch = [
        w(delete("x"), None),
        w(update("x"), None),
        w(update("y"), None),
        w(delete("z"), None),
        w(
            WriteOp::Patch {
                collection: "/c".into(),
                id: "q".into(),
                item: Default::default(),
            },
            Some("p"),
        ),
    ];
    let plan = plan(&batch, &found, "n", 1000).unwrap();
    assert_eq!(plan.deletes, [doc("x"), doc("z")]);
    assert_eq!(
        plan.inserts
            .iter()
            .map(|r| (&r.key, r.version))
            .collect::<Vec<_>>(),
        [(&doc("x"), 1)]
    );
    assert_eq!(
        plan.updates
            .iter()
            .map(|r| (&r.key, r.version))
            .collect::<Vec<_>>(),
        [(&doc("y"), 5)]
    );
    assert_eq!(
        plan.dropped_claims,
        [(String::new(), "p".to_owned())],
        "the 404 left no record"
    );
}

#[test]
fn past_the_largest_id_creates_fail_alone() {
    let max = crate::ids::MAX_ID;
    let batch = [w(create(), None), w(update("a"), None)];
    let plan = plan(&batch, &found(max, max + 2, &[]), "n", 1000).unwrap();
    assert!(matches!(plan.results[0], Err(StoreError::IdsExhausted)));
    assert!(plan.results[1].is_ok());
    assert!(plan.last_ids.is_empty());
}
