//! The store's read paths under concurrency, one suite on both backends. SQLite: collection
//! reads queued to the reader threads (more at once than the threads take in one go, so the
//! queue must wake readers and drain in several runs) and model lookups run in place;
//! PostgreSQL: more reads at once than the pool has connections. Both must see every write
//! whose reply came before them, and refuse reads once the store is closed.

mod services;

use backbone_socket_sync_server::store::{Query, RequestId, StoreError};
use serde_json::{json, Value};
use services::{open_store, Backend};

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

on_both_backends!(
    many_concurrent_reads_see_every_acknowledged_write,
    flavor = "multi_thread",
    worker_threads = 2
);

async fn many_concurrent_reads_see_every_acknowledged_write(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;

    // Writers and readers interleaved: each task creates a model, then (after the reply, so
    // after COMMIT) reads it back in place and reads the collection through the reader queue.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let created = store
                .create(
                    "",
                    "/api/r",
                    object(json!({"i": i})),
                    Some(RequestId::new("", format!("r{i}"))),
                )
                .await
                .unwrap()
                .value;
            let id = created["id"].as_i64().unwrap().to_string();
            let model = store.read_model("", "/api/r", &id).await.unwrap();
            assert_eq!(model, created);
            let mut query = Query::default();
            query.filters.insert("i".into(), json!(i));
            let found = store.read_collection("", "/api/r", query).await.unwrap();
            assert_eq!(found, vec![created]);
            store
                .read_collection("", "/api/r", Query::default())
                .await
                .unwrap()
                .len()
        }));
    }
    for task in tasks {
        let seen = task.await.unwrap();
        assert!((1..=400).contains(&seen), "{seen}");
    }

    // A burst of collection reads larger than one take of the queue (64): every one answered,
    // each with its own page.
    let burst: Vec<_> = (0..300)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let query = Query {
                    limit: Some(5),
                    offset: n % 400,
                    ..Query::default()
                };
                store.read_collection("", "/api/r", query).await.unwrap()
            })
        })
        .collect();
    for (n, task) in burst.into_iter().enumerate() {
        let page = task.await.unwrap();
        let want = 5.min(400 - n % 400);
        assert_eq!(page.len(), want, "page at offset {n}");
        assert_eq!(page[0]["id"], json!(n % 400 + 1));
    }

    assert!(matches!(
        store.read_model("", "/api/r", "401").await,
        Err(StoreError::NotFound)
    ));

    store.close().await.unwrap();
    assert!(
        store.read_model("", "/api/r", "1").await.is_err(),
        "closed store refuses model reads"
    );
    assert!(
        store
            .read_collection("", "/api/r", Query::default())
            .await
            .is_err(),
        "closed store refuses collection reads"
    );
}

on_both_backends!(
    reads_work_on_a_single_threaded_runtime,
    flavor = "current_thread"
);

async fn reads_work_on_a_single_threaded_runtime(backend: Backend) {
    // The reader threads reply through oneshot channels, so a runtime with one thread (whose
    // only thread must not block waiting for them) still gets its answers.
    let db = open_store(backend, 1000).await;
    let store = &db.store;
    let a = store
        .create("", "/api/s", object(json!({"a": 1})), None)
        .await
        .unwrap();
    let (one, all) = tokio::join!(
        store.read_model("", "/api/s", "1"),
        store.read_collection("", "/api/s", Query::default())
    );
    assert_eq!(one.unwrap(), a.value);
    assert_eq!(all.unwrap(), vec![a.value]);
    store.close().await.unwrap();
}
