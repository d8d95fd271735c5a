//! Document versions on the wire, over real sockets and HTTP: the version in acks and reply
//! events, `signature.ifVersion` (409 with the stored document, the same on a replay), REST's
//! `ETag` and `If-Match` (412 with the same body), and nothing written by a refused write.

mod common;

use common::{req, req_id, temp_db, Client, ServerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A request argument with `signature.ifVersion`.
fn conditional(endpoint: &str, item: Option<Value>, if_version: Value, id: Option<&str>) -> Value {
    let mut arg = match id {
        Some(id) => req_id(endpoint, item, id),
        None => req(endpoint, item),
    };
    arg["signature"]["ifVersion"] = if_version;
    arg
}

#[tokio::test]
async fn socket_writes_answer_versions_and_refuse_stale_ones() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let created = c
        .ok_versioned("create", req("/api/todos", Some(json!({"t": "a"}))))
        .await;
    assert_eq!(created, (json!({"id": 1, "t": "a"}), Some(1)));
    let read = c.ok_versioned("read", req("/api/todos/1", None)).await;
    assert_eq!(read, (json!({"id": 1, "t": "a"}), Some(1)));
    // A collection read keeps its shape: no version.
    assert_eq!(c.ack("read", req("/api/todos", None)).await.len(), 2);

    let matching = conditional("/api/todos/1", Some(json!({"t": "b"})), json!(1), None);
    let patched = c.ok_versioned("patch", matching).await;
    assert_eq!(patched, (json!({"id": 1, "t": "b"}), Some(2)));

    // Stale: a 409 with what is stored, nothing written; its replay answers the same.
    let stale = conditional(
        "/api/todos/1",
        Some(json!({"t": "x"})),
        json!(1),
        Some("s-1"),
    );
    let conflict = c.err("patch", stale.clone()).await;
    assert_eq!(conflict["status"], 409, "{conflict}");
    assert!(conflict["message"].is_string(), "{conflict}");
    assert_eq!(conflict["current"], json!({"id": 1, "t": "b"}));
    assert_eq!(conflict["version"], 2);
    c.ok("patch", req("/api/todos/1", Some(json!({"t": "c"}))))
        .await;
    let mut retry = Client::connect(server.port).await;
    assert_eq!(retry.err("patch", stale).await, conflict, "the replay");
    let read = c.ok_versioned("read", req("/api/todos/1", None)).await;
    assert_eq!(read, (json!({"id": 1, "t": "c"}), Some(3)));

    // 0: only if absent.
    let fresh = conditional("/api/todos/new", Some(json!({})), json!(0), None);
    assert_eq!(c.ok_versioned("update", fresh.clone()).await.1, Some(1));
    assert_eq!(c.err("update", fresh).await["version"], 1);
    let delete = conditional("/api/todos/1", None, json!(3), None);
    assert_eq!(c.ok_versioned("delete", delete).await, (json!({}), Some(4)));

    for bad in [json!(-1), json!("3"), json!(1.5), json!(true)] {
        let arg = conditional("/api/todos/new", Some(json!({})), bad.clone(), None);
        assert_eq!(c.err("patch", arg).await["status"], 400, "{bad}");
    }
}

#[tokio::test]
async fn reply_events_carry_the_version_and_the_conflict() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    c.send(&format!(
        "42{}",
        json!(["create", req("/api/todos", Some(json!({"t": 1})))])
    ))
    .await;
    let created = c.next_event_versioned().await;
    assert_eq!(
        created,
        (
            "create:/api/todos".into(),
            json!({"id": 1, "t": 1}),
            Some(1)
        )
    );
    let stale = conditional("/api/todos/1", Some(json!({"t": 2})), json!(7), None);
    c.send(&format!("42{}", json!(["patch", stale]))).await;
    let (name, payload, version) = c.next_event_versioned().await;
    assert_eq!((name.as_str(), version), ("patch:/api/todos/1", None));
    assert_eq!(
        payload["error"],
        json!({"status": 409, "message": payload["error"]["message"], "current": {"id": 1, "t": 1}, "version": 1})
    );
}

#[tokio::test]
async fn rest_answers_etags_and_checks_if_match() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let etag = |response: &reqwest::Response| {
        response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned())
    };

    let created = http
        .post(url("/api/todos"))
        .json(&json!({"t": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(etag(&created).as_deref(), Some("\"1\""));
    let got = http.get(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(etag(&got).as_deref(), Some("\"1\""));
    let listed = http.get(url("/api/todos")).send().await.unwrap();
    assert_eq!(etag(&listed), None, "a collection has no single version");

    let put = http
        .put(url("/api/todos/1"))
        .header("if-match", "\"1\"")
        .json(&json!({"t": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    assert_eq!(etag(&put).as_deref(), Some("\"2\""));

    // Stale, in each accepted spelling: 412 with the conflict body, nothing written.
    for stale in ["\"1\"", "W/\"1\"", "1"] {
        let refused = http
            .patch(url("/api/todos/1"))
            .header("if-match", stale)
            .json(&json!({"t": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED, "{stale}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["status"], 412);
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(
            (&body["current"], &body["version"]),
            (&json!({"id": 1, "t": "b"}), &json!(2))
        );
    }
    let got = http.get(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(etag(&got).as_deref(), Some("\"2\""));
    assert_eq!(
        got.json::<Value>().await.unwrap(),
        json!({"id": 1, "t": "b"})
    );

    let bad = http
        .delete(url("/api/todos/1"))
        .header("if-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let deleted = http
        .delete(url("/api/todos/1"))
        .header("if-match", "W/\"2\"")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    assert_eq!(etag(&deleted).as_deref(), Some("\"3\""));
    let gone = http.get(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
