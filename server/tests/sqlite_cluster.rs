//! SQLite nodes linked by a Redis adapter (two processes on one SQLite file): the SQLite
//! store's change feed holds only its own node's writes, so its broadcasts must go through
//! the adapter to the other node's subscribers, once each, leaving out the writer, with the
//! model's version and the writing node's `seq`.

mod common;
mod services;

use common::{req, temp_db, Client, ServerProcess};
use serde_json::{json, Value};
use services::Redis;

/// The events `c` hears up to (not including) the broadcast whose item is `sentinel`.
async fn events_until(c: &mut Client, sentinel: &Value) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    loop {
        let (name, payload) = c.next_event().await;
        if payload["item"] == *sentinel {
            return events;
        }
        events.push((name, payload));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_nodes_writes_reach_the_other_nodes_subscribers_once() {
    let redis = Redis::start();
    let (_dir, db) = temp_db();
    let adapter = ["--adapter", &redis.url()];
    let a = ServerProcess::start(&db, &adapter);
    let b = ServerProcess::start(&db, &adapter);
    let mut writer = Client::connect(a.port).await;
    let mut on_a = Client::connect(a.port).await;
    let mut on_b = Client::connect(b.port).await;
    for c in [&mut writer, &mut on_a, &mut on_b] {
        c.ok("subscribe", req("/api/todos", None)).await;
    }

    let created = writer
        .ok("create", req("/api/todos", Some(json!({"t": "a"}))))
        .await;
    let patched = writer
        .ok("patch", req("/api/todos/1", Some(json!({"done": true}))))
        .await;
    // A later write of node A's: its broadcast follows theirs on every node (one feed, one
    // relay, one publisher), so it ends the checks below.
    let mut also_on_a = Client::connect(a.port).await;
    let sentinel = also_on_a
        .ok("create", req("/api/todos", Some(json!({"sentinel": "a"}))))
        .await;

    for (who, c) in [("node A", &mut on_a), ("node B", &mut on_b)] {
        let heard = events_until(c, &sentinel).await;
        let summary: Vec<(&str, &Value, &Value)> = heard
            .iter()
            .map(|(name, p)| (name.as_str(), &p["item"], &p["version"]))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("created", &created, &json!(1)),
                ("patched", &patched, &json!(2))
            ],
            "{who}"
        );
        // Numbered by node A's feed, in its commit order.
        assert!(
            heard[0].1["seq"].as_i64().unwrap() < heard[1].1["seq"].as_i64().unwrap(),
            "{who}: {heard:?}"
        );
    }
    // The writer hears the others' writes, not its own.
    assert!(events_until(&mut writer, &sentinel).await.is_empty());
    let mut on_b_writer = Client::connect(b.port).await;
    let from_b = on_b_writer
        .ok("create", req("/api/todos", Some(json!({"from": "b"}))))
        .await;
    let (name, payload) = writer.next_event().await;
    assert_eq!((name.as_str(), &payload["item"]), ("created", &from_b));
}
