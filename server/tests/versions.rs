//! Document versions in the store, on both backends: 1 at create and one more per write, a
//! conditional write ([`Write::if_version`]) applied only at its version and otherwise refused
//! with the stored document and nothing written, a replay of a refused request answering the
//! same conflict, and versions kept across a reopening. SQLite's own: the upgrade of a
//! database from before versions, and its change feed (commit order, versions, `seq`).

mod services;

use std::path::Path;
use std::sync::Arc;

use backbone_socket_sync_server::store::change::{Change, ChangeFeed, FeedItem, Origin};
use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
use backbone_socket_sync_server::store::open::open;
use backbone_socket_sync_server::store::sqlite::SqliteStore;
use backbone_socket_sync_server::store::{
    Applied, Object, RequestId, Store, StoreError, Write, WriteOp,
};
use serde_json::{json, Value};
use services::{open_store, shared_postgres, Backend};

fn object(value: Value) -> Object {
    value.as_object().unwrap().clone()
}

/// A patch of `/api/t/<id>` setting `item`, under `request_id`, applied only at `if_version`.
fn patch(id: &str, item: Value, if_version: Option<i64>, request_id: Option<&str>) -> Write {
    Write {
        owner: String::new(),
        op: WriteOp::Patch {
            collection: "/api/t".into(),
            id: id.into(),
            item: object(item),
        },
        request_id: request_id.map(|id| RequestId::new("", id)),
        if_version,
    }
}

/// Asserts that `result` is a conflict with `current` stored at `version`.
fn assert_conflict(result: Result<Applied, StoreError>, current: Value, version: i64) {
    match result {
        Err(StoreError::Conflict {
            current: found,
            version: at,
        }) => assert_eq!((found, at), (current, version)),
        other => panic!("expected a conflict at version {version}, got {other:?}"),
    }
}

/// The model `/api/t/<id>` and its version.
async fn stored(store: &Arc<dyn Store>, id: &str) -> (Value, i64) {
    let stored = store.read_model("", "/api/t", id).await.unwrap();
    (stored.value, stored.version)
}

/// Creates `/api/t/1` as `{"n": 0}` and patches it to `{"n": 1}`: version 2.
async fn model_at_version_two(store: &Arc<dyn Store>) {
    store
        .create("", "/api/t", object(json!({"n": 0})), None)
        .await
        .unwrap();
    store
        .write(patch("1", json!({"n": 1}), None, None))
        .await
        .unwrap();
}

on_both_backends!(versions_count_every_write, flavor = "current_thread");

async fn versions_count_every_write(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    let created = store
        .create("", "/api/t", object(json!({"n": 0})), None)
        .await
        .unwrap();
    assert_eq!(
        (created.value.clone(), created.version),
        (json!({"id": 1, "n": 0}), 1)
    );
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 0}), 1));
    let patched = store.write(patch("1", json!({"n": 1}), None, None)).await;
    assert_eq!(patched.unwrap().version, 2);
    let updated = store
        .update("", "/api/t", "1", object(json!({"id": 1, "n": 2})), None)
        .await
        .unwrap();
    assert_eq!(updated.version, 3);
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 2}), 3));
    // A PUT of a new id creates it at version 1.
    let put = store
        .update("", "/api/t", "x", object(json!({"id": "x"})), None)
        .await
        .unwrap();
    assert_eq!(put.version, 1);
    let deleted = store.delete("", "/api/t", "1", None).await.unwrap();
    assert_eq!((deleted.value, deleted.version), (json!({}), 4));
    store.close().await.unwrap();
}

on_both_backends!(
    a_stale_condition_is_refused_and_writes_nothing,
    flavor = "current_thread"
);

async fn a_stale_condition_is_refused_and_writes_nothing(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    model_at_version_two(store).await;
    // Stale (1, the model is at 2): refused with what is stored, nothing written.
    let stale = store
        .write(patch("1", json!({"n": 99}), Some(1), None))
        .await;
    assert_conflict(stale, json!({"id": 1, "n": 1}), 2);
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 1}), 2));
    // "Only if absent" (0) of a model that exists, and a delete at a stale version.
    let put = Write {
        owner: String::new(),
        op: WriteOp::Update {
            collection: "/api/t".into(),
            id: "1".into(),
            item: object(json!({"id": 1})),
        },
        request_id: None,
        if_version: Some(0),
    };
    assert_conflict(store.write(put).await, json!({"id": 1, "n": 1}), 2);
    let delete = Write {
        owner: String::new(),
        op: WriteOp::Delete {
            collection: "/api/t".into(),
            id: "1".into(),
        },
        request_id: None,
        if_version: Some(3),
    };
    assert_conflict(store.write(delete).await, json!({"id": 1, "n": 1}), 2);
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 1}), 2));
    // A condition on a model that does not exist: a conflict naming none.
    let gone = store
        .write(patch("7", json!({"n": 1}), Some(1), None))
        .await;
    assert_conflict(gone, Value::Null, 0);
    // The matching version applies, one more.
    let applied = store
        .write(patch("1", json!({"n": 2}), Some(2), None))
        .await
        .unwrap();
    assert_eq!(
        (applied.value, applied.version),
        (json!({"id": 1, "n": 2}), 3)
    );
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 2}), 3));
    store.close().await.unwrap();
}

on_both_backends!(
    a_replayed_conflict_answers_the_same_conflict,
    flavor = "current_thread"
);

async fn a_replayed_conflict_answers_the_same_conflict(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    model_at_version_two(store).await;
    let refused = patch("1", json!({"n": 9}), Some(1), Some("cond-1"));
    assert_conflict(
        store.write(refused.clone()).await,
        json!({"id": 1, "n": 1}),
        2,
    );
    // The model moves on; a retry of the refused request still answers the conflict it met
    // the first time, with the document as it was then, and writes nothing.
    store
        .write(patch("1", json!({"n": 2}), None, None))
        .await
        .unwrap();
    assert_conflict(store.write(refused).await, json!({"id": 1, "n": 1}), 2);
    assert_eq!(stored(store, "1").await, (json!({"id": 1, "n": 2}), 3));
    // The same request id for another request (another condition) is refused as reused.
    let other = patch("1", json!({"n": 9}), Some(3), Some("cond-1"));
    assert!(matches!(
        store.write(other).await,
        Err(StoreError::RequestIdReused)
    ));
    // An applied conditional write replays its answer, version included.
    let applied = patch("1", json!({"n": 4}), Some(3), Some("cond-2"));
    let first = store.write(applied.clone()).await.unwrap();
    let again = store.write(applied).await.unwrap();
    assert_eq!((first.version, again.version, again.replayed), (4, 4, true));
    assert_eq!(first.value, again.value);
    // Other refusals leave no record: a missing model's patch may be retried once it exists.
    let missing = patch("2", json!({"n": 1}), None, Some("missing-1"));
    assert!(matches!(
        store.write(missing.clone()).await,
        Err(StoreError::NotFound)
    ));
    store
        .update("", "/api/t", "2", object(json!({"id": 2})), None)
        .await
        .unwrap();
    assert_eq!(store.write(missing).await.unwrap().version, 2);
    store.close().await.unwrap();
}

on_both_backends!(versions_survive_reopening, flavor = "current_thread");

async fn versions_survive_reopening(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = match backend {
        Backend::Sqlite => dir.path().join("v.sqlite3"),
        Backend::Postgres => shared_postgres().create_database("versions").into(),
    };
    let store = open(Path::new(&db), 10_000, DEFAULT_REQUEST_RETENTION)
        .await
        .unwrap();
    store
        .create("", "/api/t", object(json!({"n": 0})), None)
        .await
        .unwrap();
    let refused = patch("1", json!({"n": 9}), Some(5), Some("before-reopen"));
    for n in 1..=3 {
        store
            .write(patch("1", json!({ "n": n }), None, None))
            .await
            .unwrap();
    }
    assert_conflict(
        store.write(refused.clone()).await,
        json!({"id": 1, "n": 3}),
        4,
    );
    store.close().await.unwrap();
    drop(store);

    let store = open(Path::new(&db), 10_000, DEFAULT_REQUEST_RETENTION)
        .await
        .unwrap();
    assert_eq!(stored(&store, "1").await, (json!({"id": 1, "n": 3}), 4));
    assert_conflict(store.write(refused).await, json!({"id": 1, "n": 3}), 4);
    let next = store
        .write(patch("1", json!({"n": 4}), Some(4), None))
        .await
        .unwrap();
    assert_eq!(next.version, 5);
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_database_from_before_versions_gets_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite3");
    {
        // The schema of user_version 1: owners, request records without versions.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE documents (owner TEXT NOT NULL, collection TEXT NOT NULL,
                 id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (owner, collection, id));
             CREATE TABLE sequences (owner TEXT NOT NULL, collection TEXT NOT NULL,
                 last_id INTEGER NOT NULL, PRIMARY KEY (owner, collection));
             CREATE TABLE requests (scope TEXT NOT NULL, request_id TEXT NOT NULL,
                 fingerprint TEXT NOT NULL, result TEXT NOT NULL, created_at INTEGER NOT NULL,
                 PRIMARY KEY (scope, request_id));
             INSERT INTO documents VALUES ('', '/api/t', '1', '{\"id\":1,\"n\":1}');
             INSERT INTO sequences VALUES ('', '/api/t', 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        let old = patch("1", json!({"n": 1}), None, Some("old"));
        conn.execute(
            "INSERT INTO requests VALUES ('', 'old', ?1, '{\"id\":1,\"n\":1}', ?2)",
            rusqlite::params![old.fingerprint(), i64::MAX / 2],
        )
        .unwrap();
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, 10_000, DEFAULT_REQUEST_RETENTION).unwrap());
    // Documents that exist are at version 1; old records replay as they answered (version 0).
    assert_eq!(stored(&store, "1").await, (json!({"id": 1, "n": 1}), 1));
    let old = store
        .write(patch("1", json!({"n": 1}), None, Some("old")))
        .await
        .unwrap();
    assert_eq!((old.replayed, old.version), (true, 0));
    let next = store
        .write(patch("1", json!({"n": 2}), Some(1), None))
        .await
        .unwrap();
    assert_eq!(next.version, 2);
    store.close().await.unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        version, 2,
        "marked, so a server from before versions refuses it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_changes_come_in_commit_order_with_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &dir.path().join("f.sqlite3"),
            10_000,
            DEFAULT_REQUEST_RETENTION,
        )
        .unwrap(),
    );
    let mut feed = store.changes().expect("a feed");
    assert!(store.changes().is_none(), "taken once");
    assert!(store.changes_are_local());
    store
        .create("", "/api/t", object(json!({"n": 0})), None)
        .await
        .unwrap();
    // Many patches at once from many tasks: whatever order they commit in, the feed has it.
    let origin = Origin {
        ns: "/".into(),
        sid: "abc".into(),
    };
    let mut tasks = Vec::new();
    for n in 1..=200 {
        let store = store.clone();
        let origin = (n % 2 == 0).then(|| origin.clone());
        tasks.push(tokio::spawn(async move {
            store
                .write_from(patch("1", json!({ "n": n }), None, None), origin)
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // Refused writes are not in the feed; a replay is not in it again.
    let stale = store
        .write(patch("1", json!({"n": -1}), Some(1), Some("r")))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict { .. })));
    assert!(store
        .write(patch("1", json!({"n": -1}), Some(1), Some("r")))
        .await
        .is_err());
    let before_delete = stored(&store, "1").await;
    store.delete("", "/api/t", "1", None).await.unwrap();

    let created = next_change(&mut feed).await;
    assert_eq!(
        (
            created.seq,
            created.method.as_str(),
            created.id.as_str(),
            created.version
        ),
        (1, "create", "1", 1)
    );
    let mut last = Value::Null;
    for k in 2..=201 {
        let change = next_change(&mut feed).await;
        assert_eq!((change.seq, change.version), (k, k), "{change:?}");
        let n = change.item["n"].as_i64().unwrap();
        assert_eq!(change.origin.is_some(), n % 2 == 0, "{change:?}");
        last = change.item;
    }
    // The last change is the stored model: the last write committed.
    assert_eq!((last, 201), before_delete);
    let deleted = next_change(&mut feed).await;
    assert_eq!(
        (deleted.seq, deleted.method.as_str(), deleted.version),
        (202, "delete", 202)
    );
    store.close().await.unwrap();
}

/// The next change of `feed` (a SQLite feed never resyncs).
async fn next_change(feed: &mut ChangeFeed) -> Change {
    match feed.recv().await.unwrap() {
        FeedItem::Change(change) => change,
        FeedItem::Resync => panic!("a SQLite feed never loses changes"),
    }
}
