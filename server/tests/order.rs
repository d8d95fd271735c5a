//! Read-your-writes on one connection: requests pipelined on one socket take effect in the
//! order they were sent (the rows: 498 of 500 `update` → `read` pairs read an older
//! value, 198 of 200 `delete` → `read` still found the model).

mod common;

use std::collections::HashMap;

use common::{req, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

/// Sends every `(method, arg)` at once with ack ids 1.., then collects the acks by id.
async fn pipeline(c: &mut Client, requests: &[(&str, Value)]) -> Vec<Vec<Value>> {
    for (i, (method, arg)) in requests.iter().enumerate() {
        c.send(&format!("42{}{}", i + 1, json!([method, arg])))
            .await;
    }
    let mut acks: HashMap<usize, Vec<Value>> = HashMap::new();
    while acks.len() < requests.len() {
        let frame = c.recv().await.expect("ack before close");
        let Some(rest) = frame.strip_prefix("43") else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id: usize = rest[..digits].parse().unwrap();
        acks.insert(id, serde_json::from_str(&rest[digits..]).unwrap());
    }
    (1..=requests.len())
        .map(|id| acks.remove(&id).unwrap())
        .collect()
}

#[tokio::test]
async fn pipelined_update_then_read_reads_the_update() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    let mut requests = Vec::new();
    for i in 0..500 {
        requests.push(("update", req("/api/k/1", Some(json!({ "v": i })))));
        requests.push(("read", req("/api/k/1", None)));
    }
    let acks = pipeline(&mut c, &requests).await;
    let mut stale = Vec::new();
    for i in 0..500 {
        assert_eq!(acks[2 * i][1]["v"], i, "update {i}: {:?}", acks[2 * i]);
        let read = &acks[2 * i + 1];
        assert!(read[0].is_null(), "read {i}: {read:?}");
        if read[1]["v"] != i {
            stale.push((i, read[1]["v"].clone()));
        }
    }
    assert!(
        stale.is_empty(),
        "{} reads saw another value: {stale:?}",
        stale.len()
    );
}

#[tokio::test]
async fn pipelined_delete_then_read_is_not_found_and_reads_see_no_later_write() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let mut c = Client::connect(server.port).await;
    for _ in 0..200 {
        c.ok("create", req("/api/d", Some(json!({"x": 1})))).await;
    }
    let mut requests = Vec::new();
    for id in 1..=200 {
        let endpoint = format!("/api/d/{id}");
        requests.push(("read", req(&endpoint, None)));
        requests.push(("delete", req(&endpoint, None)));
        requests.push(("read", req(&endpoint, None)));
    }
    let acks = pipeline(&mut c, &requests).await;
    for id in 0..200 {
        let before = &acks[3 * id];
        assert_eq!(
            before[1]["id"],
            id + 1,
            "read before delete {id}: {before:?}"
        );
        // A delete answers `{}` and the version it ended (1 at the create, 2 at the delete).
        assert_eq!(
            acks[3 * id + 1],
            vec![Value::Null, json!({}), json!({"version": 2})]
        );
        let after = &acks[3 * id + 2];
        assert_eq!(after[0]["status"], 404, "read after delete {id}: {after:?}");
    }
    // A collection read pipelined between creates counts exactly the creates before it.
    let mut requests = Vec::new();
    for i in 0..50 {
        requests.push(("create", req("/api/n", Some(json!({ "i": i })))));
        requests.push(("read", req("/api/n", None)));
    }
    let acks = pipeline(&mut c, &requests).await;
    for i in 0..50 {
        let listed = acks[2 * i + 1][1].as_array().expect("array").len();
        assert_eq!(listed, i + 1, "read after create {i}");
    }
}
