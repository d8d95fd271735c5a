//! Authentication over real sockets: tokens refused at CONNECT (garbage, `alg: none`, RS256
//! signed with the HS key, expired beyond the leeway, no `exp`, no `sub`, another secret) with
//! CONNECT_ERROR `{"message":"unauthorized"}` and no handler run; REST 401 with
//! `WWW-Authenticate: Bearer`; a socket disconnected when its token expires; and the
//! `bss-server token` subcommand.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use backbone_socket_sync_server::auth::{now_secs, Auth, DEFAULT_LEEWAY_SECS};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{req, temp_db, Client, ServerProcess};
use serde_json::{json, Value};

/// The HS256 secret every server of these tests uses.
pub const SECRET: &[u8] = b"an hs256 secret for the tests, 40 bytes.";

/// Writes [`SECRET`] (with a trailing newline, as `echo` would) next to the database.
fn secret_file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("secret");
    let mut text = SECRET.to_vec();
    text.push(b'\n');
    std::fs::write(&path, text).unwrap();
    path
}

/// A server with authentication on, and a token minter with the same secret.
fn start(extra: &[&str]) -> (tempfile::TempDir, ServerProcess, Auth) {
    let (dir, db) = temp_db();
    let secret = secret_file(&dir);
    let mut args = vec!["--auth-secret-file", secret.to_str().unwrap()];
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&db, &args);
    (dir, server, Auth::from_secret(SECRET).unwrap())
}

fn token(auth: &Auth, sub: &str) -> String {
    auth.mint(sub, Duration::from_secs(3600)).unwrap().0
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT put together by hand: `header.claims.signature`, the signature an HMAC-SHA256 of the
/// first two parts with `key` (empty without a key), whatever the header claims.
fn forge(header: Value, claims: Value, key: Option<&[u8]>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.map_or(String::new(), |key| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        b64(ring::hmac::sign(&key, input.as_bytes()).as_ref())
    });
    format!("{input}.{signature}")
}

/// Every token that must be refused, with what is wrong with it.
fn bad_tokens() -> Vec<(&'static str, Value)> {
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let fresh = now_secs() + 3600;
    let other = Auth::from_secret(b"another secret, also 32 bytes or more").unwrap();
    vec![
        ("no token", json!({})),
        ("null token", json!({"token": null})),
        ("a number", json!({"token": 42})),
        ("garbage", json!({"token": "garbage"})),
        ("empty", json!({"token": ""})),
        ("three dots", json!({"token": "a.b.c"})),
        (
            "alg none, no signature",
            json!({"token": forge(json!({"alg": "none", "typ": "JWT"}), json!({"sub": "alice", "exp": fresh}), None)}),
        ),
        (
            "alg none, HS signature",
            json!({"token": forge(json!({"alg": "none"}), json!({"sub": "alice", "exp": fresh}), Some(SECRET))}),
        ),
        (
            "RS256 header, signed with the HS key",
            json!({"token": forge(json!({"alg": "RS256", "typ": "JWT"}), json!({"sub": "alice", "exp": fresh}), Some(SECRET))}),
        ),
        (
            "HS512",
            json!({"token": forge(json!({"alg": "HS512"}), json!({"sub": "alice", "exp": fresh}), Some(SECRET))}),
        ),
        (
            "expired by the leeway and 1 s",
            json!({"token": forge(hs.clone(), json!({"sub": "alice", "exp": now_secs() - DEFAULT_LEEWAY_SECS - 1}), Some(SECRET))}),
        ),
        (
            "no exp",
            json!({"token": forge(hs.clone(), json!({"sub": "alice"}), Some(SECRET))}),
        ),
        (
            "exp not a number",
            json!({"token": forge(hs.clone(), json!({"sub": "alice", "exp": "never"}), Some(SECRET))}),
        ),
        (
            "no sub",
            json!({"token": forge(hs.clone(), json!({"exp": fresh}), Some(SECRET))}),
        ),
        (
            "empty sub",
            json!({"token": forge(hs.clone(), json!({"sub": "", "exp": fresh}), Some(SECRET))}),
        ),
        (
            "bad signature",
            json!({"token": forge(hs.clone(), json!({"sub": "alice", "exp": fresh}), Some(b"not the secret"))}),
        ),
        (
            "another secret",
            json!({"token": other.mint("alice", Duration::from_secs(60)).unwrap().0}),
        ),
    ]
}

#[tokio::test]
async fn bad_tokens_are_refused_at_connect_and_no_handler_runs() {
    let (_dir, server, auth) = start(&[]);
    // The hand-made tokens are right when nothing is wrong with them.
    let good = forge(
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"sub": "alice", "exp": now_secs() + 3600}),
        Some(SECRET),
    );
    let mut alice = Client::connect_with(server.port, &json!({ "token": good }))
        .await
        .map_err(|(frame, _)| frame)
        .expect("a well-formed token connects");
    assert_eq!(alice.ok("read", req("/api/todos", None)).await, json!([]));

    for (what, payload) in bad_tokens() {
        let (frame, mut refused) = match Client::connect_with(server.port, &payload).await {
            Ok(_) => panic!("{what}: connected"),
            Err(refused) => refused,
        };
        assert_eq!(frame, r#"44{"message":"unauthorized"}"#, "{what}");
        // A request on the refused namespace is never handled: the server closes the
        // connection (and `writes` stays 0 below).
        refused
            .send(&format!(
                "421{}",
                json!(["create", req("/api/todos", Some(json!({"by": what})))])
            ))
            .await;
        assert!(refused.closes().await, "{what}");
    }
    // A refused client may CONNECT again on the same connection with a valid token.
    let (_, mut retry) = Client::connect_with(server.port, &json!({"token": "garbage"}))
        .await
        .map(|_| ())
        .unwrap_err();
    retry
        .send(&format!("40{}", json!({"token": token(&auth, "alice")})))
        .await;
    let connected = retry.recv().await.expect("connect reply");
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    assert_eq!(retry.ok("read", req("/api/todos", None)).await, json!([]));
    // The stats need a token (and a `--stats-sub` user: tests/stats.rs).
    let stats = format!("{}/_bss/stats", server.url());
    assert_eq!(reqwest::get(&stats).await.unwrap().status(), 401);
}

#[tokio::test]
async fn rest_needs_a_bearer_token() {
    let (_dir, server, auth) = start(&[]);
    let http = reqwest::Client::new();
    let url = format!("{}/api/todos", server.url());
    let check = |response: reqwest::Response, presented: bool| async move {
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(
            challenge.contains("invalid_token"),
            presented,
            "{challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": 401, "message": "unauthorized"}));
    };
    check(http.get(&url).send().await.unwrap(), false).await;
    check(
        http.post(&url).json(&json!({"t": 1})).send().await.unwrap(),
        false,
    )
    .await;
    for (what, payload) in bad_tokens() {
        let Some(Value::String(token)) = payload.get("token").cloned() else {
            continue;
        };
        if token.is_empty() {
            continue; // "Bearer " with nothing after is the same as no token
        }
        let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        check(response, true).await;
    }
    let basic = http.get(&url).basic_auth("alice", Some("pw")).send().await;
    check(basic.unwrap(), true).await;

    // A valid token: the api answers, and the static files never needed one.
    let alice = token(&auth, "alice");
    let created = http
        .post(&url)
        .bearer_auth(&alice)
        .json(&json!({"t": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let listed: Value = http
        .get(&url)
        .header("authorization", format!("bearer {alice}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([{"id": 1, "t": 1}]));
    let page = http.get(server.url()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let script = http
        .get(format!("{}/backbone-socket-sync.js", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
}

#[tokio::test]
async fn a_socket_is_disconnected_when_its_token_expires() {
    // Without a leeway, so that expiry is at `exp` itself (and the test short).
    let (_dir, server, auth) = start(&["--auth-leeway", "0"]);
    let exp = now_secs() + 2;
    let short = forge(
        json!({"alg": "HS256"}),
        json!({"sub": "alice", "exp": exp}),
        Some(SECRET),
    );
    let mut expiring = Client::connect_with(server.port, &json!({ "token": short }))
        .await
        .map_err(|(frame, _)| frame)
        .unwrap();
    let mut lasting = Client::connect_with(server.port, &json!({"token": token(&auth, "alice")}))
        .await
        .map_err(|(frame, _)| frame)
        .unwrap();
    expiring
        .ok("create", req("/api/todos", Some(json!({"t": 1}))))
        .await;
    // The next frame is the DISCONNECT, not before exp.
    let frame = expiring.recv().await.expect("a frame before the close");
    assert_eq!(frame, "41");
    assert!(
        now_secs() >= exp,
        "disconnected at {} before exp {exp}",
        now_secs()
    );
    // Only that socket: the other one of the same user still works.
    assert_eq!(
        lasting.ok("read", req("/api/todos", None)).await,
        json!([{"id": 1, "t": 1}])
    );
    // And the expired token cannot come back.
    let again = Client::connect_with(server.port, &json!({ "token": short })).await;
    assert_eq!(
        again.map(|_| ()).unwrap_err().0,
        r#"44{"message":"unauthorized"}"#
    );
}

#[tokio::test]
async fn the_token_subcommand_prints_a_token_for_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(&dir);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bss-server"))
            .args(args)
            .env_remove("AUTH_SECRET_FILE")
            .output()
            .unwrap()
    };
    let out = run(&[
        "token",
        "--sub",
        "alice",
        "--ttl",
        "1h",
        "--auth-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let claims = Auth::from_secret(SECRET)
        .unwrap()
        .verify(printed.trim())
        .unwrap();
    assert_eq!(claims.sub, "alice");
    let ttl = claims.exp - now_secs();
    assert!((3590..=3600).contains(&ttl), "{ttl}");
    // The flag also works before the subcommand; the default lifetime is an hour.
    let out = run(&[
        "--auth-secret-file",
        secret.to_str().unwrap(),
        "token",
        "--sub",
        "bob",
    ]);
    assert!(out.status.success(), "{out:?}");
    // Without a secret, or with a bad lifetime: a clear error.
    let out = run(&["token", "--sub", "alice"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--auth-secret-file"));
    let out = run(&[
        "token",
        "--sub",
        "alice",
        "--ttl",
        "soon",
        "--auth-secret-file",
        secret.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_short_secret_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("short");
    std::fs::write(&secret, "too short").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bss-server"))
        .args([
            "--port",
            "0",
            "--auth-secret-file",
            secret.to_str().unwrap(),
        ])
        .arg("--db")
        .arg(dir.path().join("db.sqlite3"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
}

#[tokio::test]
async fn demo_tokens_only_with_the_flag() {
    let (_dir, db) = temp_db();
    let open = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/_bss/demo-token", open.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    let minted = http.post(&url).json(&json!({"sub": "alice"})).send().await;
    // The static files' fallback answers: no such route.
    assert_eq!(minted.unwrap().status(), 405);
    drop(open);

    // --demo-tokens alone: authentication on, with a secret of this process.
    let (_dir, db) = temp_db();
    let demo = ServerProcess::start(&db, &["--demo-tokens"]);
    let url = format!("{}/_bss/demo-token", demo.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    let anonymous = http.get(format!("{}/api/todos", demo.url())).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    let minted: Value = http
        .post(&url)
        .json(&json!({"sub": " alice "}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(minted["sub"], "alice");
    let lifetime = minted["exp"].as_u64().unwrap() - now_secs();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    let token = minted["token"].as_str().unwrap();
    let mut alice = Client::connect_with(demo.port, &json!({ "token": token }))
        .await
        .map_err(|(frame, _)| frame)
        .unwrap();
    alice
        .ok("create", req("/api/todos", Some(json!({"t": 1}))))
        .await;
    let listed: Value = http
        .get(format!("{}/api/todos", demo.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([{"id": 1, "t": 1}]));
    for (request, status) in [
        (http.post(&url).json(&json!({})), 400),
        (http.post(&url).json(&json!({"sub": "  "})), 400),
        (http.post(&url).json(&json!({"sub": "x".repeat(65)})), 400),
        (
            http.post(&url)
                .header("content-type", "text/plain")
                .body(r#"{"sub":"mallory"}"#),
            415,
        ),
        (
            http.post(&url)
                .header("origin", "http://evil.example")
                .json(&json!({"sub": "alice"})),
            403,
        ),
    ] {
        assert_eq!(request.send().await.unwrap().status(), status);
    }

    // With a secret file it refuses to start: see identity_providers.rs.
}

/// A token whose `exp` is beyond `--auth-max-ttl` (24 h by default), up to the end of the
/// clock's range, is refused cleanly (a leaked one would never expire: issue 18), and the
/// server goes on accepting good tokens.
#[tokio::test]
async fn a_token_expiring_beyond_the_max_ttl_is_refused_cleanly() {
    let (_dir, server, auth) = start(&[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for exp in [now + 25 * 3600, u64::MAX] {
        let far = forge(
            json!({"alg": "HS256"}),
            json!({"sub": "alice", "exp": exp}),
            Some(SECRET),
        );
        let refused = Client::connect_with(server.port, &json!({ "token": far })).await;
        let Err((frame, _)) = refused else {
            panic!("a token expiring at {exp} connected")
        };
        assert!(frame.contains("unauthorized"), "{frame}");
    }
    let mut alice = Client::connect_with(server.port, &json!({ "token": token(&auth, "alice") }))
        .await
        .map_err(|(frame, _)| frame)
        .unwrap();
    assert_eq!(alice.ok("read", req("/api/todos", None)).await, json!([]));
}

#[tokio::test]
async fn every_namespace_needs_a_token() {
    let (_dir, server, auth) = start(&["--namespace", "/", "--namespace", "/admin"]);
    let mut c = Client::open(server.port).await;
    c.send(r#"40/admin,{"token":"garbage"}"#).await;
    assert_eq!(
        c.recv().await.unwrap(),
        r#"44/admin,{"message":"unauthorized"}"#
    );
    c.send(&format!(
        "40/admin,{}",
        json!({"token": token(&auth, "alice")})
    ))
    .await;
    assert!(c.recv().await.unwrap().starts_with("40/admin,{\"sid\":"));
    c.send(&format!(
        "42/admin,1{}",
        json!(["create", req("/api/todos", Some(json!({"ns": "admin"})))])
    ))
    .await;
    assert_eq!(
        c.recv().await.unwrap(),
        r#"43/admin,1[null,{"id":1,"ns":"admin"},{"version":1}]"#
    );
    // The same user's data on `/`.
    let mut alice = Client::connect_with(server.port, &json!({"token": token(&auth, "alice")}))
        .await
        .map_err(|(frame, _)| frame)
        .unwrap();
    assert_eq!(
        alice.ok("read", req("/api/todos", None)).await,
        json!([{"id": 1, "ns": "admin"}])
    );
}

#[tokio::test]
async fn a_socket_on_a_custom_namespace_is_disconnected_at_exp_too() {
    let (_dir, server, _) = start(&["--dynamic-namespaces", "--auth-leeway", "0"]);
    let exp = now_secs() + 2;
    let short = forge(
        json!({"alg": "HS256"}),
        json!({"sub": "alice", "exp": exp}),
        Some(SECRET),
    );
    let mut c = Client::open(server.port).await;
    c.send(&format!("40/admin,{}", json!({ "token": short })))
        .await;
    assert!(c.recv().await.unwrap().starts_with("40/admin,{\"sid\":"));
    assert_eq!(c.recv().await.unwrap(), "41/admin,");
    assert!(now_secs() >= exp);
}
