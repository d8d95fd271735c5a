//! The load-and-abuse test: each abuse of the table, at a small scale and bounded in
//! time, on loopback, while a well-behaved client (the victim) patches and reads its own model
//! and measures each request. It asserts that the victim's p99 during every abuse stays under
//! 10× its quiet p99, that the server's RSS stays under [`RSS_BOUND_MIB`], and that the server
//! is healthy afterwards.
//!
//! Timing needs the optimised server: scripts/test.sh runs it against the release build,
//! `BSS_SERVER_BIN=$PWD/target/release/bss-server cargo test --workspace --test abuse --
//! --ignored --nocapture` (it is ignored in a plain `cargo test`, whose server is a debug
//! build). `ABUSE_SCALE=N` multiplies every count.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_pipelined, req, temp_db, Client, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The server's RSS must stay under this during the whole run (it starts near 20 MiB).
const RSS_BOUND_MIB: u64 = 256;
/// How long each abuse lasts while the victim measures.
const PHASE: Duration = Duration::from_secs(3);

fn scale() -> usize {
    std::env::var("ABUSE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The victim's latencies, by phase.
#[derive(Default)]
struct Record {
    phase: String,
    samples: Vec<(String, Duration)>,
}

fn p99(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() as f64 * 0.99).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The well-behaved client: patch then read its model, one request at a time.
async fn victim(port: u16, record: Arc<Mutex<Record>>, stop: Arc<AtomicBool>) -> usize {
    let mut c = Client::connect(port).await;
    c.ok("update", req("/api/victim/1", Some(json!({"n": 0}))))
        .await;
    let mut n = 0;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let started = Instant::now();
        let patched = c
            .ok("patch", req("/api/victim/1", Some(json!({ "n": n }))))
            .await;
        let patch_took = started.elapsed();
        let started = Instant::now();
        let read = c.ok("read", req("/api/victim/1", None)).await;
        let read_took = started.elapsed();
        assert_eq!(
            (patched["n"].clone(), read["n"].clone()),
            (json!(n), json!(n))
        );
        {
            let mut record = record.lock().unwrap();
            let phase = record.phase.clone();
            record.samples.push((phase.clone(), patch_took));
            record.samples.push((phase, read_took));
        }
        // Paced, as a user is: the abuse, not the victim, is the load.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

/// Runs `abuse` for [`PHASE`] (it must stop by itself when `stop` is set) as phase `name`.
async fn phase<F, Fut>(record: &Arc<Mutex<Record>>, peak: &Arc<Mutex<u64>>, name: &str, abuse: F)
where
    F: FnOnce(Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    record.lock().unwrap().phase = name.to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(abuse(stop.clone()));
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Release);
    let note = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap_or_else(|_| panic!("abuse {name} did not stop"))
        .unwrap();
    record.lock().unwrap().phase = "settle".into();
    println!(
        "abuse {name}: {note} (peak RSS so far {} MiB)",
        *peak.lock().unwrap() / 1024
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing: run against the release server by scripts/test.sh (see the file's doc)"]
async fn one_client_cannot_hurt_the_others() {
    let scale = scale();
    let (dir, db) = temp_db();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logged(
        &db,
        &[
            "--dynamic-namespaces",
            "--max-namespaces",
            "1000",
            "--max-connections",
            &(400 * scale).to_string(),
            "--header-read-timeout-ms",
            "1000",
            "--ping-interval-ms",
            "1000",
            "--ping-timeout-ms",
            "2000",
        ],
        &log,
    );
    let port = server.port;
    let url = server.url();

    // Data the abuses read.
    let mut setup = Client::connect(port).await;
    let filler = "x".repeat(100_000);
    for _ in 0..11 {
        setup
            .ok("create", req("/api/big", Some(json!({ "f": filler }))))
            .await;
    }
    drop(setup);
    fill(port, "/api/many", 20_000 * scale).await;

    // RSS sampled throughout.
    let peak = Arc::new(Mutex::new(server.rss_kib()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), server.pid());
        tokio::spawn(async move {
            while sampling.load(Ordering::Acquire) {
                if let Some(rss) = rss_kib(pid) {
                    let mut peak = peak.lock().unwrap();
                    *peak = (*peak).max(rss);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let record = Arc::new(Mutex::new(Record {
        phase: "quiet".into(),
        ..Record::default()
    }));
    let victim_stop = Arc::new(AtomicBool::new(false));
    let victim_task = tokio::spawn(victim(port, record.clone(), victim_stop.clone()));
    tokio::time::sleep(PHASE).await;

    phase(&record, &peak, "namespaces", move |stop| async move {
        // 3,000 namespaces asked on one socket; the cap is 1,000.
        let mut c = Client::open(port).await;
        let mut accepted = 0;
        for i in 0..3000 * scale {
            c.send(&format!("40/ns{i},")).await;
        }
        for _ in 0..3000 * scale {
            if c.recv().await.unwrap().starts_with("40/") {
                accepted += 1;
            }
        }
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        format!("{accepted} of {} namespaces accepted", 3000 * scale)
    })
    .await;

    phase(&record, &peak, "ids", move |stop| async move {
        let mut c = Client::connect(port).await;
        let mut refused = 0;
        for id in ["9223372036854775807", "-5", "0", "9007199254740992"] {
            let endpoint = format!("/api/victim/{id}");
            let error = c.err("update", req(&endpoint, Some(json!({})))).await;
            assert_eq!(error["status"], 400);
            refused += 1;
        }
        let mut created = 0;
        while !stop.load(Ordering::Acquire) {
            let model = c.ok("create", req("/api/victim", Some(json!({})))).await;
            assert!(model["id"].as_i64().unwrap() > 0);
            created += 1;
        }
        format!("{refused} out-of-range ids refused, {created} creates after them fine")
    })
    .await;

    phase(&record, &peak, "non-reader", move |stop| async move {
        // Asks 300 × a 1.1 MB read and never reads a reply.
        let (mut tx, rx) = Client::connect(port).await.into_ws().split();
        let sender = tokio::spawn(async move {
            let mut sent = 0;
            for i in 0..300 * scale {
                let frame = format!("42{i}{}", json!(["read", req("/api/big", None)]));
                if tx.send(Message::text(frame)).await.is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        });
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(rx);
        let sent = tokio::time::timeout(Duration::from_secs(10), sender)
            .await
            .map(|sent| sent.unwrap().to_string())
            .unwrap_or_else(|_| "still blocked".into());
        format!("requests written before the server pushed back: {sent}")
    })
    .await;

    phase(&record, &peak, "slow-http", move |stop| async move {
        // Connections trickling a header byte at a time, and silent ones.
        let addr = format!("127.0.0.1:{port}");
        let mut trickling = Vec::new();
        let mut silent = Vec::new();
        for _ in 0..300 * scale {
            if let Ok(stream) = TcpStream::connect(&addr).await {
                trickling.push(stream);
            }
            if let Ok(stream) = TcpStream::connect(&addr).await {
                silent.push(stream);
            }
        }
        let mut closed = 0;
        while !stop.load(Ordering::Acquire) {
            for stream in trickling.iter_mut() {
                if stream.write_all(b"G").await.is_err() {
                    closed += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        format!(
            "{} trickling + {} silent connections; {closed} writes refused after the header-read timeout",
            trickling.len(),
            silent.len()
        )
    })
    .await;

    phase(&record, &peak, "connection-flood", move |stop| async move {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let mut open = Vec::new();
        let mut refused = 0;
        for _ in 0..450 * scale {
            match tokio_tungstenite::connect_async(&url).await {
                Ok((ws, _)) => open.push(ws),
                Err(_) => refused += 1,
            }
        }
        while !stop.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        format!("{} WebSockets open, {refused} refused (503)", open.len())
    })
    .await;

    let polling_url = url.clone();
    phase(&record, &peak, "polling", move |stop| async move {
        let http = reqwest::Client::new();
        let mut refused = 0;
        let mut sent = 0;
        while !stop.load(Ordering::Acquire) && sent < 3000 * scale {
            let response = http
                .get(format!("{polling_url}/socket.io/?EIO=4&transport=polling"))
                .send()
                .await
                .unwrap();
            sent += 1;
            if response.status() == 400 {
                refused += 1;
            }
        }
        format!("{refused} of {sent} polling handshakes refused")
    })
    .await;

    phase(&record, &peak, "create-flood", move |stop| async move {
        let n = 50_000 * scale;
        let (mut tx, mut rx) = Client::connect(port).await.into_ws().split();
        // The reading half hands the server's pings to the writing half, which answers them
        // between creates (a client that stops answering pings is closed, rightly).
        let (pongs, mut pings) = tokio::sync::mpsc::unbounded_channel::<()>();
        let sender = tokio::spawn(async move {
            for i in 1..=n {
                while pings.try_recv().is_ok() {
                    let _ = tx.feed(Message::text("3")).await;
                }
                let frame = format!(
                    "42{i}{}",
                    json!(["create", req("/api/flood", Some(json!({ "i": i })))])
                );
                if tx.feed(Message::text(frame)).await.is_err() {
                    return;
                }
            }
            let _ = tx.flush().await;
            while pings.recv().await.is_some() {
                if tx.send(Message::text("3")).await.is_err() {
                    return;
                }
            }
        });
        let mut acks = 0;
        while acks < n {
            match tokio::time::timeout(Duration::from_secs(20), rx.next()).await {
                Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with("43") => acks += 1,
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    let _ = pongs.send(());
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        drop(pongs);
        let _ = sender.await;
        let _ = stop;
        assert_eq!(acks, n, "every create answered on the socket that sent it");
        format!("{acks} of {n} creates answered")
    })
    .await;

    let get_url = url.clone();
    phase(&record, &peak, "big-reads", move |stop| async move {
        let http = reqwest::Client::new();
        let mut reads = 0;
        while !stop.load(Ordering::Acquire) {
            let batch = (0..8).map(|_| {
                let http = http.clone();
                let url = format!("{get_url}/api/many");
                async move {
                    let response = http.get(url).send().await.unwrap();
                    let cut = response.headers().contains_key("x-truncated-at");
                    let models: Vec<Value> = response.json().await.unwrap();
                    (models.len(), cut)
                }
            });
            for (len, cut) in futures_util::future::join_all(batch).await {
                assert_eq!((len, cut), (10_000, true));
                reads += 1;
            }
        }
        format!(
            "{reads} reads of a {}-model collection, each cut at 10,000",
            20_000 * scale
        )
    })
    .await;

    victim_stop.store(true, Ordering::Release);
    let victim_ops = match victim_task.await {
        Ok(ops) => ops,
        Err(error) => panic!(
            "the victim failed: {error}\nserver log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    sampling.store(false, Ordering::Release);
    sampler.await.unwrap();

    // Healthy afterwards: a new client does everything, the namespaces are gone.
    let mut after = Client::connect(port).await;
    let created = after
        .ok("create", req("/api/after", Some(json!({"ok": true}))))
        .await;
    assert_eq!(
        after
            .ok("read", req(&format!("/api/after/{}", created["id"]), None))
            .await["ok"],
        true
    );
    let stats: Value = reqwest::get(format!("{url}/_bss/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["dynamicNamespaces"], 0, "{stats}");

    let record = record.lock().unwrap();
    let by_phase = |name: &str| -> Vec<Duration> {
        record
            .samples
            .iter()
            .filter(|(phase, _)| phase == name)
            .map(|(_, took)| *took)
            .collect()
    };
    let quiet = p99(&by_phase("quiet"));
    let peak_mib = *peak.lock().unwrap() / 1024;
    println!("victim: {victim_ops} patch+read pairs; quiet p99 {quiet:?}; server peak RSS {peak_mib} MiB (bound {RSS_BOUND_MIB})");
    let mut failures = Vec::new();
    for name in [
        "namespaces",
        "ids",
        "non-reader",
        "slow-http",
        "connection-flood",
        "polling",
        "create-flood",
        "big-reads",
    ] {
        let samples = by_phase(name);
        assert!(
            samples.len() >= 10,
            "{name}: the victim was starved ({} requests)",
            samples.len()
        );
        let during = p99(&samples);
        let ratio = during.as_secs_f64() / quiet.as_secs_f64();
        println!("| {name} | {} victim requests | p99 {quiet:?} quiet, {during:?} during ({ratio:.1}x) |", samples.len());
        if during > quiet * 10 {
            failures.push(format!(
                "{name}: victim p99 {during:?} > 10 × quiet {quiet:?}"
            ));
        }
    }
    let warnings = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("WARN"))
        .count();
    println!("server log: {warnings} WARN lines");
    for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
        if line.contains("WARN") || line.contains("ERROR") {
            println!("  {line}");
        }
    }
    assert!(warnings < 20, "no log flood: {warnings} WARN lines");
    assert!(peak_mib < RSS_BOUND_MIB, "peak RSS {peak_mib} MiB");
    assert!(failures.is_empty(), "{failures:#?}");
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Creates `n` small models in `collection` over one pipelined socket.
async fn fill(port: u16, collection: &str, n: usize) {
    let items = (0..n).map(|i| json!({ "i": i })).collect();
    create_pipelined(port, collection, items).await;
}
