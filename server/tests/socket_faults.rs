//! The socket.io side of the real binary under bad input and bad timing: every error path,
//! malformed and oversize frames, heartbeats, namespaces, a request right after CONNECT.

mod common;

use common::{req, req_id, temp_db, Client, ServerProcess};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn every_bad_request_gets_an_error_and_writes_nothing() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--max-item-bytes", "1000"]);
    let mut c = Client::connect(server.port).await;
    let long = format!("/api/{}", "a".repeat(1100));
    let cases: Vec<(&str, Value, u64)> = vec![
        ("create", req("/todos", Some(json!({}))), 400),
        ("create", req("/api", Some(json!({}))), 400),
        ("create", req("/api/../todos", Some(json!({}))), 400),
        ("create", req("/api/todos/..", Some(json!({}))), 400),
        ("create", req("/api/to do", Some(json!({}))), 400),
        ("create", req("/api//todos", Some(json!({}))), 400),
        ("create", req(&long, Some(json!({}))), 400),
        ("create", req("/api/todos/1", Some(json!({}))), 400),
        ("create", req("/api/todos", Some(json!([1, 2]))), 400),
        ("create", req("/api/todos", Some(json!("text"))), 400),
        ("create", req("/api/todos", None), 400),
        ("update", req("/api/todos", Some(json!({}))), 400),
        ("update", req("/api/todos/1", Some(json!({"id": 2}))), 400),
        ("patch", req("/api/todos/1", Some(json!(null))), 400),
        ("delete", req("/api/todos", None), 400),
        (
            "read",
            json!({"signature": {"endPoint": "/api/todos"}, "data": [1]}),
            400,
        ),
        (
            "read",
            json!({"signature": {"endPoint": "/api/todos"}, "data": {"_limit": -1}}),
            400,
        ),
        ("read", json!({"signature": {"endPoint": 5}}), 400),
        ("read", json!({"signature": "x"}), 400),
        ("read", json!({}), 400),
        ("read", json!("not an object"), 400),
        ("read", json!(null), 400),
        ("create", req_id("/api/todos", Some(json!({})), ""), 400),
        (
            "create",
            req("/api/todos", Some(json!({"big": "x".repeat(1000)}))),
            413,
        ),
        ("frobnicate", req("/api/todos", Some(json!({}))), 400),
    ];
    for (method, arg, status) in cases {
        let error = c.err(method, arg.clone()).await;
        assert_eq!(error["status"], json!(status), "{method} {arg}: {error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    // An event with no argument at all.
    c.send("4299[\"create\"]").await;
    let reply = c.recv().await.unwrap();
    assert!(
        reply.starts_with("4399[{\"") && reply.contains("400"),
        "{reply}"
    );
    // A patch that would grow the stored model past the bound is refused and leaves it intact.
    let small = c
        .ok(
            "create",
            req("/api/todos", Some(json!({"big": "x".repeat(600)}))),
        )
        .await;
    let error = c
        .err(
            "patch",
            req("/api/todos/1", Some(json!({"more": "y".repeat(600)}))),
        )
        .await;
    assert_eq!(error["status"], 413);
    assert_eq!(
        c.ok("read", req("/api/todos", None)).await,
        json!([small]),
        "nothing half-written"
    );
}

/// What became of a connection after a frame: closed by the server, or still working (a read
/// sent after the frame was answered).
#[derive(Debug, PartialEq)]
enum After {
    Closed,
    Works,
}

/// Sends `frame` on a new connection, then a read as a sentinel, and reads until the read's
/// answer (the connection still works; an error reply to the frame may come first) or the
/// server's close. Silence is neither: it fails.
async fn after(port: u16, frame: Message) -> After {
    let mut c = Client::connect(port).await;
    c.send_raw(frame).await;
    if !c
        .send_raw(Message::text(format!(
            "42{}{}",
            SENTINEL_ACK,
            json!(["read", req("/api/todos", None)])
        )))
        .await
    {
        return After::Closed;
    }
    let sentinel = format!("43{SENTINEL_ACK}");
    loop {
        match c.recv().await {
            None => return After::Closed,
            Some(frame) if frame == "1" || frame.starts_with("41") => return After::Closed,
            Some(frame) if frame.starts_with(&sentinel) => {
                assert_eq!(frame, format!("{sentinel}[null,[]]"), "nothing stored");
                return After::Works;
            }
            Some(_) => {} // an error reply to the frame
        }
    }
}

/// The ack id of the sentinel read.
const SENTINEL_ACK: u32 = 777;

/// Frames the codec cannot make sense of: the server answers with an error or closes that one
/// connection (each outcome checked: a connection left open must still answer), a bystander
/// keeps working and nothing is stored.
#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut bystander = Client::connect(server.port).await;
    let garbage = [
        "42garbage",
        "42[",
        "42{\"a\":1}",
        "42[1,2]",
        "4",
        "49",
        "9",
        "",
        "0",
        "4x",
        "42[\"create\",{\"signature\"",
        "43",
        "431[null",
        "4\u{0}",
        "42/nope,[\"create\",{}]",
    ];
    let mut closed = 0;
    for frame in garbage {
        let outcome = after(server.port, Message::text(frame)).await;
        println!("{frame:?}: {outcome:?}");
        closed += usize::from(outcome == After::Closed);
    }
    assert!(closed > 0, "some of these close their connection");
    // Binary frames are not part of the protocol we speak: closed or ignored, checked the same.
    let outcome = after(server.port, Message::binary(vec![0u8, 1, 2, 255])).await;
    println!("binary: {outcome:?}");

    assert_eq!(
        bystander.ok("read", req("/api/todos", None)).await,
        json!([])
    );
    let created = bystander
        .ok("create", req("/api/todos", Some(json!({"ok": true}))))
        .await;
    assert_eq!(
        bystander.ok("read", req("/api/todos", None)).await,
        json!([created])
    );
}

#[tokio::test]
async fn oversize_frames_close_the_connection_and_nothing_else() {
    let (_dir, db) = temp_db();
    let mut server = ServerProcess::start(&db, &["--max-item-bytes", "1000"]);
    let mut bystander = Client::connect(server.port).await;
    let mut c = Client::connect(server.port).await;
    let huge = req("/api/todos", Some(json!({"big": "x".repeat(200_000)})));
    c.send_raw(Message::text(format!("421{}", json!(["create", huge]))))
        .await;
    assert!(c.closes().await);
    assert!(server.is_running());
    assert_eq!(
        bystander.ok("read", req("/api/todos", None)).await,
        json!([])
    );
    let mut fresh = Client::connect(server.port).await;
    assert_eq!(
        fresh.ok("create", req("/api/todos", Some(json!({})))).await["id"],
        json!(1)
    );
}

#[tokio::test]
async fn heartbeat_and_namespaces() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(
        &db,
        &[
            "--ping-interval-ms",
            "250",
            "--ping-timeout-ms",
            "1000",
            "--namespace",
            "/,/admin",
        ],
    );
    let mut c = Client::connect(server.port).await;
    // The server pings; answering keeps the connection.
    for _ in 0..3 {
        let frame = c
            .recv_raw(std::time::Duration::from_secs(2))
            .await
            .expect("a frame");
        assert_eq!(frame.as_deref(), Some("2"));
        c.send("3").await;
    }
    assert_eq!(c.ok("read", req("/api/todos", None)).await, json!([]));
    // Not answering closes it.
    let mut silent = Client::connect(server.port).await;
    let mut closed = false;
    for _ in 0..10 {
        match silent.recv_raw(std::time::Duration::from_secs(2)).await {
            Some(Some(frame)) if frame == "2" => continue,
            Some(None) => {
                closed = true;
                break;
            }
            // Engine.IO CLOSE before the WebSocket closes.
            Some(Some(frame)) if frame == "1" => {
                closed = true;
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(closed, "an unanswered ping closes the connection");

    // A configured namespace works the same way.
    let mut admin = Client::connect_ns(server.port, "/admin").await;
    let created = admin
        .ok("create", req("/api/todos", Some(json!({"ns": "admin"}))))
        .await;
    // (`c` has not answered pings while `silent` was watched: read through a fresh client.)
    let mut root = Client::connect(server.port).await;
    let all = root.ok("read", req("/api/todos", None)).await;
    assert_eq!(all, json!([created]));
}

/// Regression: socketioxide answers CONNECT before it runs the connect handler, so handlers
/// registered there missed an event sent right after `40{"sid":…}`.
#[tokio::test]
async fn a_request_right_after_connect_is_answered() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    // Several connections at once keep the server's runtime busy, which widens the window.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                // The request goes out the moment `40{"sid":…}` is read.
                let mut c = Client::connect(port).await;
                c.send(&format!("421{}", json!(["read", req("/api/todos", None)])))
                    .await;
                assert_eq!(c.recv().await.unwrap(), "431[null,[]]");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
