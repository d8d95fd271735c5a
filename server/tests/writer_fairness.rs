//! The SQLite writer's fair share (issue 18): a client's single write is not queued behind
//! another client's flood. Both clients' writes are queued while the writer is held at its
//! batch's BEGIN (another connection holds the database's write lock), so the order the writer
//! takes them in is the only thing measured; the change feed shows that order (commit order).

use backbone_socket_sync_server::store::change::{Change, FeedItem, Origin};
use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
use backbone_socket_sync_server::store::sqlite::SqliteStore;
use backbone_socket_sync_server::store::{Store, Write, WriteOp};
use serde_json::json;

/// The SQLite writer's largest batch.
const MAX_BATCH: usize = 512;
const FLOOD: usize = 10_000;

fn socket(sid: &str) -> Origin {
    Origin {
        ns: "/".into(),
        sid: sid.into(),
    }
}

fn create(i: i64) -> Write {
    Write {
        owner: String::new(),
        op: WriteOp::Create {
            collection: "/api/flood".into(),
            item: json!({"i": i}).as_object().unwrap().clone(),
        },
        request_id: None,
        if_version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_write_is_in_the_next_batch_behind_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fair.sqlite");
    let store = SqliteStore::open(&path, 1 << 20, DEFAULT_REQUEST_RETENTION).unwrap();
    let mut feed = store.changes().unwrap();
    // Held while both clients queue: the writer waits at its next BEGIN (busy timeout 5 s).
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (flood, one) = (socket("flood"), socket("one"));
    let mut pending = Vec::with_capacity(FLOOD + 1);
    for i in 0..FLOOD as i64 {
        pending.push(store.write_from(create(i), Some(flood.clone())));
    }
    pending.push(store.write_from(create(-1), Some(one.clone())));
    blocker.execute_batch("ROLLBACK").unwrap();
    for write in pending {
        write.await.unwrap();
    }

    let mut order: Vec<Change> = Vec::with_capacity(FLOOD + 1);
    while order.len() < FLOOD + 1 {
        match feed.recv().await.expect("feed") {
            FeedItem::Change(change) => order.push(change),
            FeedItem::Resync => panic!("the local feed never loses changes"),
        }
    }
    let at = order
        .iter()
        .position(|change| change.origin.as_ref() == Some(&one))
        .unwrap();
    // The batch under way when it was queued (at most MAX_BATCH writes), then the next.
    assert!(
        at < 2 * MAX_BATCH,
        "the lone write was committed after {at} writes of the flood"
    );
    let flood_order: Vec<i64> = order
        .iter()
        .filter(|change| change.origin.as_ref() == Some(&flood))
        .map(|change| change.item["i"].as_i64().unwrap())
        .collect();
    assert_eq!(
        flood_order,
        (0..FLOOD as i64).collect::<Vec<_>>(),
        "a client's writes in its order"
    );
    store.close().await.unwrap();
}
