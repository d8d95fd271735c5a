//! The store on its own, one suite on both backends (SQLite, PostgreSQL; the SQLite upgrade at
//! the end is SQLite's own): many writes arriving together are committed in shared
//! transactions, and one failing write in such a batch leaves no trace and harms no other;
//! owners and request-id scopes keep clients apart.

mod services;

use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
use backbone_socket_sync_server::store::sqlite::SqliteStore;
use backbone_socket_sync_server::store::{Query, RequestId, Store, StoreError};
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
                        .create(
                            "",
                            "/api/t",
                            object(json!({"i": i})),
                            Some(RequestId::new("", format!("c{i}"))),
                        )
                        .await
                }
                // Missing model: 404, and its requestId must not be recorded.
                1 => {
                    store
                        .patch(
                            "",
                            "/api/t",
                            "missing",
                            object(json!({"i": i})),
                            Some(RequestId::new("", format!("p{i}"))),
                        )
                        .await
                }
                // Too large for the 100-byte bound: 413.
                _ => {
                    store
                        .create(
                            "",
                            "/api/t",
                            object(json!({"big": "x".repeat(200)})),
                            Some(RequestId::new("", format!("b{i}"))),
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
        .read_collection("", "/api/t", Query::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    assert!(all
        .iter()
        .all(|m| m.get("big").is_none() && m["i"].as_i64().unwrap() % 3 == 0));
    assert!(matches!(
        store.read_model("", "/api/t", "missing").await,
        Err(StoreError::NotFound)
    ));

    // The failed writes' requestIds were not recorded: the same id can succeed now.
    store
        .update(
            "",
            "/api/t",
            "missing",
            object(json!({"id": "missing"})),
            None,
        )
        .await
        .unwrap();
    let patched = store
        .patch(
            "",
            "/api/t",
            "missing",
            object(json!({"ok": true})),
            Some(RequestId::new("", "p1")),
        )
        .await
        .unwrap();
    assert!(!patched.replayed);
    let replay = store
        .patch(
            "",
            "/api/t",
            "missing",
            object(json!({"ok": true})),
            Some(RequestId::new("", "p1")),
        )
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.value, json!({"id": "missing", "ok": true}));
    // The same id for another body is refused, and nothing is applied.
    let reused = store
        .patch(
            "",
            "/api/t",
            "missing",
            object(json!({"ok": false})),
            Some(RequestId::new("", "p1")),
        )
        .await;
    assert!(
        matches!(reused, Err(StoreError::RequestIdReused)),
        "{reused:?}"
    );
    assert_eq!(
        store
            .read_model("", "/api/t", "missing")
            .await
            .unwrap()
            .value["ok"],
        json!(true)
    );

    store.close().await.unwrap();
    assert!(
        store
            .create("", "/api/t", object(json!({})), None)
            .await
            .is_err(),
        "closed store refuses writes"
    );
}

on_both_backends!(
    owners_have_their_own_collections_and_ids,
    flavor = "current_thread"
);

async fn owners_have_their_own_collections_and_ids(backend: Backend) {
    let db = open_store(backend, 1000).await;
    let store = &db.store;
    let alice = store
        .create("alice", "/api/todos", object(json!({"t": "a"})), None)
        .await
        .unwrap();
    let bob = store
        .create("bob", "/api/todos", object(json!({"t": "b"})), None)
        .await
        .unwrap();
    assert_eq!(alice.value, json!({"id": 1, "t": "a"}));
    assert_eq!(bob.value, json!({"id": 1, "t": "b"}), "ids are per owner");
    let read = |owner: &'static str| store.read_collection(owner, "/api/todos", Query::default());
    assert_eq!(read("alice").await.unwrap(), vec![alice.value.clone()]);
    assert_eq!(read("bob").await.unwrap(), vec![bob.value.clone()]);
    assert_eq!(read("").await.unwrap(), Vec::<Value>::new());
    // Another owner's model does not exist for carol, whatever she tries.
    fn missing<T>(r: Result<T, StoreError>) -> bool {
        matches!(r, Err(StoreError::NotFound))
    }
    assert!(missing(store.read_model("carol", "/api/todos", "1").await));
    assert!(missing(
        store
            .patch("carol", "/api/todos", "1", object(json!({"t": "x"})), None)
            .await
            .map(|_| ())
    ));
    assert!(missing(
        store
            .delete("carol", "/api/todos", "1", None)
            .await
            .map(|_| ())
    ));
    store.delete("bob", "/api/todos", "1", None).await.unwrap();
    assert_eq!(
        store
            .read_model("alice", "/api/todos", "1")
            .await
            .unwrap()
            .value,
        alice.value
    );
    store.close().await.unwrap();
}

on_both_backends!(
    request_ids_are_scoped_and_bound_to_their_request,
    flavor = "current_thread"
);

async fn request_ids_are_scoped_and_bound_to_their_request(backend: Backend) {
    let db = open_store(backend, 1000).await;
    let store = &db.store;
    let id = |scope: &str| Some(RequestId::new(scope, "r1"));
    let first = store
        .create("", "/api/n", object(json!({"n": 1})), id("client:a"))
        .await
        .unwrap();
    // Another scope's identical id is another request: applied, never answered with a's result.
    let other = store
        .create("", "/api/n", object(json!({"n": 1})), id("client:b"))
        .await
        .unwrap();
    assert!(!other.replayed);
    assert_eq!(other.value["id"], json!(2));
    // In its own scope: the same request replays, a different one is refused.
    let again = store
        .create("", "/api/n", object(json!({"n": 1})), id("client:a"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, first.value);
    for (owner, endpoint, body) in [
        ("", "/api/n", json!({"n": 2})),
        ("", "/api/m", json!({"n": 1})),
        ("x", "/api/n", json!({"n": 1})),
    ] {
        let reused = store
            .create(owner, endpoint, object(body), id("client:a"))
            .await;
        assert!(
            matches!(reused, Err(StoreError::RequestIdReused)),
            "{reused:?}"
        );
    }
    let reused = store.delete("", "/api/n", "1", id("client:a")).await;
    assert!(matches!(reused, Err(StoreError::RequestIdReused)));
    assert_eq!(
        store
            .read_collection("", "/api/n", Query::default())
            .await
            .unwrap()
            .len(),
        2
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_database_from_before_owners_is_upgraded_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite3");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE documents (collection TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                 PRIMARY KEY (collection, id));
             CREATE TABLE sequences (collection TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
             CREATE TABLE requests (request_id TEXT PRIMARY KEY, method TEXT NOT NULL,
                 endpoint TEXT NOT NULL, result TEXT NOT NULL, created_at INTEGER NOT NULL);
             INSERT INTO documents VALUES ('/api/t', '2', '{\"id\":2,\"n\":\"second id, first row\"}');
             INSERT INTO documents VALUES ('/api/t', '1', '{\"id\":1,\"n\":\"first id, second row\"}');
             INSERT INTO sequences VALUES ('/api/t', 2);
             INSERT INTO requests VALUES ('old', 'create', '/api/t', '{}', 0);",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, 1000, DEFAULT_REQUEST_RETENTION).unwrap();
    let all = store
        .read_collection("", "/api/t", Query::default())
        .await
        .unwrap();
    assert_eq!(all[0]["id"], json!(2), "row order kept: {all:?}");
    assert_eq!(all.len(), 2);
    let next = store
        .create(
            "",
            "/api/t",
            object(json!({})),
            Some(RequestId::new("", "old")),
        )
        .await
        .unwrap();
    assert_eq!(next.value["id"], json!(3), "the sequence carried over");
    assert!(!next.replayed, "old request records are dropped");
    store.close().await.unwrap();
    // Opening again is a no-op.
    let store = SqliteStore::open(&path, 1000, DEFAULT_REQUEST_RETENTION).unwrap();
    assert_eq!(
        store
            .read_collection("", "/api/t", Query::default())
            .await
            .unwrap()
            .len(),
        3
    );
    store.close().await.unwrap();
}
