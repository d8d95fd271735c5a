//! Request records expire while the server runs (`--request-retention`), on both stores:
//! once a record is older than the retention, the same request under the same requestId is a
//! new write rather than a replay of the first answer.

mod common;
mod services;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{req_id, temp_db, Client, ServerProcess};
use serde_json::json;
use services::shared_postgres;

/// How long the sweep may take to forget a record past a 2 s retention (it runs every second).
const DEADLINE: Duration = Duration::from_secs(30);

/// Sends one create under one requestId until it is applied again; returns how long the
/// record lived.
async fn record_lifetime(db: &Path) -> Duration {
    let server = ServerProcess::start(db, &["--request-retention", "2s"]);
    let mut c = Client::connect(server.port).await;
    let create = req_id("/api/items", Some(json!({"t": "x"})), "expiring");
    let started = Instant::now();
    let first = c.ok("create", create.clone()).await;
    assert_eq!(first["id"], json!(1));
    loop {
        let again = c.ok("create", create.clone()).await;
        if again != first {
            assert_eq!(again["id"], json!(2), "a new write");
            return started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the record was not swept within {DEADLINE:?}"
        );
        // The record lives until a sweep; each replay answers the first result.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_records_expire_while_a_sqlite_server_runs() {
    let (_dir, db) = temp_db();
    let lived = record_lifetime(&db).await;
    println!("record lived {lived:?}");
    assert!(lived >= Duration::from_secs(1), "{lived:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_records_expire_while_a_postgres_server_runs() {
    let url = shared_postgres().create_database("expiry");
    let lived = record_lifetime(Path::new(&url)).await;
    println!("record lived {lived:?}");
    assert!(lived >= Duration::from_secs(1), "{lived:?}");
}
