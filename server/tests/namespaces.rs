//! Namespaces one client opens cannot slow the others down (the row: 120,000 dynamic
//! namespaces from one socket, never removed, and every later write ~176 ms because each
//! broadcast looped over all of them).

mod common;

use std::time::{Duration, Instant};

use common::{req, start_signed_in, temp_db, Client, ServerProcess, WAIT};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// The HS256 secret of the tests with authentication on.
const SECRET: &[u8] = b"an hs256 secret for the tests, 40 bytes.";

/// The stats, read as `token`'s user (with authentication on).
async fn stats_as(server: &ServerProcess, token: Option<&str>) -> Value {
    let mut request = reqwest::Client::new().get(format!("{}/_bss/stats", server.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

async fn stats(server: &ServerProcess) -> Value {
    stats_as(server, None).await
}

/// Waits until `check(stats)` holds (polling the stats endpoint as `token`'s user), or panics
/// after 10 s.
async fn until_as(
    server: &ServerProcess,
    token: Option<&str>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = stats_as(server, token).await;
        if check(&now) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn until(server: &ServerProcess, what: &str, check: impl Fn(&Value) -> bool) {
    until_as(server, None, what, check).await;
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

/// The probe: with `--namespace /admin` alone, sockets on `/` connected and subscribed
/// but never heard `created` (broadcasts visited `/admin` only).
#[tokio::test]
async fn root_stays_live_beside_named_namespaces() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--namespace", "/admin"]);
    let mut root = Client::connect(server.port).await;
    root.ok("subscribe", json!({"signature": {"endPoint": "/api/t"}}))
        .await;
    let mut admin = Client::connect_ns(server.port, "/admin").await;
    let created = admin
        .ok("create", req("/api/t", Some(json!({"from": "admin"}))))
        .await;
    let (name, payload) = root.next_event().await;
    assert_eq!((name.as_str(), &payload["item"]), ("created", &created));
}

/// Sends CONNECT then DISCONNECT for each of `names` (`/churn<i>`) back to back, a burst of
/// 25 pairs per connection written before any reply is read: a DISCONNECT may reach a
/// namespace whose CONNECT is still running, which resets the connection. Every other
/// connection is then dropped at once (its end races the CONNECTs still running); the others
/// read until the last CONNECT is answered or the connection ends.
async fn churn(port: u16, names: std::ops::Range<usize>) {
    let names: Vec<usize> = names.collect();
    for (round, burst) in names.chunks(25).enumerate() {
        let mut c = Client::open(port).await;
        for i in burst {
            let connect = c.send_raw(Message::text(format!("40/churn{i},"))).await;
            let disconnect = c.send_raw(Message::text(format!("41/churn{i},"))).await;
            if !(connect && disconnect) {
                break; // reset by the server
            }
        }
        if round % 2 == 0 {
            continue;
        }
        let last = burst[burst.len() - 1];
        let answers = [format!("40/churn{last},"), format!("44/churn{last},")];
        loop {
            match c.recv_raw(WAIT).await {
                Some(Some(frame)) if answers.iter().any(|a| frame.starts_with(a)) => break,
                Some(Some(frame)) if frame == "2" => {
                    c.send_raw(Message::text("3")).await;
                }
                Some(Some(_)) => {}
                Some(None) => break,
                None => panic!("CONNECT /churn{last}: neither answered nor closed"),
            }
        }
    }
}

/// The probe: DISCONNECT then CONNECT back to back, a new dynamic namespace each time,
/// left a slot counted whenever the CONNECT raced the DISCONNECT or the connection's end;
/// after 420 tries all 50 were taken with none of the prober's sockets open, and everyone else
/// got `too many namespaces` for good. 500 pairs leave no slot counted and the RSS flat.
#[tokio::test]
async fn disconnect_connect_churn_gives_every_slot_back() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--dynamic-namespaces", "--max-namespaces", "50"]);
    churn(server.port, 0..100).await;
    until(&server, "warm-up slots given back", |s| {
        s["dynamicNamespaces"] == 0
    })
    .await;
    let before = server.rss_kib();
    churn(server.port, 100..600).await;
    until(&server, "every slot given back", |s| {
        s["dynamicNamespaces"] == 0
    })
    .await;
    let after = server.rss_kib();
    println!("RSS {before} KiB before 500 pairs, {after} KiB after");
    assert!(after <= before + 2048, "RSS {before} -> {after} KiB");
    // Every slot is free: a new name connects.
    let mut late = Client::connect_ns(server.port, "/after-churn").await;
    assert_eq!(late.ok("read", req("/api/t", None)).await, json!([]));
}

/// CONNECTs to `/refused<i>` for each of `names`, without a token, 500 written at a time and
/// then answered: each one with a CONNECT_ERROR.
async fn refused_connects(c: &mut Client, names: std::ops::Range<usize>) {
    let names: Vec<usize> = names.collect();
    for window in names.chunks(500) {
        for i in window {
            c.send(&format!("40/refused{i},")).await;
        }
        for _ in window {
            let frame = c.recv().await.expect("a CONNECT answer");
            assert!(frame.starts_with("44/refused"), "{frame}");
        }
    }
}

/// The probe: a CONNECT to a new dynamic namespace refused for want of a token left
/// that namespace behind for good (20,000 names: +13 MiB of RSS), and `--max-namespaces`
/// never applied to them. 20,000 refused names leave the RSS within 2 MiB of before, and a
/// signed-in user still gets a dynamic namespace.
#[tokio::test]
async fn refused_connects_to_new_names_leave_nothing_behind() {
    let (dir, db) = temp_db();
    let (server, auth) = start_signed_in(
        dir.path(),
        &db,
        SECRET,
        &[
            "--dynamic-namespaces",
            "--max-namespaces",
            "50",
            "--stats-sub",
            "ops",
        ],
    );
    let token = |sub: &str| auth.mint(sub, Duration::from_secs(3600)).unwrap().0;
    let mut prober = Client::open(server.port).await;
    refused_connects(&mut prober, 0..2_000).await;
    let before = server.rss_kib();
    refused_connects(&mut prober, 2_000..22_000).await;
    let after = server.rss_kib();
    println!("RSS {before} KiB before 20,000 refused names, {after} KiB after");
    assert!(after <= before + 2048, "RSS {before} -> {after} KiB");
    let ops = token("ops");
    until_as(&server, Some(&ops), "no slot held", |s| {
        s["dynamicNamespaces"] == 0
    })
    .await;
    let mut alice = Client::open(server.port).await;
    alice
        .send(&format!("40/alice,{}", json!({ "token": token("alice") })))
        .await;
    let reply = alice.recv().await.unwrap();
    assert!(reply.starts_with("40/alice,{\"sid\""), "{reply}");
}
