//! The PostgreSQL store's batched writer, against a real PostgreSQL: two stores on one
//! database stand for two nodes. The same request id sent to both at the same moment is
//! applied once with equal answers; a batch with repeated models and request ids behaves as
//! if its writes ran one by one; conditional writes keep versions; and a connection frozen in
//! the middle of a transaction holds up only the writes that need its rows, and those only
//! until the server ends its idle transaction.

mod services;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
use backbone_socket_sync_server::store::open::open;
use backbone_socket_sync_server::store::{
    Applied, Query, RequestId, Store, StoreError, Write, WriteOp,
};
use serde_json::{json, Value};
use services::shared_postgres;

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

async fn store_on(url: &str) -> Arc<dyn Store> {
    open(Path::new(url), 10_000, DEFAULT_REQUEST_RETENTION)
        .await
        .expect("open postgres")
}

fn write(op: WriteOp, request_id: Option<&str>, if_version: Option<i64>) -> Write {
    Write {
        owner: String::new(),
        op,
        request_id: request_id.map(|id| RequestId::new("", id)),
        if_version,
    }
}

fn patch(collection: &str, id: &str, item: Value) -> WriteOp {
    WriteOp::Patch {
        collection: collection.into(),
        id: id.into(),
        item: object(item),
    }
}

fn update(collection: &str, id: &str, item: Value) -> WriteOp {
    WriteOp::Update {
        collection: collection.into(),
        id: id.into(),
        item: object(item),
    }
}

fn create(collection: &str, item: Value) -> WriteOp {
    WriteOp::Create {
        collection: collection.into(),
        item: object(item),
    }
}

fn delete(collection: &str, id: &str) -> WriteOp {
    WriteOp::Delete {
        collection: collection.into(),
        id: id.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_id_on_two_nodes_at_once_is_applied_once() {
    const ROUNDS: usize = 40;
    let url = shared_postgres().create_database("twice");
    let (a, b) = (store_on(&url).await, store_on(&url).await);
    for round in 0..ROUNDS {
        let rid = format!("r{round}");
        let same = || {
            write(
                create("/api/once", json!({"round": round})),
                Some(&rid),
                None,
            )
        };
        // Both queued before either is awaited: their batches run at the same moment.
        let (first, second) = tokio::join!(a.write(same()), b.write(same()));
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(
            (&first.value, first.version),
            (&second.value, second.version)
        );
        assert_eq!(first.version, 1, "a create is version 1");
        assert!(
            first.replayed != second.replayed,
            "one applied, one replayed: {first:?} {second:?}"
        );
    }
    let stored = a
        .read_collection("", "/api/once", Query::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), ROUNDS, "applied once each");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_batch_with_repeated_models_and_request_ids_runs_as_if_one_by_one() {
    let url = shared_postgres().create_database("repeats");
    let store = store_on(&url).await;
    let c = "/api/r";
    let writes = vec![
        write(create(c, json!({"n": 0})), Some("a"), None),
        write(create(c, json!({"n": 0})), Some("a"), None), // a repeat: replayed
        write(update(c, "x", json!({"id": "x", "n": 1})), Some("b"), None),
        write(patch(c, "x", json!({"m": 2})), Some("c"), None),
        write(patch(c, "x", json!({"m": 3})), Some("b"), None), // b for another request
        write(patch(c, "missing", json!({"m": 1})), Some("d"), None), // 404: d stays free
        write(
            update(c, "missing", json!({"id": "missing"})),
            Some("d"),
            None,
        ),
        write(delete(c, "x"), None, None),
        write(
            update(c, "x", json!({"id": "x", "again": true})),
            None,
            None,
        ),
        write(update(c, "2", json!({"id": 2})), None, None), // a client's id: skipped
        write(create(c, json!({"n": 9})), None, None),
        write(patch(c, "x", json!({"late": 1})), None, Some(1)),
    ];
    // Queued together, before any is awaited: one batch.
    let pending: Vec<_> = writes.into_iter().map(|w| store.write(w)).collect();
    let mut results = Vec::new();
    for p in pending {
        results.push(p.await);
    }
    let ok = |i: usize| -> Applied { results[i].as_ref().unwrap().clone() };
    assert_eq!((ok(0).value, ok(0).version), (json!({"n": 0, "id": 1}), 1));
    assert!(!ok(0).replayed && ok(1).replayed && ok(1).value == ok(0).value);
    assert_eq!(ok(2).version, 1);
    assert_eq!(
        (ok(3).value, ok(3).version),
        (json!({"id": "x", "n": 1, "m": 2}), 2)
    );
    assert!(matches!(results[4], Err(StoreError::RequestIdReused)));
    assert!(matches!(results[5], Err(StoreError::NotFound)));
    assert_eq!((ok(6).version, ok(6).replayed), (1, false));
    assert_eq!((ok(7).value, ok(7).version), (json!({}), 3));
    assert_eq!(ok(8).version, 1, "created anew after its delete");
    assert_eq!(ok(10).value, json!({"n": 9, "id": 3}), "2 was taken");
    assert_eq!(
        (ok(11).value, ok(11).version),
        (json!({"id": "x", "again": true, "late": 1}), 2)
    );
    // Stored as the last write left each model, in the order they were (re)inserted.
    let stored = store
        .read_collection("", c, Query::default())
        .await
        .unwrap();
    let ids: Vec<_> = stored.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(
        ids,
        [json!(1), json!("missing"), json!("x"), json!(2), json!(3)]
    );
    let x = store.read_model("", c, "x").await.unwrap();
    assert_eq!((x.value, x.version), (ok(11).value, 2));
    // Each recorded request answers its record afterwards.
    let again = store
        .write(write(patch(c, "x", json!({"m": 2})), Some("c"), None))
        .await
        .unwrap();
    assert_eq!(
        (again.value, again.version, again.replayed),
        (ok(3).value, 2, true)
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn conditional_writes_apply_only_on_the_version_named() {
    let url = shared_postgres().create_database("ifversion");
    let store = store_on(&url).await;
    let c = "/api/v";
    let made = store
        .write(write(create(c, json!({"n": 1})), None, Some(0)))
        .await
        .unwrap();
    assert_eq!(made.version, 1);
    let patched = store
        .write(write(patch(c, "1", json!({"n": 2})), None, Some(1)))
        .await
        .unwrap();
    assert_eq!(patched.version, 2);
    // Stale: a conflict carrying what is stored, and nothing written.
    let stale = || write(patch(c, "1", json!({"n": 3})), Some("stale"), Some(1));
    let conflict = store.write(stale()).await;
    let expect = json!({"n": 2, "id": 1});
    assert!(
        matches!(&conflict, Err(StoreError::Conflict { current, version: 2 }) if *current == expect),
        "{conflict:?}"
    );
    let stored = store.read_model("", c, "1").await.unwrap();
    assert_eq!((stored.value, stored.version), (expect.clone(), 2));
    // A replay answers the same conflict, even after the model moved on.
    store
        .write(write(patch(c, "1", json!({"n": 4})), None, None))
        .await
        .unwrap();
    let replay = store.write(stale()).await;
    assert!(
        matches!(&replay, Err(StoreError::Conflict { current, version: 2 }) if *current == expect),
        "{replay:?}"
    );
    // 0 names "absent": refused over a model, applied where there is none.
    let over = store
        .write(write(update(c, "1", json!({"id": 1})), None, Some(0)))
        .await;
    assert!(
        matches!(over, Err(StoreError::Conflict { version: 3, .. })),
        "{over:?}"
    );
    let fresh = store
        .write(write(update(c, "9", json!({"id": 9})), None, Some(0)))
        .await
        .unwrap();
    assert_eq!(fresh.version, 1);
    let gone = store.write(write(delete(c, "9"), None, Some(4))).await;
    assert!(
        matches!(gone, Err(StoreError::Conflict { version: 1, .. })),
        "{gone:?}"
    );
    assert_eq!(store.read_model("", c, "9").await.unwrap().version, 1);
    store.close().await.unwrap();
}

/// A frozen node's session: its idle transaction is ended by the server after 3 s (a store's
/// own writers set 1.5 s; longer here, so that the check that other collections go on
/// meanwhile has time to spare on a slow machine).
const FROZEN_NODE_OPTIONS: &str = "-c idle_in_transaction_session_timeout=3000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_transaction_holds_up_only_its_own_rows_and_only_until_it_is_ended() {
    let url = shared_postgres().create_database("frozen");
    let store = store_on(&url).await;
    let c = "/api/held";
    store
        .write(write(create(c, json!({"n": 0})), None, None))
        .await
        .unwrap();
    // Another node's connection takes the locks a batch of creates and patches in `c` takes,
    // then freezes in the middle of its transaction.
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.options(FROZEN_NODE_OPTIONS);
    let (frozen, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    let driver = tokio::spawn(connection);
    frozen
        .batch_execute(&format!(
            "BEGIN;
             SELECT * FROM bss_sequences WHERE collection = '{c}' FOR UPDATE;
             SELECT * FROM bss_documents WHERE collection = '{c}' FOR UPDATE;"
        ))
        .await
        .unwrap();
    let blocked = tokio::spawn({
        let store = store.clone();
        async move {
            let made = store.write(write(create(c, json!({"n": 1})), None, None));
            let patched = store.write(write(patch(c, "1", json!({"p": 1})), None, None));
            (made.await, patched.await)
        }
    });
    // Writes to other collections go on meanwhile.
    let other = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0..20 {
            store
                .write(write(create("/api/free", json!({"i": i})), None, None))
                .await
                .unwrap();
        }
    })
    .await;
    assert!(other.is_ok(), "writes to another collection were held up");
    assert!(
        !blocked.is_finished(),
        "the writes to the frozen rows waited for them"
    );
    // The server ends the frozen transaction; the held writes then go through, once.
    let (made, patched) = tokio::time::timeout(Duration::from_secs(30), blocked)
        .await
        .expect("held for about the idle timeout, not for ever")
        .unwrap();
    assert_eq!(made.unwrap().value, json!({"n": 1, "id": 2}));
    assert_eq!(patched.unwrap().version, 2);
    assert!(
        frozen.simple_query("SELECT 1").await.is_err(),
        "the frozen session was ended"
    );
    driver.abort();
    assert_eq!(
        store
            .read_collection("", c, Query::default())
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await.unwrap();
}

/// Each node hands out create ids from ranges it reserved; ids stay unique across nodes and
/// skip the ids clients chose themselves, also inside another node's range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ids_stay_unique_across_nodes_and_skip_ids_clients_chose() {
    let url = shared_postgres().create_database("ids");
    let (a, b) = (store_on(&url).await, store_on(&url).await);
    let c = "/api/ranges";
    let first = |applied: Applied| applied.value["id"].as_i64().expect("an integer id");
    let on_a = first(
        a.write(write(create(c, json!({})), None, None))
            .await
            .unwrap(),
    );
    let on_b = first(
        b.write(write(create(c, json!({})), None, None))
            .await
            .unwrap(),
    );
    // Clients take the next id of each node's range, through the other node.
    let chosen = [(on_a + 1).to_string(), (on_b + 1).to_string()];
    for (node, id) in [(&b, &chosen[0]), (&a, &chosen[1])] {
        node.write(write(update(c, id, json!({"chosen": true})), None, None))
            .await
            .unwrap();
    }
    // Both nodes create at once, many writes in flight on each.
    let creates = |node: &Arc<dyn Store>| {
        (0..40)
            .map(|i| node.write(write(create(c, json!({"i": i})), None, None)))
            .collect::<Vec<_>>()
    };
    let (made_a, made_b) = futures_util::future::join(
        futures_util::future::join_all(creates(&a)),
        futures_util::future::join_all(creates(&b)),
    )
    .await;
    let mut ids: Vec<String> = vec![on_a.to_string(), on_b.to_string()];
    for made in made_a.into_iter().chain(made_b) {
        ids.push(first(made.unwrap()).to_string());
    }
    for id in &chosen {
        assert!(
            !ids.contains(id),
            "id {id}, chosen by a client, was handed out"
        );
    }
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an id was handed out twice: {ids:?}"
    );
    let stored = a.read_collection("", c, Query::default()).await.unwrap();
    assert_eq!(stored.len(), ids.len() + chosen.len());
    for id in &chosen {
        let model = a.read_model("", c, id).await.unwrap();
        assert_eq!(
            model.value["chosen"],
            json!(true),
            "model {id} was overwritten"
        );
    }
    a.close().await.unwrap();
    b.close().await.unwrap();
}
