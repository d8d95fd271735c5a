//! The socket.io side of the real binary, spoken frame by frame: CRUD in both reply modes,
//! requestId dedupe, persistence across restarts, concurrent writers.

mod common;

use common::{req, req_id, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

#[tokio::test]
async fn crud_with_acks() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;

    let a = c
        .ok(
            "create",
            req("/api/todos", Some(json!({"title": "a", "done": false}))),
        )
        .await;
    assert_eq!(a, json!({"id": 1, "title": "a", "done": false}));
    let b = c
        .ok(
            "create",
            req(
                "/api/todos",
                Some(json!({"title": "b", "done": true, "id": 99})),
            ),
        )
        .await;
    assert_eq!(b["id"], json!(2), "the server assigns ids");
    c.ok(
        "create",
        req("/api/todos", Some(json!({"title": "c", "done": true}))),
    )
    .await;
    // A nested collection has its own ids.
    let nested = c
        .ok("create", req("/api/users/7/todos", Some(json!({"x": 1}))))
        .await;
    assert_eq!(nested["id"], json!(1));

    let all = c.ok("read", req("/api/todos", None)).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(all[0], a);
    assert_eq!(
        c.ok("read", req("/api/todos/2", None)).await["title"],
        json!("b")
    );

    let mut filtered = req("/api/todos", None);
    filtered["data"] = json!({"done": true});
    assert_eq!(
        c.ok("read", filtered).await,
        json!([{"id": 2, "title": "b", "done": true}, {"id": 3, "title": "c", "done": true}])
    );
    let mut paged = req("/api/todos", None);
    paged["data"] = json!({"_limit": 1, "_offset": 1});
    assert_eq!(
        c.ok("read", paged).await.as_array().unwrap()[0]["id"],
        json!(2)
    );
    let mut filtered_paged = req("/api/todos", None);
    filtered_paged["data"] = json!({"done": true, "_offset": 1});
    assert_eq!(
        c.ok("read", filtered_paged).await.as_array().unwrap().len(),
        1
    );

    let updated = c
        .ok(
            "update",
            req("/api/todos/1", Some(json!({"id": 1, "title": "A"}))),
        )
        .await;
    assert_eq!(updated, json!({"id": 1, "title": "A"}), "update replaces");
    let patched = c
        .ok("patch", req("/api/todos/1", Some(json!({"done": true}))))
        .await;
    assert_eq!(
        patched,
        json!({"id": 1, "title": "A", "done": true}),
        "patch merges"
    );
    assert_eq!(c.ok("read", req("/api/todos/1", None)).await, patched);

    assert_eq!(c.ok("delete", req("/api/todos/1", None)).await, json!({}));
    let missing = c.err("read", req("/api/todos/1", None)).await;
    assert_eq!(missing, json!({"status": 404, "message": "not found"}));
    assert_eq!(
        c.err("delete", req("/api/todos/1", None)).await["status"],
        404
    );
    assert_eq!(
        c.err("patch", req("/api/todos/1", Some(json!({"a": 1}))))
            .await["status"],
        404
    );

    // PUT semantics: update of an absent model with a client-chosen id stores it; later
    // creates go on with the collection's own sequence (a client's id never moves it, see
    // tests/ids.rs) and skip that id when they reach it.
    let chosen = c
        .ok(
            "update",
            req("/api/todos/10", Some(json!({"title": "ten"}))),
        )
        .await;
    assert_eq!(chosen, json!({"id": 10, "title": "ten"}));
    assert_eq!(
        c.ok("create", req("/api/todos", Some(json!({})))).await["id"],
        json!(4)
    );
    let named = c
        .ok("update", req("/api/todos/abc", Some(json!({"t": 1}))))
        .await;
    assert_eq!(named["id"], json!("abc"));
    // A deleted id is never handed out again.
    c.ok("delete", req("/api/todos/4", None)).await;
    assert_eq!(
        c.ok("create", req("/api/todos", Some(json!({})))).await["id"],
        json!(5)
    );
}

#[tokio::test]
async fn crud_with_events() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;

    let (name, created) = c
        .event("create", req("/api/todos", Some(json!({"title": "a"}))))
        .await;
    assert_eq!(name, "create:/api/todos");
    assert_eq!(created, json!({"id": 1, "title": "a"}));

    let mut with_ctx = req("/api/todos", None);
    with_ctx["signature"]["ctx"] = json!("list-1");
    let (name, all) = c.event("read", with_ctx).await;
    assert_eq!(name, "read:/api/todos:list-1");
    assert_eq!(all, json!([{"id": 1, "title": "a"}]));

    let (name, one) = c.event("read", req("/api/todos/1", None)).await;
    assert_eq!((name.as_str(), one), ("read:/api/todos/1", created.clone()));
    let (name, updated) = c
        .event("update", req("/api/todos/1", Some(json!({"title": "b"}))))
        .await;
    assert_eq!(
        (name.as_str(), updated),
        ("update:/api/todos/1", json!({"id": 1, "title": "b"}))
    );
    let (name, patched) = c
        .event("patch", req("/api/todos/1", Some(json!({"done": true}))))
        .await;
    assert_eq!(
        (name.as_str(), patched),
        (
            "patch:/api/todos/1",
            json!({"id": 1, "title": "b", "done": true})
        )
    );
    let (name, deleted) = c.event("delete", req("/api/todos/1", None)).await;
    assert_eq!((name.as_str(), deleted), ("delete:/api/todos/1", json!({})));

    let (name, error) = c.event("read", req("/api/todos/1", None)).await;
    assert_eq!(name, "read:/api/todos/1");
    assert_eq!(
        error,
        json!({"error": {"status": 404, "message": "not found"}})
    );
    let (name, error) = c
        .event("create", req("/api/todos/..", Some(json!({}))))
        .await;
    assert_eq!(
        (name.as_str(), error["error"]["status"].clone()),
        ("create:/api/todos/..", json!(400))
    );
    // No endPoint to name the reply after: the generic error event.
    let (name, error) = c.event("create", json!({"item": {}})).await;
    assert_eq!(
        (name.as_str(), error["error"]["status"].clone()),
        ("error", json!(400))
    );
    let (name, error) = c.event("frobnicate", req("/api/todos", None)).await;
    assert_eq!(name, "error");
    assert_eq!(error["error"]["status"], 400);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("frobnicate"));
}

#[tokio::test]
async fn repeated_request_ids_apply_once() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let first = c
        .ok(
            "create",
            req_id("/api/todos", Some(json!({"t": 1})), "req-1"),
        )
        .await;
    let again = c
        .ok(
            "create",
            req_id("/api/todos", Some(json!({"t": 1})), "req-1"),
        )
        .await;
    assert_eq!(first, again);
    // Event mode replays it too, and from another connection (a reconnected client).
    let mut other = Client::connect(server.port).await;
    let (_, replay) = other
        .event(
            "create",
            req_id("/api/todos", Some(json!({"t": 1})), "req-1"),
        )
        .await;
    assert_eq!(replay, first);
    assert_eq!(
        c.ok("read", req("/api/todos", None))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let p1 = c
        .ok(
            "patch",
            req_id("/api/todos/1", Some(json!({"n": 1})), "req-2"),
        )
        .await;
    c.ok("patch", req("/api/todos/1", Some(json!({"n": 2}))))
        .await;
    let p2 = c
        .ok(
            "patch",
            req_id("/api/todos/1", Some(json!({"n": 1})), "req-2"),
        )
        .await;
    assert_eq!(p1, p2, "the original result, not a re-application");
    assert_eq!(c.ok("read", req("/api/todos/1", None)).await["n"], json!(2));

    c.ok("delete", req_id("/api/todos/1", None, "req-3")).await;
    assert_eq!(
        c.ok("delete", req_id("/api/todos/1", None, "req-3")).await,
        json!({}),
        "not a 404"
    );

    let reused = c
        .err("create", req_id("/api/other", Some(json!({})), "req-1"))
        .await;
    assert_eq!(reused["status"], 409);
    // A failed write records nothing: the same id can succeed later.
    assert_eq!(
        c.err("patch", req_id("/api/todos/5", Some(json!({})), "req-4"))
            .await["status"],
        404
    );
    c.ok("update", req("/api/todos/5", Some(json!({})))).await;
    c.ok(
        "patch",
        req_id("/api/todos/5", Some(json!({"x": 1})), "req-4"),
    )
    .await;

    // The same requestId racing on many connections at once is applied exactly once.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(port).await;
            c.ok("create", req_id("/api/race", Some(json!({})), "race-1"))
                .await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
    assert_eq!(
        c.ok("read", req("/api/race", None))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn data_survives_a_restart() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    for i in 0..5 {
        c.ok(
            "create",
            req_id("/api/todos", Some(json!({"i": i})), &format!("r{i}")),
        )
        .await;
    }
    c.ok("delete", req("/api/todos/3", None)).await;
    let before = c.ok("read", req("/api/todos", None)).await;
    // SIGTERM with a client still connected: it is told, and the server exits cleanly.
    let stopping = std::thread::spawn(move || server.stop());
    assert!(c.closes().await);
    stopping.join().unwrap();

    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    assert_eq!(c.ok("read", req("/api/todos", None)).await, before);
    assert_eq!(
        c.ok("create", req("/api/todos", Some(json!({})))).await["id"],
        json!(6)
    );
    // Recorded requestIds survive too.
    assert_eq!(
        c.ok("create", req_id("/api/todos", Some(json!({"i": 0})), "r0"))
            .await["id"],
        json!(1)
    );
    assert_eq!(
        c.ok("read", req("/api/todos", None))
            .await
            .as_array()
            .unwrap()
            .len(),
        5
    );
    server.stop();
}

#[tokio::test]
async fn concurrent_writers_get_unique_ids() {
    const CLIENTS: usize = 20;
    const WRITES: usize = 50;
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let port = server.port;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(port).await;
            // Pipelined: all requests go out before the replies are read.
            for n in 0..WRITES {
                let arg = req_id(
                    "/api/load",
                    Some(json!({"client": client, "n": n})),
                    &format!("{client}-{n}"),
                );
                c.send(&format!("42{}{}", n + 1, json!(["create", arg])))
                    .await;
            }
            let mut ids = Vec::new();
            while ids.len() < WRITES {
                let frame = c.recv().await.expect("reply");
                let Some(rest) = frame.strip_prefix("43") else {
                    continue;
                };
                let start = rest.find('[').unwrap();
                let reply: Vec<Value> = serde_json::from_str(&rest[start..]).unwrap();
                assert!(reply[0].is_null(), "{frame}");
                ids.push(reply[1]["id"].as_u64().unwrap());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} creates over {CLIENTS} connections in {elapsed:?}",
        ids.len()
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (1..=(CLIENTS * WRITES) as u64).collect::<Vec<_>>());
    let mut c = Client::connect(server.port).await;
    let all = c.ok("read", req("/api/load", None)).await;
    assert_eq!(all.as_array().unwrap().len(), CLIENTS * WRITES);
}

/// One socket pipelining a whole burst (as the client does with 1,000 `collection.create`
/// calls at once) gets every reply: socketioxide's default send buffer of 128 packets used to
/// drop the replies past it while their writes were committed.
#[tokio::test]
async fn one_socket_pipelining_a_burst_gets_every_reply() {
    const BURST: usize = 1000;
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    for n in 0..BURST {
        let arg = req_id("/api/burst", Some(json!({ "n": n })), &format!("burst-{n}"));
        c.send(&format!("42{}{}", n + 1, json!(["create", arg])))
            .await;
    }
    let mut acked = vec![false; BURST];
    for _ in 0..BURST {
        let frame = c.recv().await.expect("every reply before close");
        let rest = frame.strip_prefix("43").expect("an ack");
        let start = rest.find('[').unwrap();
        let ack_id: usize = rest[..start].parse().unwrap();
        let reply: Vec<Value> = serde_json::from_str(&rest[start..]).unwrap();
        assert!(reply[0].is_null(), "{frame}");
        acked[ack_id - 1] = true;
    }
    assert!(acked.iter().all(|&a| a));
}
