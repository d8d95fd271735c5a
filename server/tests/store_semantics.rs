//! The `Store` contract, one suite on both backends (SQLite, PostgreSQL): ids per collection,
//! document order, paging and filters, patch merging, PUT creating, request ids recorded and
//! replayed, and the races several nodes create on one database (the same request id at once,
//! patches of one model at once).

mod services;

use backbone_socket_sync_server::store::{Query, RequestId, StoreError};
use serde_json::{json, Value};
use services::{open_store, Backend};

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

on_both_backends!(
    the_store_contract,
    flavor = "multi_thread",
    worker_threads = 2
);

async fn the_store_contract(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    // Ids are per collection.
    for i in 0..3 {
        let a = store
            .create("", "/api/a", object(json!({"i": i})), None)
            .await;
        assert_eq!(a.unwrap().value["id"], json!(i + 1));
    }
    let b = store.create("", "/api/b", object(json!({})), None).await;
    assert_eq!(b.unwrap().value, json!({"id": 1}));

    // Documents come back as written (nested values, unicode, floats), in insertion order,
    // and an update keeps a model's place.
    let odd = json!({"id": 2, "s": "é\u{1F600}\"\\", "f": 0.1, "n": [1, {"x": null}], "b": false});
    store
        .update("", "/api/a", "2", object(odd.clone()), None)
        .await
        .unwrap();
    assert_eq!(
        store.read_model("", "/api/a", "2").await.unwrap().value,
        odd
    );
    let all = store
        .read_collection("", "/api/a", Query::default())
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)]);

    // PUT of a missing model creates it; create skips the id a client chose (which never
    // moves the sequence).
    store
        .update("", "/api/a", "10", object(json!({"id": 10})), None)
        .await
        .unwrap();
    let next = store.create("", "/api/a", object(json!({})), None).await;
    assert_eq!(next.unwrap().value["id"], json!(4));
    store
        .update("", "/api/a", "5", object(json!({"id": 5})), None)
        .await
        .unwrap();
    let skipped = store.create("", "/api/a", object(json!({})), None).await;
    assert_eq!(skipped.unwrap().value["id"], json!(6));
    store
        .update(
            "",
            "/api/a",
            "zz",
            object(json!({"id": "zz", "i": 9})),
            None,
        )
        .await
        .unwrap();

    // Paging, filters, and paging after filters.
    let page = Query {
        limit: Some(2),
        offset: 1,
        ..Query::default()
    };
    let page = store.read_collection("", "/api/a", page).await.unwrap();
    assert_eq!(page, vec![odd.clone(), json!({"id": 3, "i": 2})]);
    let mut filtered = Query {
        limit: Some(1),
        offset: 1,
        ..Query::default()
    };
    filtered.filters.insert("i".into(), json!(9));
    store
        .create("", "/api/a", object(json!({"i": 9})), None)
        .await
        .unwrap();
    let found = store.read_collection("", "/api/a", filtered).await.unwrap();
    assert_eq!(found, vec![json!({"id": 7, "i": 9})]);

    // Patch merges top-level keys and never changes the id.
    let patched = store
        .patch(
            "",
            "/api/a",
            "3",
            object(json!({"id": 99, "x": {"y": 1}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(patched.value, json!({"id": 3, "i": 2, "x": {"y": 1}}));
    assert!(matches!(
        store
            .patch("", "/api/a", "404", object(json!({})), None)
            .await,
        Err(StoreError::NotFound)
    ));

    // Delete, then 404.
    store.delete("", "/api/a", "1", None).await.unwrap();
    assert!(matches!(
        store.delete("", "/api/a", "1", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.read_model("", "/api/a", "1").await,
        Err(StoreError::NotFound)
    ));

    // A request id answers a repeat of its request with the first result, and refuses another
    // body, method or endpoint.
    let first = store
        .create(
            "",
            "/api/r",
            object(json!({"v": 1})),
            Some(RequestId::new("", "rid")),
        )
        .await
        .unwrap();
    assert!(!first.replayed);
    let again = store
        .create(
            "",
            "/api/r",
            object(json!({"v": 1})),
            Some(RequestId::new("", "rid")),
        )
        .await
        .unwrap();
    assert_eq!(again.value, first.value);
    assert!(again.replayed);
    assert!(matches!(
        store
            .create(
                "",
                "/api/r",
                object(json!({"v": 2})),
                Some(RequestId::new("", "rid"))
            )
            .await,
        Err(StoreError::RequestIdReused)
    ));
    assert!(matches!(
        store
            .create(
                "",
                "/api/other",
                object(json!({})),
                Some(RequestId::new("", "rid"))
            )
            .await,
        Err(StoreError::RequestIdReused)
    ));
    assert!(matches!(
        store
            .delete("", "/api/r", "1", Some(RequestId::new("", "rid")))
            .await,
        Err(StoreError::RequestIdReused)
    ));
    let rows = store
        .read_collection("", "/api/r", Query::default())
        .await
        .unwrap();
    assert_eq!(rows, vec![json!({"id": 1, "v": 1})]);
    db.store.close().await.unwrap();
}

on_both_backends!(
    races_between_nodes_are_serialised,
    flavor = "multi_thread",
    worker_threads = 2
);

async fn races_between_nodes_are_serialised(backend: Backend) {
    const COPIES: usize = 24;
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    store
        .update("", "/api/m", "1", object(json!({"id": 1})), None)
        .await
        .unwrap();
    // The same request id from many connections at once: applied once, every copy answered
    // with the same result. Patches of distinct keys of one model at once: none lost.
    let mut tasks = Vec::new();
    for i in 0..COPIES {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let create = store.create(
                "",
                "/api/once",
                object(json!({"copy": "same"})),
                Some(RequestId::new("", "same")),
            );
            let patch = store.patch(
                "",
                "/api/m",
                "1",
                object(json!({ format!("k{i}"): i })),
                Some(RequestId::new("", format!("patch-{i}"))),
            );
            let (create, patch) = tokio::join!(create, patch);
            patch.unwrap();
            create.unwrap()
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.value == results[0].value));
    let once = store
        .read_collection("", "/api/once", Query::default())
        .await
        .unwrap();
    assert_eq!(once, vec![results[0].value.clone()]);
    let model = store.read_model("", "/api/m", "1").await.unwrap().value;
    for i in 0..COPIES {
        assert_eq!(model[format!("k{i}")], json!(i), "{model}");
    }
    db.store.close().await.unwrap();
}
