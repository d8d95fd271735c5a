//! `bss-server --db postgres://…` when the database fails: unreachable at start, the process
//! exits non-zero with one clear line; lost at run time, requests fail with 503
//! `{status, message}` over the socket and REST, sockets stay connected, and everything works
//! again (a request refused during the outage may be retried with its requestId) once the
//! database is back, live broadcasts included (the change feed listens again).

mod common;
mod services;

use std::path::Path;
use std::process::Command;

use common::{req, req_id, Client, ServerProcess};
use serde_json::{json, Value};
use services::Postgres;

#[test]
fn an_unreachable_database_at_start_is_one_clear_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgresql://postgres@{}:5432/nowhere",
        dir.path().to_str().unwrap().replace('/', "%2F")
    );
    let output = Command::new(env!("CARGO_BIN_EXE_bss-server"))
        .args(["--port", "0", "--db", &url])
        .env("RUST_LOG", "off")
        .output()
        .expect("run bss-server");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "it never listened");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("bss-server: cannot open postgresql://")
            && lines[0].contains("connect"),
        "{stderr}"
    );
}

async fn rest_post(server: &ServerProcess, request_id: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/items", server.url()))
        .header("x-request-id", request_id)
        .json(&json!({"via": "rest"}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_is_503_until_it_returns() {
    let mut pg = Postgres::start();
    let url = pg.create_database("faults");
    let server = ServerProcess::start(Path::new(&url), &[]);
    let mut c = Client::connect(server.port).await;
    let mut watcher = Client::connect(server.port).await;
    let subscribed = watcher.ok("subscribe", req("/api/items", None)).await;
    assert_eq!(subscribed, json!({"endPoint": "/api/items"}));
    let first = c
        .ok("create", req("/api/items", Some(json!({"n": 1}))))
        .await;
    assert_eq!(first, json!({"id": 1, "n": 1}));
    assert_eq!(rest_post(&server, "rest-1").await.0, 201);
    for n in [1, 2] {
        let (event, payload) = watcher.next_event().await;
        assert_eq!(
            (event.as_str(), &payload["item"]["id"]),
            ("created", &json!(n))
        );
    }

    pg.stop();
    let refused = c
        .err(
            "create",
            req_id("/api/items", Some(json!({"n": 2})), "outage"),
        )
        .await;
    assert_eq!(
        refused,
        json!({"status": 503, "message": "database unavailable"})
    );
    assert_eq!(c.err("read", req("/api/items", None)).await["status"], 503);
    let (status, body) = rest_post(&server, "rest-outage").await;
    assert_eq!(
        (status, body),
        (
            503,
            json!({"status": 503, "message": "database unavailable"})
        )
    );

    pg.resume();
    // The same socket, still connected; the refused write was not recorded, so its retry
    // applies it now.
    let retried = c
        .ok(
            "create",
            req_id("/api/items", Some(json!({"n": 2})), "outage"),
        )
        .await;
    assert_eq!(retried, json!({"id": 3, "n": 2}));
    assert_eq!(rest_post(&server, "rest-outage").await.0, 201);
    // The feed's connection was lost with the database: it listens again (catching up on
    // what committed before), so both writes since are broadcast, once each, in order.
    for n in [3, 4] {
        let (event, payload) = watcher.next_event().await;
        assert_eq!(
            (event.as_str(), &payload["item"]["id"]),
            ("created", &json!(n))
        );
    }
    let all = c.ok("read", req("/api/items", None)).await;
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    server.stop();
}
