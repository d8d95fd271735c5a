//! `/_bss/stats` with authentication on: the counts of every user together, so only for the
//! users named with `--stats-sub` (the probe: any signed-in user saw everyone's
//! activity there).

mod common;

use std::time::Duration;

use common::{req, start_signed_in, temp_db, Client};
use serde_json::{json, Value};

const SECRET: &[u8] = b"an hs256 secret for the tests, 40 bytes.";

#[tokio::test]
async fn with_auth_on_only_stats_subs_read_the_stats() {
    let (dir, db) = temp_db();
    let (server, auth) = start_signed_in(dir.path(), &db, SECRET, &["--stats-sub", "ops"]);
    let token = |sub: &str| auth.mint(sub, Duration::from_secs(3600)).unwrap().0;
    let Ok(mut alice) = Client::connect_with(server.port, &json!({"token": token("alice")})).await
    else {
        panic!("alice connects");
    };
    alice.ok("create", req("/api/todos", Some(json!({})))).await;

    let stats = format!("{}/_bss/stats", server.url());
    let http = reqwest::Client::new();
    assert_eq!(http.get(&stats).send().await.unwrap().status(), 401);
    for user in ["alice", "bob"] {
        let response = http
            .get(&stats)
            .bearer_auth(token(user))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{user}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 403);
        assert!(body.get("writes").is_none(), "{body}");
    }
    let response = http
        .get(&stats)
        .bearer_auth(token("ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["writes"], 1);
}
