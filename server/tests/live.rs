//! Live collections over real sockets: `subscribe`/`unsubscribe` in both reply modes, the
//! broadcasts after socket and REST writes (not echoed to the writer, not repeated for a
//! replayed request id), across namespaces, and the dedupe counters at `/_bss/stats`.

mod common;

use common::{req, req_id, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

/// Sends `method` with `arg` and ack id `id` on namespace prefix `nsp` ("" or "/admin,"), and
/// returns the events that arrived before the ack, plus the ack's arguments. The ack is the
/// marker that tells "no broadcast came" from "not yet".
async fn round_trip(
    c: &mut Client,
    nsp: &str,
    id: u64,
    method: &str,
    arg: Value,
) -> (Vec<(String, Value)>, Vec<Value>) {
    c.send(&format!("42{nsp}{id}{}", json!([method, arg])))
        .await;
    let ack = format!("43{nsp}{id}");
    let event = format!("42{nsp}");
    let mut events = Vec::new();
    loop {
        let frame = c.recv().await.expect("frame before close");
        if let Some(rest) = frame.strip_prefix(&ack) {
            return (events, serde_json::from_str(rest).expect("ack json"));
        }
        if let Some(rest) = frame.strip_prefix(&event) {
            let mut pair: Vec<Value> = serde_json::from_str(rest).expect("event json");
            let payload = pair.pop().expect("payload");
            events.push((pair[0].as_str().expect("name").to_owned(), payload));
        }
    }
}

/// The events that arrive on `c` before a harmless read is answered.
async fn pending_events(c: &mut Client, nsp: &str, id: u64) -> Vec<(String, Value)> {
    round_trip(c, nsp, id, "read", req("/api/other", None))
        .await
        .0
}

async fn subscribe(c: &mut Client, nsp: &str, id: u64, endpoint: &str) {
    let (_, reply) = round_trip(c, nsp, id, "subscribe", req(endpoint, None)).await;
    assert_eq!(
        Value::from(reply),
        json!([null, {"endPoint": "/api/todos"}])
    );
}

#[tokio::test]
async fn subscribers_see_every_committed_write_but_the_writer_and_strangers_do_not() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut writer = Client::connect(server.port).await;
    let mut watcher = Client::connect(server.port).await;
    let mut stranger = Client::connect(server.port).await;
    subscribe(&mut writer, "", 1, "/api/todos").await;
    // A trailing slash names the same collection, hence the same room.
    subscribe(&mut watcher, "", 1, "/api/todos/").await;

    let (echo, reply) = round_trip(
        &mut writer,
        "",
        2,
        "create",
        req_id("/api/todos", Some(json!({"title": "a"})), "c-1"),
    )
    .await;
    assert_eq!(
        Value::from(reply),
        json!([null, {"id": 1, "title": "a"}, {"version": 1}])
    );
    assert!(
        echo.is_empty(),
        "the writer got its own broadcast: {echo:?}"
    );
    // Each broadcast carries the model's version and its place in this node's feed.
    let created = json!({"endPoint": "/api/todos", "collection": "/api/todos", "item": {"id": 1, "title": "a"}, "version": 1, "seq": 1});
    assert_eq!(watcher.next_event().await, ("created".into(), created));

    writer
        .ok("patch", req("/api/todos/1", Some(json!({"done": true}))))
        .await;
    let patched = watcher.next_event().await;
    assert_eq!(patched.0, "patched");
    assert_eq!(
        patched.1,
        json!({"endPoint": "/api/todos/1", "collection": "/api/todos", "item": {"id": 1, "title": "a", "done": true}, "version": 2, "seq": 2})
    );
    writer
        .ok("update", req("/api/todos/1", Some(json!({"title": "b"}))))
        .await;
    assert_eq!(
        watcher.next_event().await,
        (
            "updated".into(),
            json!({"endPoint": "/api/todos/1", "collection": "/api/todos", "item": {"id": 1, "title": "b"}, "version": 3, "seq": 3})
        )
    );
    writer.ok("delete", req("/api/todos/1", None)).await;
    assert_eq!(
        watcher.next_event().await,
        (
            "deleted".into(),
            json!({"endPoint": "/api/todos/1", "collection": "/api/todos", "item": {"id": 1}, "version": 4, "seq": 4})
        )
    );
    // Failed writes and reads broadcast nothing.
    let missing = writer.err("delete", req("/api/todos/1", None)).await;
    assert_eq!(missing["status"], 404);
    writer.ok("read", req("/api/todos", None)).await;
    // Another collection's writes stay in its own room.
    writer
        .ok("create", req("/api/notes", Some(json!({"n": 1}))))
        .await;
    let more = events_until_sentinel(&mut watcher, &mut writer, "end").await;
    assert!(more.is_empty(), "{more:?}");

    assert!(pending_events(&mut watcher, "", 50).await.is_empty());
    assert!(pending_events(&mut writer, "", 50).await.is_empty());
    assert!(pending_events(&mut stranger, "", 50).await.is_empty());
}

#[tokio::test]
async fn replayed_request_ids_are_not_broadcast_twice() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    let stats = || async {
        http.get(format!("{}/_bss/stats", server.url()))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let mut writer = Client::connect(server.port).await;
    let mut watcher = Client::connect(server.port).await;
    subscribe(&mut watcher, "", 1, "/api/todos").await;

    let arg = req_id("/api/todos", Some(json!({"title": "once"})), "r-1");
    let first = writer.ok("create", arg.clone()).await;
    // The retry after a lost ack: a second connection, the same requestId.
    let mut retry = Client::connect(server.port).await;
    assert_eq!(retry.ok("create", arg).await, first);
    let events = events_until_sentinel(&mut watcher, &mut writer, "s-1").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "created");
    let counted = stats().await;
    assert_eq!(
        [
            &counted["writes"],
            &counted["replays"],
            &counted["broadcasts"]
        ],
        [&json!(2), &json!(1), &json!(2)],
        "{counted}"
    );

    // The same over REST with X-Request-Id.
    for _ in 0..2 {
        let response = http
            .post(format!("{}/api/todos", server.url()))
            .header("x-request-id", "rest-1")
            .json(&json!({"title": "rest"}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    let events = events_until_sentinel(&mut watcher, &mut writer, "s-2").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1["item"]["title"], "rest");
    let counted = stats().await;
    assert_eq!(
        [
            &counted["writes"],
            &counted["replays"],
            &counted["broadcasts"]
        ],
        [&json!(4), &json!(2), &json!(4)],
        "{counted}"
    );
}

/// The events `watcher` hears before the broadcast of a sentinel that `writer` creates now in
/// `/api/todos`: broadcasts go out in commit order, so these are all the broadcasts of
/// earlier writes that were still on their way.
async fn events_until_sentinel(
    watcher: &mut Client,
    writer: &mut Client,
    tag: &str,
) -> Vec<(String, Value)> {
    let sentinel = req("/api/todos", Some(json!({ "sentinel": tag })));
    writer.ok("create", sentinel).await;
    let mut events = Vec::new();
    loop {
        let (name, payload) = watcher.next_event().await;
        if payload["item"]["sentinel"] == tag {
            return events;
        }
        events.push((name, payload));
    }
}

#[tokio::test]
async fn rest_writes_reach_every_subscriber_in_every_namespace() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--namespace", "/", "--namespace", "/admin"]);
    let mut root = Client::connect(server.port).await;
    let mut admin = Client::connect_ns(server.port, "/admin").await;
    subscribe(&mut root, "", 1, "/api/todos").await;
    subscribe(&mut admin, "/admin,", 1, "/api/todos").await;

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/todos", server.url()))
        .json(&json!({"title": "rest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = (
        "created".to_owned(),
        json!({"endPoint": "/api/todos", "collection": "/api/todos", "item": created, "version": 1, "seq": 1}),
    );
    assert_eq!(root.next_event().await, expected);
    assert_eq!(admin.next_event().await, expected);

    // A socket write in "/" reaches the subscriber in "/admin" (one store, one room name).
    root.ok("patch", req("/api/todos/1", Some(json!({"x": 1}))))
        .await;
    assert_eq!(admin.next_event().await.0, "patched");
    assert!(pending_events(&mut root, "", 9).await.is_empty());
}

#[tokio::test]
async fn subscriptions_in_event_mode_and_their_errors() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut watcher = Client::connect(server.port).await;
    let mut writer = Client::connect(server.port).await;

    let reply = watcher.event("subscribe", req("/api/todos", None)).await;
    assert_eq!(
        reply,
        (
            "subscribe:/api/todos".into(),
            json!({"endPoint": "/api/todos"})
        )
    );
    writer
        .ok("create", req("/api/todos", Some(json!({"t": 1}))))
        .await;
    assert_eq!(watcher.next_event().await.0, "created");

    // Errors: a model endpoint, a bad path, no signature; answered in both modes.
    let (name, error) = watcher.event("subscribe", req("/api/todos/1", None)).await;
    assert_eq!(name, "subscribe:/api/todos/1");
    assert_eq!(error["error"]["status"], 400);
    assert_eq!(
        watcher.err("subscribe", req("/elsewhere", None)).await["status"],
        400
    );
    assert_eq!(
        watcher.err("subscribe", json!({"item": 1})).await["status"],
        400
    );
    let (name, error) = watcher.event("unsubscribe", json!("nope")).await;
    assert_eq!(name, "error");
    assert_eq!(error["error"]["status"], 400);

    // After unsubscribe nothing more arrives.
    let reply = watcher.event("unsubscribe", req("/api/todos", None)).await;
    assert_eq!(reply.0, "unsubscribe:/api/todos");
    writer
        .ok("create", req("/api/todos", Some(json!({"t": 2}))))
        .await;
    assert!(pending_events(&mut watcher, "", 77).await.is_empty());
}
