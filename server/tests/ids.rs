//! Ids one client chooses cannot break the collection for the others: integer ids are
//! 1..=2^53−1, out-of-range ones are refused (or are string ids when named as strings), the
//! sequence never moves to a client's id and is checked for overflow, and big numbers inside
//! items come back exactly as written.

mod common;

use common::{req, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

const MAX_ID: i64 = (1 << 53) - 1;

/// The row: `update /api/victim/9223372036854775807` made every later create a 500,
/// and a negative id made creates hand out negative ids.
#[tokio::test]
async fn out_of_range_ids_are_refused_and_never_move_the_sequence() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    for id in [
        "9223372036854775807",
        "9223372036854775808",
        "9007199254740992",
        "0",
        "-5",
        "-9223372036854775808",
    ] {
        let endpoint = format!("/api/victim/{id}");
        let error = c.err("update", req(&endpoint, Some(json!({"x": 1})))).await;
        assert_eq!(error["status"], 400, "update {id}: {error}");
        let number: Value = serde_json::from_str(id).unwrap();
        let error = c
            .err("update", req(&endpoint, Some(json!({"id": number}))))
            .await;
        assert_eq!(
            error["status"], 400,
            "update {id} with a numeric id: {error}"
        );
        let error = c.err("patch", req(&endpoint, Some(json!({"x": 1})))).await;
        assert_eq!(error["status"], 400, "patch {id}: {error}");
    }
    // Named as a string, such an id is an ordinary string id.
    let named = c
        .ok(
            "update",
            req("/api/victim/-5", Some(json!({"id": "-5", "x": 1}))),
        )
        .await;
    assert_eq!(named, json!({"id": "-5", "x": 1}));
    assert_eq!(c.ok("read", req("/api/victim/-5", None)).await, named);

    // The largest integer id is fine, and does not exhaust the sequence for anyone else.
    let top = format!("/api/victim/{MAX_ID}");
    c.ok("update", req(&top, Some(json!({"top": true})))).await;
    let mut other = Client::connect(server.port).await;
    for expected in 1..=3 {
        let created = other
            .ok("create", req("/api/victim", Some(json!({}))))
            .await;
        assert_eq!(created["id"], expected);
    }
    assert_eq!(other.ok("read", req(&top, None)).await["id"], MAX_ID);
}

/// Ids a client chose with `update` are skipped by `create`, never overwritten, and never
/// moved into the sequence; the sequence survives a restart.
#[tokio::test]
async fn create_skips_client_chosen_ids() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    for id in [2, 3, 5] {
        c.ok(
            "update",
            req(&format!("/api/t/{id}"), Some(json!({"mine": id}))),
        )
        .await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(c.ok("create", req("/api/t", Some(json!({})))).await["id"].clone());
    }
    assert_eq!(ids, vec![json!(1), json!(4), json!(6)]);
    for id in [2, 3, 5] {
        let model = c.ok("read", req(&format!("/api/t/{id}"), None)).await;
        assert_eq!(model, json!({"id": id, "mine": id}));
    }
    drop(c);
    server.stop();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let created = c.ok("create", req("/api/t", Some(json!({})))).await;
    assert_eq!(created["id"], 7);
}

/// A sequence at the largest id refuses the next create with a clear error instead of
/// handing out an unsafe id; a database left with a REAL `last_id` by an older server (the
/// issue's `Invalid column type Real`) works again and overwrites nothing.
#[tokio::test]
async fn sequence_overflow_is_checked_and_a_broken_sequence_is_repaired() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    c.ok("create", req("/api/full", Some(json!({})))).await;
    c.ok("create", req("/api/broken", Some(json!({"first": true}))))
        .await;
    drop(c);
    server.stop();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE sequences SET last_id = ?1 WHERE collection = '/api/full'",
            [MAX_ID - 1],
        )
        .unwrap();
        conn.execute(
            "UPDATE sequences SET last_id = 9.223372036854776e18 WHERE collection = '/api/broken'",
            [],
        )
        .unwrap();
    }
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let last = c.ok("create", req("/api/full", Some(json!({})))).await;
    assert_eq!(last["id"], MAX_ID);
    let error = c.err("create", req("/api/full", Some(json!({})))).await;
    assert_eq!(error["status"], 507, "{error}");
    let error = c.err("create", req("/api/full", Some(json!({})))).await;
    assert_eq!(
        error["status"], 507,
        "still refused, nothing changed: {error}"
    );

    let repaired = c.ok("create", req("/api/broken", Some(json!({})))).await;
    assert_eq!(repaired["id"], 2, "id 1 is taken and skipped");
    let first = c.ok("read", req("/api/broken/1", None)).await;
    assert_eq!(first, json!({"id": 1, "first": true}));
}

/// Documents are text: numbers a JavaScript client cannot hold, or that a double would round,
/// come back digit for digit, over the socket and over REST.
#[tokio::test]
async fn big_numbers_in_items_are_kept_exactly() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let literals = [
        "9007199254740993",
        "123456789012345678901234567890",
        "-98765432109876543210987654321",
        "0.1000000000000000055511151231257827",
        "-0.0",
    ];
    let item = format!(
        "{{\"a\":{},\"b\":{},\"c\":{},\"d\":{},\"e\":{}}}",
        literals[0], literals[1], literals[2], literals[3], literals[4]
    );
    let frame = format!(
        "4277[\"create\",{{\"signature\":{{\"endPoint\":\"/api/nums\"}},\"item\":{item}}}]"
    );
    c.send(&frame).await;
    let reply = c.recv().await.unwrap();
    assert!(reply.starts_with("4377[null,"), "{reply}");
    for literal in literals {
        assert!(reply.contains(literal), "{literal} in {reply}");
    }
    c.send("4278[\"read\",{\"signature\":{\"endPoint\":\"/api/nums/1\"}}]")
        .await;
    let reply = c.recv().await.unwrap();
    for literal in literals {
        assert!(reply.contains(literal), "{literal} in {reply}");
    }
    let text = reqwest::get(format!("{}/api/nums", server.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for literal in literals {
        assert!(text.contains(literal), "{literal} in {text}");
    }
}
