//! Per-user data over real sockets: with authentication on, two users writing at once into
//! the same endpoint never see each other's models or broadcasts, another user's model is a
//! 404, and request ids are scoped per user and bound to their request (409 for another
//! request, the recorded result for a repeat), over socket.io and REST. With authentication
//! off, a declared client id scopes request ids the same way.

mod common;
mod services;

use std::time::Duration;

use backbone_socket_sync_server::auth::Auth;
use common::{req, req_id, start_signed_in, temp_db, Client, ServerProcess};
use serde_json::{json, Value};
use services::shared_postgres;

const SECRET: &[u8] = b"an hs256 secret for the users tests, 32+";
const WRITES: usize = 20;

fn start() -> (tempfile::TempDir, ServerProcess, Auth) {
    let (dir, db) = temp_db();
    let (server, auth) = start_signed_in(dir.path(), &db, SECRET, &[]);
    (dir, server, auth)
}

fn token(auth: &Auth, sub: &str) -> String {
    auth.mint(sub, Duration::from_secs(3600)).unwrap().0
}

async fn connect(port: u16, payload: Value) -> Client {
    match Client::connect_with(port, &payload).await {
        Ok(client) => client,
        Err((frame, _)) => panic!("refused: {frame}"),
    }
}

/// Sends `method` with ack id `id` and returns the events that arrived before its ack (the
/// marker that tells "no broadcast came" from "not yet") and the ack's arguments.
async fn round_trip(
    c: &mut Client,
    id: u64,
    method: &str,
    arg: Value,
) -> (Vec<(String, Value)>, Vec<Value>) {
    c.send(&format!("42{id}{}", json!([method, arg]))).await;
    let ack = format!("43{id}");
    let mut events = Vec::new();
    loop {
        let frame = c.recv().await.expect("frame before close");
        if let Some(rest) = frame.strip_prefix(&ack) {
            return (events, serde_json::from_str(rest).expect("ack json"));
        }
        if let Some(rest) = frame.strip_prefix("42") {
            let mut pair: Vec<Value> = serde_json::from_str(rest).expect("event json");
            let payload = pair.pop().expect("payload");
            events.push((pair[0].as_str().expect("name").to_owned(), payload));
        }
    }
}

/// One user's run: a watcher subscribed to /api/todos, a writer creating `WRITES` models over
/// the socket and as many over REST; returns what the watcher heard and what the user reads.
async fn user_run(
    port: u16,
    url: String,
    auth_token: String,
    who: &'static str,
) -> (Vec<Value>, Value) {
    let mut watcher = connect(port, json!({"token": auth_token})).await;
    let (_, reply) = round_trip(&mut watcher, 1000, "subscribe", req("/api/todos", None)).await;
    assert_eq!(
        Value::from(reply),
        json!([null, {"endPoint": "/api/todos"}])
    );
    let mut writer = connect(port, json!({"token": auth_token})).await;
    let http = reqwest::Client::new();
    for n in 0..WRITES {
        let by_socket = writer
            .ok(
                "create",
                req("/api/todos", Some(json!({"who": who, "n": n}))),
            )
            .await;
        assert_eq!(by_socket["who"], who);
        let by_rest = http
            .post(format!("{url}/api/todos"))
            .bearer_auth(&auth_token)
            .json(&json!({"who": who, "n": n, "rest": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(by_rest.status(), 201);
    }
    // Every write was answered, so every broadcast of it was queued before this read's reply.
    let (events, reply) = round_trip(&mut watcher, 1001, "read", req("/api/todos", None)).await;
    let heard = events
        .into_iter()
        .map(|(name, payload)| {
            assert_eq!(name, "created");
            payload["item"].clone()
        })
        .collect();
    (heard, reply[1].clone())
}

#[tokio::test]
async fn two_users_in_parallel_never_see_each_other() {
    let (_dir, server, auth) = start();
    let (alice, bob) = tokio::join!(
        user_run(server.port, server.url(), token(&auth, "alice"), "alice"),
        user_run(server.port, server.url(), token(&auth, "bob"), "bob"),
    );
    for (who, (heard, read)) in [("alice", alice), ("bob", bob)] {
        let read = read.as_array().unwrap();
        assert_eq!(read.len(), 2 * WRITES, "{who}");
        assert!(read.iter().all(|m| m["who"] == who), "{who} read {read:?}");
        // Ids are the user's own sequence: 1..=2*WRITES.
        let ids: Vec<i64> = read.iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=2 * WRITES as i64).collect::<Vec<_>>(), "{who}");
        assert_eq!(heard.len(), 2 * WRITES, "{who} heard {heard:?}");
        assert!(
            heard.iter().all(|m| m["who"] == who),
            "{who} heard {heard:?}"
        );
    }
    // With no token, nothing at all.
    let anonymous = reqwest::get(format!("{}/api/todos", server.url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn another_users_model_is_not_found() {
    let (_dir, server, auth) = start();
    let (alice_token, bob_token) = (token(&auth, "alice"), token(&auth, "bob"));
    let mut alice = connect(server.port, json!({"token": alice_token})).await;
    let mut bob = connect(server.port, json!({"token": bob_token})).await;
    let mine = alice
        .ok("create", req("/api/notes", Some(json!({"secret": "a"}))))
        .await;
    assert_eq!(mine["id"], 1);
    for (method, item) in [
        ("read", None),
        ("patch", Some(json!({"secret": "b"}))),
        ("delete", None),
    ] {
        let error = bob.err(method, req("/api/notes/1", item)).await;
        assert_eq!(
            error,
            json!({"status": 404, "message": "not found"}),
            "{method}"
        );
    }
    // REST says the same.
    let http = reqwest::Client::new();
    let url = format!("{}/api/notes/1", server.url());
    for request in [
        http.get(&url),
        http.patch(&url).json(&json!({"secret": "b"})),
        http.delete(&url),
    ] {
        let response = request.bearer_auth(&bob_token).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    // A PUT is bob's own model 1, in bob's collection; alice's is untouched.
    bob.ok("update", req("/api/notes/1", Some(json!({"secret": "b"}))))
        .await;
    assert_eq!(alice.ok("read", req("/api/notes/1", None)).await, mine);
    assert_eq!(
        alice.ok("read", req("/api/notes", None)).await,
        json!([mine])
    );
    assert_eq!(
        bob.ok("read", req("/api/notes", None)).await,
        json!([{"id": 1, "secret": "b"}])
    );
}

#[tokio::test]
async fn request_ids_are_per_user_and_bound_to_their_request() {
    let (_dir, server, auth) = start();
    let (alice_token, bob_token) = (token(&auth, "alice"), token(&auth, "bob"));
    let mut alice = connect(server.port, json!({"token": alice_token})).await;
    let mut bob = connect(server.port, json!({"token": bob_token})).await;
    let create = req_id("/api/todos", Some(json!({"t": "a"})), "r1");
    let first = alice.ok("create", create.clone()).await;
    // Bob's r1 is another request: applied for bob, never answered with alice's result.
    let bobs = bob
        .ok(
            "create",
            req_id("/api/todos", Some(json!({"t": "b"})), "r1"),
        )
        .await;
    assert_eq!(bobs, json!({"id": 1, "t": "b"}));
    // Alice again, after a reconnection: the same request replays; another one is a 409.
    drop(alice);
    let mut alice = connect(server.port, json!({"token": alice_token})).await;
    assert_eq!(alice.ok("create", create).await, first);
    for (method, arg) in [
        (
            "create",
            req_id("/api/todos", Some(json!({"t": "other"})), "r1"),
        ),
        (
            "create",
            req_id("/api/other", Some(json!({"t": "a"})), "r1"),
        ),
        (
            "update",
            req_id("/api/todos/1", Some(json!({"t": "a"})), "r1"),
        ),
        ("delete", req_id("/api/todos/1", None, "r1")),
    ] {
        let error = alice.err(method, arg).await;
        assert_eq!(error["status"], 409, "{method}: {error}");
    }
    assert_eq!(
        alice.ok("read", req("/api/todos", None)).await,
        json!([first])
    );

    // REST: X-Request-Id in the same per-user scope.
    let http = reqwest::Client::new();
    let post = |token: &str, body: Value| {
        http.post(format!("{}/api/todos", server.url()))
            .bearer_auth(token)
            .header("x-request-id", "r2")
            .json(&body)
            .send()
    };
    let created: Value = post(&alice_token, json!({"t": "rest"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let replay = post(&alice_token, json!({"t": "rest"})).await.unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.json::<Value>().await.unwrap(), created);
    let reused = post(&alice_token, json!({"t": "changed"})).await.unwrap();
    assert_eq!(reused.status(), 409);
    let bobs: Value = post(&bob_token, json!({"t": "changed"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bobs, json!({"id": 2, "t": "changed"}));
    // The socket request r1 and the REST request r2 share alice's scope.
    let error = alice
        .err(
            "create",
            req_id("/api/todos", Some(json!({"t": "x"})), "r2"),
        )
        .await;
    assert_eq!(error["status"], 409);
}

#[tokio::test]
async fn without_auth_a_client_id_scopes_request_ids() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let create = req_id("/api/todos", Some(json!({"t": "x"})), "r1");
    let mut a = connect(server.port, json!({"clientId": "client-a"})).await;
    let first = a.ok("create", create.clone()).await;
    // Another client's identical id is its own request: applied, not a's result.
    let mut b = connect(server.port, json!({"clientId": "client-b"})).await;
    assert_eq!(b.ok("create", create.clone()).await["id"], 2);
    // Nor is it the shared scope's.
    let mut anonymous = Client::connect(server.port).await;
    assert_eq!(anonymous.ok("create", create.clone()).await["id"], 3);
    // a's retry after a reconnection replays; a different request under its id is a 409.
    drop(a);
    let mut a = connect(server.port, json!({"clientId": "client-a"})).await;
    assert_eq!(a.ok("create", create).await, first);
    let error = a
        .err(
            "update",
            req_id("/api/todos/1", Some(json!({"t": "y"})), "r1"),
        )
        .await;
    assert_eq!(error["status"], 409);
    // The shared scope (no client id) is bound by the request too.
    let error = anonymous
        .err(
            "create",
            req_id("/api/todos", Some(json!({"t": "y"})), "r1"),
        )
        .await;
    assert_eq!(error["status"], 409);
    // REST: X-Client-Id is the same scope as the socket's clientId.
    let http = reqwest::Client::new();
    let replay = http
        .post(format!("{}/api/todos", server.url()))
        .header("x-client-id", "client-a")
        .header("x-request-id", "r1")
        .json(&json!({"t": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    // Malformed client ids are refused.
    let bad = Client::connect_with(server.port, &json!({"clientId": 7})).await;
    assert!(bad
        .map(|_| ())
        .unwrap_err()
        .0
        .starts_with("44{\"message\":"));
    let bad = http
        .get(format!("{}/api/todos", server.url()))
        .header("x-client-id", "has space")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        a.ok("read", req("/api/todos", None))
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn public_collections_are_readable_by_every_user_and_writable_by_none() {
    let (dir, db) = temp_db();
    // Reference data is loaded with authentication off: the shared documents.
    let open = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    for color in ["red", "green"] {
        let created = http
            .post(format!("{}/api/colors", open.url()))
            .json(&json!({"name": color}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    }
    open.stop();

    let (server, auth) =
        start_signed_in(dir.path(), &db, SECRET, &["--public-prefix", "/api/colors"]);
    let colors = json!([{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]);
    for user in ["alice", "bob"] {
        let token = token(&auth, user);
        let mut c = connect(server.port, json!({ "token": token })).await;
        assert_eq!(c.ok("read", req("/api/colors", None)).await, colors);
        assert_eq!(c.ok("read", req("/api/colors/2", None)).await, colors[1]);
        for (method, endpoint, item) in [
            ("create", "/api/colors", Some(json!({"name": "blue"}))),
            ("update", "/api/colors/1", Some(json!({"name": "x"}))),
            ("patch", "/api/colors/1", Some(json!({"name": "x"}))),
            ("delete", "/api/colors/1", None),
            ("create", "/api/colors/1/shades", Some(json!({}))),
        ] {
            let error = c.err(method, req(endpoint, item)).await;
            assert_eq!(error["status"], 403, "{user} {method} {endpoint}");
        }
        let listed: Value = http
            .get(format!("{}/api/colors", server.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed, colors);
        let refused = http
            .post(format!("{}/api/colors", server.url()))
            .bearer_auth(&token)
            .json(&json!({"name": "blue"}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        // Everything else stays private: the shared /api/todos is not theirs.
        c.ok("create", req("/api/todos", Some(json!({"who": user}))))
            .await;
        assert_eq!(
            c.ok("read", req("/api/todos", None)).await,
            json!([{"id": 1, "who": user}])
        );
    }
    // Still a token is needed.
    let anonymous = http
        .get(format!("{}/api/colors", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_subscriber_to_a_public_collection_hears_its_changes() {
    // One PostgreSQL, two nodes: reference data written by a node with authentication off
    // (the shared documents) reaches, through the change feed, a signed-in subscriber of a
    // node with authentication on, where the collection is public.
    let db = shared_postgres().create_database("public");
    let dir = tempfile::tempdir().unwrap();
    let (signed_in, auth) = start_signed_in(
        dir.path(),
        std::path::Path::new(&db),
        SECRET,
        &["--public-prefix", "/api/colors"],
    );
    let loader = ServerProcess::start(std::path::Path::new(&db), &[]);
    let mut alice = connect(signed_in.port, json!({"token": token(&auth, "alice")})).await;
    let reply = alice.ok("subscribe", req("/api/colors", None)).await;
    assert_eq!(reply, json!({"endPoint": "/api/colors"}));
    let created = reqwest::Client::new()
        .post(format!("{}/api/colors", loader.url()))
        .json(&json!({"name": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let (event, payload) = alice.next_event().await;
    assert_eq!(event, "created", "{payload}");
    assert_eq!(
        payload["item"],
        json!({"id": 1, "name": "red"}),
        "{payload}"
    );
}
