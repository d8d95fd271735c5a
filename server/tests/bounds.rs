//! Per-connection bounds with backpressure, not drops: a client that never reads cannot grow
//! the server, a client that pipelines far past the in-flight bound gets every reply, and
//! each such event is logged once per connection, not once per reply.

mod common;

use std::time::{Duration, Instant};

use common::{req, temp_db, Client, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

fn count_lines(log: &std::path::Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// The row: a client that never reads its socket asks 1,000 × a 1.1 MB read and the
/// server's RSS went from 88 MiB to 1,153 MiB while it stayed connected. Here 300 reads of a
/// 1.1 MB collection (330 MB of replies): the server stops reading that client once 8 MiB are
/// queued, closes it after the ping timeout, and grows by far less than the replies asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_grow_the_server() {
    let (dir, db) = temp_db();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logged(
        &db,
        &["--ping-interval-ms", "500", "--ping-timeout-ms", "1500"],
        &log,
    );
    let mut setup = Client::connect(server.port).await;
    let filler = "x".repeat(100_000);
    for _ in 0..11 {
        setup
            .ok("create", req("/api/big", Some(json!({ "f": filler }))))
            .await;
    }
    setup
        .ok("create", req("/api/small", Some(json!({"ok": true}))))
        .await;
    let baseline = server.rss_kib();

    let abuser = Client::connect(server.port).await;
    let mut ws = abuser.into_ws();
    let sender = tokio::spawn(async move {
        for i in 0..300 {
            let frame = format!("42{i}{}", json!(["read", req("/api/big", None)]));
            // Blocks once the server stops reading: that is the backpressure.
            if ws.send(Message::text(frame)).await.is_err() {
                break;
            }
        }
        ws
    });

    // While it lasts, another client is served, and the server's memory stays bounded.
    let started = Instant::now();
    let mut peak = baseline;
    let mut victim = Client::connect(server.port).await;
    while started.elapsed() < Duration::from_secs(4) {
        let model = victim.ok("read", req("/api/small/1", None)).await;
        assert_eq!(model["ok"], true);
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown_mib = peak.saturating_sub(baseline) / 1024;
    println!("baseline {} MiB, peak {} MiB", baseline / 1024, peak / 1024);
    assert!(
        grown_mib < 100,
        "server grew {grown_mib} MiB for a client that reads nothing"
    );

    // The abuser was closed (it never answered a ping); reading now finds the end.
    let mut ws = tokio::time::timeout(Duration::from_secs(10), sender)
        .await
        .expect("the sender is unblocked once the server closes")
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server closed the connection");
    assert!(
        count_lines(&log, "not reading its replies") <= 1,
        "logged once"
    );
    assert!(count_lines(&log, "reply not sent") <= 1, "logged once");
    assert!(count_lines(&log, "WARN") <= 4, "no log flood");
}

/// Far more pipelined requests than the in-flight bound: the server reads them as replies
/// go out, and every one is answered, applied in the order of the socket's lane (the i-th
/// create is model i), none dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_past_the_in_flight_bound_loses_nothing() {
    let (dir, db) = temp_db();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logged(&db, &["--max-in-flight", "4"], &log);
    let c = Client::connect(server.port).await;
    let (mut tx, mut rx) = c.into_ws().split();
    const N: usize = 20_000;
    let sender = tokio::spawn(async move {
        for i in 1..=N {
            let frame = format!(
                "42{i}{}",
                json!(["create", req("/api/many", Some(json!({ "i": i })))])
            );
            tx.feed(Message::text(frame)).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    let mut answered = vec![false; N + 1];
    let mut count = 0;
    while count < N {
        let frame = tokio::time::timeout(Duration::from_secs(30), rx.next())
            .await
            .expect("replies keep coming")
            .expect("connection open")
            .unwrap();
        let Message::Text(text) = frame else { continue };
        if text.as_str() == "2" {
            continue; // a ping: the sender half answers nothing; the interval is 25 s
        }
        let rest = text.as_str().strip_prefix("43").expect("an ack");
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id: usize = rest[..digits].parse().unwrap();
        let reply: Vec<serde_json::Value> = serde_json::from_str(&rest[digits..]).unwrap();
        assert!(reply[0].is_null(), "{text}");
        // Applied in the lane's order: the i-th create of an empty collection is model i.
        assert_eq!(
            (&reply[1]["i"], &reply[1]["id"]),
            (&json!(id), &json!(id)),
            "create {id} applied out of the lane's order"
        );
        assert!(!answered[id], "answered twice: {id}");
        answered[id] = true;
        count += 1;
    }
    drop(sender.await.unwrap());
    let mut c = Client::connect(server.port).await;
    let mut stored = 0;
    for offset in [0, 10_000] {
        let page = c
            .ok(
                "read",
                json!({"signature": {"endPoint": "/api/many"}, "data": {"_offset": offset}}),
            )
            .await;
        stored += page.as_array().unwrap().len();
    }
    assert_eq!(stored, N);
    assert_eq!(count_lines(&log, "WARN"), 0, "backpressure is not an event");
}
