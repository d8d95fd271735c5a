//! The PostgreSQL change feed never loses a change silently, against real PostgreSQL: a change
//! whose transaction commits after a later-numbered one is still handed on; a listener whose
//! connection is cut, or whose database stops answering, connects again and misses nothing
//! and repeats nothing; a listener that was away longer than the outbox keeps changes tells
//! its followers to resync. Each test has a cluster of its own: they hold transactions open,
//! which holds back the feed of every database of a cluster.

mod common;
mod services;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use backbone_socket_sync_server::store::change::{ChangeFeed, FeedItem};
use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
use backbone_socket_sync_server::store::postgres::{
    keep_and_notify, PostgresStore, FEED_APPLICATION_NAME,
};
use backbone_socket_sync_server::store::{Store, Write, WriteOp};
use common::{req, Client, ServerProcess};
use serde_json::{json, Value};
use services::Postgres;
use tokio_postgres::NoTls;

/// How long one expected feed item may take (a lost connection is noticed within ~5 s).
const WAIT: Duration = Duration::from_secs(20);

async fn store(url: &str) -> PostgresStore {
    PostgresStore::connect(url, 1 << 20, DEFAULT_REQUEST_RETENTION)
        .await
        .expect("connect")
}

/// A plain connection to `url`, as another program (or a node's writer) would open.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("raw");
    tokio::spawn(connection);
    client
}

/// Keeps and NOTIFYs a change to `/c/<id>` the way every node's writer does.
async fn write_change(client: &tokio_postgres::Client, id: &str) {
    let record = json!({
        "node": "elsewhere", "origin": null, "owner": "", "method": "update",
        "collection": "/c", "id": id, "item": {"id": id},
    });
    client
        .query(&keep_and_notify(), &[&record.to_string()])
        .await
        .expect("keep and notify");
}

fn create(n: u64) -> Write {
    let mut item = serde_json::Map::new();
    item.insert("n".into(), Value::from(n));
    Write {
        owner: String::new(),
        op: WriteOp::Create {
            collection: "/c".into(),
            item,
        },
        request_id: None,
        if_version: None,
    }
}

/// The next item of `feed`, within [`WAIT`].
async fn next(feed: &mut ChangeFeed) -> FeedItem {
    tokio::time::timeout(WAIT, feed.recv())
        .await
        .expect("a feed item in time")
        .expect("the feed is open")
}

/// The id of the next change (panics on a resync).
async fn next_id(feed: &mut ChangeFeed) -> String {
    match next(feed).await {
        FeedItem::Change(change) => change.id,
        FeedItem::Resync => panic!("an unexpected resync"),
    }
}

/// A stopped PostgreSQL backend, continued when dropped (also when the test fails: a stopped
/// backend would keep its cluster from shutting down).
struct Frozen(i32);

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a PostgreSQL backend of our own throwaway cluster.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Stops (`SIGSTOP`) the backend of this database's listener: a half-open link, the backend
/// neither answering nor closing the connection.
async fn freeze_listener(admin: &tokio_postgres::Client) -> Frozen {
    let pid: i32 = admin
        .query_one(
            "SELECT pid FROM pg_stat_activity
              WHERE application_name = $1 AND datname = current_database()",
            &[&FEED_APPLICATION_NAME],
        )
        .await
        .expect("the listener's backend")
        .get(0);
    // SAFETY: as in `Frozen::drop`.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    Frozen(pid)
}

/// Terminates the backend of this database's listener, once it listens (again).
async fn cut_listener(admin: &tokio_postgres::Client) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let cut = admin
            .query_opt(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = $1 AND datname = current_database()",
                &[&FEED_APPLICATION_NAME],
            )
            .await
            .unwrap();
        if cut.is_some_and(|row| row.get(0)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_seq_that_commits_after_a_higher_one_is_not_skipped() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    let store = store(&url).await;
    let mut feed = store.changes().expect("the feed");
    let (held, other) = (raw(&url).await, raw(&url).await);
    held.batch_execute("BEGIN").await.unwrap();
    write_change(&held, "low").await;
    write_change(&other, "high").await;
    assert_eq!(next_id(&mut feed).await, "high");
    held.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        next_id(&mut feed).await,
        "low",
        "the lower seq, committed later"
    );
    // Nothing twice: the next change is the sentinel.
    store.write(create(1)).await.unwrap();
    assert_eq!(next_id(&mut feed).await, "1");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_cut_while_writes_go_on_misses_nothing_and_repeats_nothing() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    let store = store(&url).await;
    let mut feed = store.changes().expect("the feed");
    let (admin, held) = (raw(&url).await, raw(&url).await);
    // A change whose transaction stays open across the cuts, with a lower seq than most.
    held.batch_execute("BEGIN").await.unwrap();
    write_change(&held, "held").await;
    let mut seen = BTreeMap::<String, u32>::new();
    const WRITES: u64 = 120;
    for n in 1..=WRITES {
        store.write(create(n)).await.unwrap();
        if n % 30 == 0 {
            cut_listener(&admin).await;
        }
        if n == WRITES / 2 {
            held.batch_execute("COMMIT").await.unwrap();
        }
    }
    // Every change arrives (the ids 1..=WRITES and the held one), then the sentinel.
    store.write(create(0)).await.unwrap();
    let sentinel = (WRITES + 1).to_string();
    while seen.len() < WRITES as usize + 1 || !seen.contains_key(&sentinel) {
        let id = next_id(&mut feed).await;
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handed on twice: {twice:?}");
    assert!(seen.contains_key("held"));
    assert_eq!(seen.len(), WRITES as usize + 2);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_database_stops_answering_listens_again_within_seconds() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    let store = store(&url).await;
    let mut feed = store.changes().expect("the feed");
    store.write(create(1)).await.unwrap();
    assert_eq!(next_id(&mut feed).await, "1", "listening");
    let admin = raw(&url).await;
    let frozen = freeze_listener(&admin).await;
    for n in 2..=4 {
        store.write(create(n)).await.unwrap();
    }
    for n in 2..=4 {
        assert_eq!(next_id(&mut feed).await, n.to_string());
    }
    drop(frozen);
    store.write(create(5)).await.unwrap();
    assert_eq!(next_id(&mut feed).await, "5", "nothing twice");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_behind_the_sweep_is_told_to_resync() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    let store = store(&url).await;
    // Committed after the feed's start, and swept before the listener read them.
    for n in 1..=3 {
        store.write(create(n)).await.unwrap();
    }
    let swept = store.sweep_changes(Duration::ZERO).await.unwrap();
    assert_eq!(swept, 3);
    let mut feed = store.changes().expect("the feed");
    assert_eq!(next(&mut feed).await, FeedItem::Resync);
    store.write(create(4)).await.unwrap();
    assert_eq!(next_id(&mut feed).await, "4", "once, then the feed goes on");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_resync_when_their_nodes_feed_lost_changes() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    let server = ServerProcess::start(Path::new(&url), &[]);
    let mut writer = Client::connect(server.port).await;
    let mut watcher = Client::connect(server.port).await;
    watcher.ok("subscribe", req("/api/items", None)).await;
    writer
        .ok("create", req("/api/items", Some(json!({"n": 1}))))
        .await;
    assert_eq!(watcher.next_event().await.0, "created");
    // The server's listener stops hearing; a change is committed and swept meanwhile.
    let admin = raw(&url).await;
    let frozen = freeze_listener(&admin).await;
    writer
        .ok("create", req("/api/items", Some(json!({"n": 2}))))
        .await;
    let sweeper = store(&url).await;
    assert_eq!(sweeper.sweep_changes(Duration::ZERO).await.unwrap(), 2);
    let (event, payload) = watcher.next_event().await;
    assert_eq!(
        (event.as_str(), payload),
        (
            "resync",
            json!({"endPoint": "/api/items", "collection": "/api/items"})
        )
    );
    drop(frozen);
    writer
        .ok("create", req("/api/items", Some(json!({"n": 3}))))
        .await;
    let (event, payload) = watcher.next_event().await;
    assert_eq!(
        (event.as_str(), &payload["item"]["n"]),
        ("created", &json!(3))
    );
    sweeper.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_an_older_server_is_brought_up_to_date() {
    let pg = Postgres::start();
    let url = pg.create_database("feed");
    // The outbox and request records as servers before the feed's watermark made them.
    raw(&url)
        .await
        .batch_execute(
            "CREATE TABLE bss_requests (scope TEXT NOT NULL, request_id TEXT NOT NULL,
                 fingerprint TEXT NOT NULL, result TEXT, created_at BIGINT NOT NULL,
                 PRIMARY KEY (scope, request_id));
             CREATE TABLE bss_outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 payload TEXT NOT NULL,
                 created_at BIGINT NOT NULL DEFAULT extract(epoch FROM now())::bigint);
             INSERT INTO bss_outbox (payload, created_at) VALUES ('{}', 1);",
        )
        .await
        .unwrap();
    let store = store(&url).await;
    let mut feed = store.changes().expect("the feed");
    let mut write = create(1);
    write.request_id = Some(backbone_socket_sync_server::store::RequestId {
        scope: String::new(),
        id: "r".into(),
    });
    store.write(write).await.unwrap();
    assert_eq!(next_id(&mut feed).await, "1");
    // Both rows, the old one's time converted, are swept by the database's clock (the old one
    // maybe already by the store's own sweep at start: it is 56 years old).
    store.sweep_changes(Duration::ZERO).await.unwrap();
    let left: i64 = raw(&url)
        .await
        .query_one("SELECT count(*) FROM bss_outbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    store.close().await.unwrap();
}
