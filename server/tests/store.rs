//! The store on its own, one suite on both backends (SQLite, PostgreSQL): many writes
//! arriving together (committed in shared transactions by SQLite, in concurrent ones by
//! PostgreSQL), where one failing write leaves no trace and harms no other.

mod services;

use backbone_socket_sync_server::store::{Query, StoreError};
use serde_json::{json, Value};
use services::{open_store, Backend};

fn object(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

on_both_backends!(
    failing_writes_in_a_batch_leave_no_trace,
    flavor = "multi_thread",
    worker_threads = 2
);

async fn failing_writes_in_a_batch_leave_no_trace(backend: Backend) {
    let db = open_store(backend, 100).await;
    let store = &db.store;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => {
                    store
                        .create("/api/t", object(json!({"i": i})), Some(format!("c{i}")))
                        .await
                }
                // Missing model: 404, and its requestId must not be recorded.
                1 => {
                    store
                        .patch(
                            "/api/t",
                            "missing",
                            object(json!({"i": i})),
                            Some(format!("p{i}")),
                        )
                        .await
                }
                // Too large for the 100-byte bound: 413.
                _ => {
                    store
                        .create(
                            "/api/t",
                            object(json!({"big": "x".repeat(200)})),
                            Some(format!("b{i}")),
                        )
                        .await
                }
            }
        }));
    }
    let mut created = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match (i % 3, task.await.unwrap()) {
            (0, Ok(applied)) => created.push(applied.value["id"].as_i64().unwrap()),
            (1, Err(StoreError::NotFound)) | (2, Err(StoreError::TooLarge(100))) => {}
            (kind, other) => panic!("write {i} (kind {kind}): {other:?}"),
        }
    }
    created.sort_unstable();
    // Ids are consecutive: a refused create consumed none.
    assert_eq!(created, (1..=100).collect::<Vec<_>>());
    let all = store
        .read_collection("/api/t", Query::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    assert!(all
        .iter()
        .all(|m| m.get("big").is_none() && m["i"].as_i64().unwrap() % 3 == 0));
    assert!(matches!(
        store.read_model("/api/t", "missing").await,
        Err(StoreError::NotFound)
    ));

    // The failed writes' requestIds were not recorded: the same id can succeed now.
    store
        .update("/api/t", "missing", object(json!({"id": "missing"})), None)
        .await
        .unwrap();
    let patched = store
        .patch(
            "/api/t",
            "missing",
            object(json!({"ok": true})),
            Some("p1".into()),
        )
        .await
        .unwrap();
    assert!(!patched.replayed);
    let replay = store
        .patch(
            "/api/t",
            "missing",
            object(json!({"ok": false})),
            Some("p1".into()),
        )
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.value, json!({"id": "missing", "ok": true}));

    store.close().await.unwrap();
    assert!(
        store
            .create("/api/t", object(json!({})), None)
            .await
            .is_err(),
        "closed store refuses writes"
    );
}
