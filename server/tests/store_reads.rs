//! The store's read paths under concurrency, one suite on both backends. SQLite: collection
//! reads queued to the reader threads (more at once than the threads take in one go, so the
//! queue must wake readers and drain in several runs) and model lookups run in place;
//! PostgreSQL: more reads at once than the pool has connections. Both must see every write
//! whose reply came before them, and refuse reads once the store is closed.

mod services;

use backbone_socket_sync_server::store::rows::Rows;
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
    // after COMMIT) reads it back in place and reads the collection through the reader queue,
    // which must hold every model whose create was answered before that read began.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let mut tasks = Vec::new();
    for i in 0..400 {
        let (store, acked) = (store.clone(), acked.clone());
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
            acked.lock().unwrap().push(created["id"].clone());
            let id = created["id"].as_i64().unwrap().to_string();
            let model = store.read_model("", "/api/r", &id).await.unwrap().value;
            assert_eq!(model, created);
            let mut query = Query::default();
            query.filters.insert("i".into(), json!(i));
            let found = store.read_collection("", "/api/r", query).await.unwrap();
            assert_eq!(found, vec![created]);
            let before: Vec<Value> = acked.lock().unwrap().clone();
            let all = store
                .read_collection("", "/api/r", Query::default())
                .await
                .unwrap();
            let seen: std::collections::HashSet<&Value> = all.iter().map(|m| &m["id"]).collect();
            let missed: Vec<&Value> = before.iter().filter(|id| !seen.contains(id)).collect();
            assert!(
                missed.is_empty(),
                "acknowledged before the read, not seen: {missed:?}"
            );
            assert!(all.len() <= 400, "{}", all.len());
        }));
    }
    for task in tasks {
        task.await.unwrap();
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
    assert_eq!(one.unwrap().value, a.value);
    assert_eq!(all.unwrap(), vec![a.value]);
    store.close().await.unwrap();
}

fn ids(models: &[Value]) -> Vec<&Value> {
    models.iter().map(|model| &model["id"]).collect()
}

/// The array text of a stream, and how many pieces it came in.
async fn drain(mut rows: Rows) -> (Vec<Value>, usize) {
    let mut text = String::new();
    let mut pieces = 0;
    while let Some(piece) = rows.next().await {
        text.push_str(&piece.unwrap());
        pieces += 1;
    }
    (serde_json::from_str(&text).unwrap(), pieces)
}

on_both_backends!(
    json_pages_and_streams_are_the_pages_of_values,
    flavor = "multi_thread",
    worker_threads = 2
);

/// Collection reads as text (the socket's page, the REST stream) hold exactly the models the
/// value page holds, with the same count and `more`, under filters, offset, limit and the
/// byte bound; a stream comes in pieces, from one snapshot (writes made while it is read do
/// not show), and a stream dropped part way frees its place.
async fn json_pages_and_streams_are_the_pages_of_values(backend: Backend) {
    let db = open_store(backend, 10_000).await;
    let store = &db.store;
    let pad = "x".repeat(500);
    let writes: Vec<_> = (0..2000)
        .map(|i| {
            store.create(
                "",
                "/api/t",
                object(json!({"i": i, "k": i % 3, "pad": pad})),
                None,
            )
        })
        .collect();
    for write in writes {
        write.await.unwrap();
    }
    let mut filtered = Query {
        limit: Some(20),
        offset: 3,
        ..Query::default()
    };
    filtered.filters.insert("k".into(), json!(1));
    let queries = [
        (Query::default(), usize::MAX),
        (
            Query {
                limit: Some(10),
                offset: 5,
                ..Query::default()
            },
            usize::MAX,
        ),
        (filtered, usize::MAX),
        (Query::default(), 5_000),
        (
            Query {
                offset: 1999,
                ..Query::default()
            },
            1,
        ),
        (
            Query {
                offset: 5000,
                ..Query::default()
            },
            usize::MAX,
        ),
    ];
    for (query, max_bytes) in queries {
        let page = store
            .read_page("", "/api/t", query.clone(), max_bytes)
            .await
            .unwrap();
        if max_bytes == 5_000 {
            // Each document is over 500 bytes: the byte bound applies on both backends.
            assert_eq!((page.models.len(), page.more), (9, true));
        }
        let json = store
            .read_json_page("", "/api/t", query.clone(), max_bytes)
            .await
            .unwrap();
        let parsed: Vec<Value> = serde_json::from_str(&json.json).unwrap();
        assert_eq!(ids(&parsed), ids(&page.models), "{query:?} {max_bytes}");
        assert!(
            parsed == page.models,
            "{query:?} {max_bytes}: same documents"
        );
        assert_eq!(
            (json.count, json.more),
            (page.models.len() as u64, page.more)
        );
        let rows = store
            .stream_page("", "/api/t", query.clone(), max_bytes)
            .await
            .unwrap();
        assert_eq!(
            (rows.count, rows.more),
            (json.count, json.more),
            "{query:?}"
        );
        let (streamed, _) = drain(rows).await;
        assert_eq!(ids(&streamed), ids(&page.models), "{query:?} {max_bytes}");
        assert!(
            streamed == page.models,
            "{query:?} {max_bytes}: same documents"
        );
    }

    // ~1 MB: more pieces than the stream reads ahead, so it is part way when the writes land.
    let rows = store
        .stream_page("", "/api/t", Query::default(), usize::MAX)
        .await
        .unwrap();
    assert_eq!((rows.count, rows.more), (2000, false));
    store.delete("", "/api/t", "1", None).await.unwrap();
    store
        .create("", "/api/t", object(json!({"late": true})), None)
        .await
        .unwrap();
    let (streamed, pieces) = drain(rows).await;
    assert!(pieces > 8, "{pieces} pieces");
    assert_eq!(streamed.len(), 2000, "the snapshot of when it started");
    assert_eq!(streamed[0]["id"], 1);

    // Streams dropped after their first piece free their places: more of them than run at
    // once, then one read to the end.
    for _ in 0..40 {
        let mut rows = store
            .stream_page("", "/api/t", Query::default(), usize::MAX)
            .await
            .unwrap();
        rows.next().await.unwrap().unwrap();
    }
    let rows = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.stream_page("", "/api/t", Query::default(), usize::MAX),
    )
    .await
    .expect("a place is free")
    .unwrap();
    assert_eq!(drain(rows).await.0.len(), 2000);
    store.close().await.unwrap();
}
