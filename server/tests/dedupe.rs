//! Idempotent retries at the edges the fault test relies on: a request id recorded before a
//! `kill -9` still answers its retry after the restart, and the same request arriving on many
//! connections at once (a retry racing its original) is applied once.

mod common;

use common::{req, req_id, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

async fn stats(server: &ServerProcess) -> Value {
    reqwest::get(format!("{}/_bss/stats", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_request_id_survives_kill_9_and_a_restart() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let create = req_id("/api/todos", Some(json!({"t": "x"})), "before-crash");
    let first = c.ok("create", create.clone()).await;
    let patch = req_id("/api/todos/1", Some(json!({"n": 1})), "patch-before-crash");
    let patched = c.ok("patch", patch.clone()).await;
    // Dropping the process handle is SIGKILL: no graceful shutdown.
    drop(c);
    drop(server);

    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    c.ok("patch", req("/api/todos/1", Some(json!({"n": 2}))))
        .await;
    assert_eq!(c.ok("create", create).await, first);
    assert_eq!(c.ok("patch", patch).await, patched, "the recorded result");
    let stored = c.ok("read", req("/api/todos", None)).await;
    assert_eq!(
        stored,
        json!([{"id": 1, "t": "x", "n": 2}]),
        "nothing re-applied"
    );
    let counted = stats(&server).await;
    assert_eq!(
        [
            &counted["writes"],
            &counted["replays"],
            &counted["broadcasts"]
        ],
        [&json!(1), &json!(2), &json!(1)],
        "{counted}"
    );
}

#[tokio::test]
async fn the_same_request_on_many_connections_at_once_is_applied_once() {
    const COPIES: usize = 16;
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut clients = Vec::new();
    for _ in 0..COPIES {
        clients.push(Client::connect(server.port).await);
    }
    let arg = req_id("/api/race", Some(json!({"once": true})), "raced");
    let packet = format!("421{}", json!(["create", arg]));
    // Every copy is on the wire before any answer is read.
    for c in &mut clients {
        c.send(&packet).await;
    }
    let mut replies = Vec::new();
    for c in &mut clients {
        let frame = loop {
            let frame = c.recv().await.expect("ack");
            if frame.starts_with("431") {
                break frame;
            }
        };
        replies.push(frame);
    }
    assert!(replies.iter().all(|r| r == &replies[0]), "{replies:?}");
    assert_eq!(
        replies[0],
        r#"431[null,{"id":1,"once":true},{"version":1}]"#
    );
    let mut c = Client::connect(server.port).await;
    assert_eq!(
        c.ok("read", req("/api/race", None)).await,
        json!([{"id": 1, "once": true}])
    );
    let counts = stats(&server).await;
    assert_eq!(counts["writes"], 1);
    assert_eq!(counts["replays"], (COPIES - 1) as u64);
}
