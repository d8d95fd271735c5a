//! Namespaces one client opens cannot slow the others down (the row: 120,000 dynamic
//! namespaces from one socket, never removed, and every later write ~176 ms because each
//! broadcast looped over all of them).

mod common;

use std::time::{Duration, Instant};

use common::{req, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

async fn stats(server: &ServerProcess) -> Value {
    reqwest::get(format!("{}/_bss/stats", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `check(stats)` holds (polling the stats endpoint), or panics after 10 s.
async fn until(server: &ServerProcess, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = stats(server).await;
        if check(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends CONNECT for each namespace on one WebSocket; returns how many were accepted.
async fn connect_many(c: &mut Client, names: &[String]) -> usize {
    for name in names {
        c.send(&format!("40{name},")).await;
    }
    let mut accepted = 0;
    for _ in names {
        let frame = c.recv().await.expect("a CONNECT answer");
        if frame.starts_with("40/") {
            accepted += 1;
        } else {
            assert!(frame.starts_with("44/"), "{frame}");
        }
    }
    accepted
}

#[tokio::test]
async fn only_configured_namespaces_by_default() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--namespace", "/", "--namespace", "/admin"]);
    let mut admin = Client::connect_ns(server.port, "/admin").await;
    assert_eq!(admin.ok("read", req("/api/t", None)).await, json!([]));
    let mut c = Client::open(server.port).await;
    c.send("40/nope,").await;
    let frame = c.recv().await.unwrap();
    assert!(frame.starts_with("44/nope,"), "{frame}");
    assert_eq!(stats(&server).await["dynamicNamespaces"], 0);
}

#[tokio::test]
async fn dynamic_namespaces_are_capped_and_removed_when_empty() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--dynamic-namespaces", "--max-namespaces", "50"]);
    let names: Vec<String> = (0..200).map(|i| format!("/ns{i}")).collect();
    let mut abuser = Client::open(server.port).await;
    assert_eq!(connect_many(&mut abuser, &names).await, 50, "the cap");
    assert_eq!(stats(&server).await["dynamicNamespaces"], 50);
    // Someone else still gets `/`, and a dynamic namespace once one is free.
    let mut other = Client::connect(server.port).await;
    assert_eq!(other.ok("read", req("/api/t", None)).await, json!([]));
    drop(abuser);
    until(&server, "emptied namespaces removed", |s| {
        s["dynamicNamespaces"] == 0
    })
    .await;
    let mut late = Client::connect_ns(server.port, "/ns199").await;
    assert_eq!(late.ok("read", req("/api/t", None)).await, json!([]));
}

#[tokio::test]
async fn a_broadcast_visits_only_namespaces_holding_its_room() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--dynamic-namespaces", "--max-namespaces", "5000"]);
    let names: Vec<String> = (0..2000).map(|i| format!("/idle{i}")).collect();
    let mut abuser = Client::open(server.port).await;
    assert_eq!(connect_many(&mut abuser, &names).await, 2000);

    let mut root = Client::connect(server.port).await;
    root.ok("subscribe", json!({"signature": {"endPoint": "/api/t"}}))
        .await;
    let mut room_ns = Client::connect_ns(server.port, "/watch").await;
    room_ns
        .ok("subscribe", json!({"signature": {"endPoint": "/api/t"}}))
        .await;
    let before = stats(&server).await["namespaceVisits"].as_u64().unwrap();
    let mut writer = Client::connect(server.port).await;
    for i in 0..10 {
        writer
            .ok("create", req("/api/t", Some(json!({ "i": i }))))
            .await;
    }
    for _ in 0..10 {
        let (name, _) = room_ns.next_event().await;
        assert_eq!(name, "created");
    }
    let after = stats(&server).await["namespaceVisits"].as_u64().unwrap();
    assert_eq!(after - before, 20, "`/` and `/watch` for each of 10 writes");
}
