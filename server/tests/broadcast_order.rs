//! Broadcasts in commit order on one SQLite node: two sockets pipeline patches to one model
//! while a third socket subscribes to its collection; every trial, the subscriber hears the
//! model's versions in order, and its last broadcast is the stored document (before, each
//! request broadcast from its own task and a later commit's broadcast could go out first).

mod common;

use common::{req, temp_db, Client, ServerProcess};
use serde_json::json;

/// Trials, each on a model of its own.
const TRIALS: usize = 20;
/// Patches each writer pipelines per trial.
const PATCHES: usize = 200;

/// Sends `PATCHES` patches of `endpoint` from `c`, all before reading any answer, then waits
/// for every ack.
async fn pipeline_patches(c: &mut Client, endpoint: &str, writer: &str) {
    for n in 1..=PATCHES {
        let patch = req(endpoint, Some(json!({ "writer": writer, "n": n })));
        c.send(&format!("42{n}{}", json!(["patch", patch]))).await;
    }
    let mut acked = 0;
    while acked < PATCHES {
        let frame = c.recv().await.expect("open until every patch is acked");
        if frame.starts_with("43") {
            assert!(frame.contains("[null,"), "a patch failed: {frame}");
            acked += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_last_broadcast_is_the_stored_document() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut a = Client::connect(server.port).await;
    let mut b = Client::connect(server.port).await;
    let mut watcher = Client::connect(server.port).await;
    watcher.ok("subscribe", req("/api/race", None)).await;
    let mut stale = Vec::new();
    let mut unordered = 0;
    for trial in 1..=TRIALS {
        let created = a
            .ok("create", req("/api/race", Some(json!({ "trial": trial }))))
            .await;
        let endpoint = format!("/api/race/{}", created["id"]);
        assert_eq!(watcher.next_event().await.0, "created");
        tokio::join!(
            pipeline_patches(&mut a, &endpoint, "a"),
            pipeline_patches(&mut b, &endpoint, "b"),
        );
        let stored = a.ok("read", req(&endpoint, None)).await;
        // A sentinel write to another model: its broadcast comes after every earlier one.
        let sentinel = a
            .ok(
                "create",
                req("/api/race", Some(json!({ "sentinel": trial }))),
            )
            .await;
        let mut heard = Vec::new();
        loop {
            let (event, payload) = watcher.next_event().await;
            if payload["item"] == sentinel {
                break;
            }
            assert_eq!(event, "patched", "{payload}");
            heard.push(payload);
        }
        assert_eq!(
            heard.len(),
            2 * PATCHES,
            "trial {trial}: every patch heard once"
        );
        let last = &heard.last().expect("patches heard")["item"];
        if *last != stored {
            stale.push(format!("trial {trial}: heard last {last}, stored {stored}"));
        }
        // The versions come in order: 2 (after the create) on.
        let versions: Vec<Option<i64>> = heard.iter().map(|p| p["version"].as_i64()).collect();
        let expected: Vec<Option<i64>> = (2..=(2 * PATCHES as i64 + 1)).map(Some).collect();
        if versions != expected {
            unordered += 1;
        }
    }
    assert!(
        stale.is_empty() && unordered == 0,
        "{} of {TRIALS} trials ended stale, {unordered} heard versions out of order:\n{}",
        stale.len(),
        stale.join("\n")
    );
}
