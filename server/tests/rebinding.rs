//! DNS rebinding over real sockets: with authentication off, a request to the api, socket.io or
//! `/_bss/` that names the server by a DNS name it was not given (what a rebound hostile page
//! sends: `Host: evil.example:PORT`, with or without a matching `Origin`) is a 403 and stores
//! nothing; IP addresses, localhost, single-label names, `--allowed-host` and
//! `--allowed-origin` hosts get in; the static files stay public; with authentication on the
//! token decides, not the `Host`.

mod common;

use common::{temp_db, ServerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

/// A WebSocket upgrade to socket.io sent with `Host: host` (and `Origin: http://host`, as the
/// rebound page's would be): `Ok(())` when accepted, else the refusal's status.
async fn upgrade(port: u16, host: &str) -> Result<(), u16> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("host", host.parse().unwrap());
    headers.insert("origin", format!("http://{host}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("{other}"),
    }
}

/// `method` on `path` with `Host: host`, a same-origin `Origin` when `origin`, and `token`.
async fn call(
    port: u16,
    method: reqwest::Method,
    path: &str,
    host: &str,
    origin: bool,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("http://127.0.0.1:{port}{path}"))
        .header("host", host);
    if origin {
        request = request.header("origin", format!("http://{host}"));
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method == reqwest::Method::POST {
        request = request.json(&json!({"title": "from a rebound page"}));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn with_auth_off_only_known_host_names_reach_the_api_and_socketio() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(
        &db,
        &[
            "--allowed-host",
            "app.internal.example",
            "--allowed-origin",
            "https://site.example.com",
        ],
    );
    let port = server.port;
    let evil = format!("evil.example:{port}");
    use reqwest::Method;
    // The rebound page: its same-origin GET (no Origin), POST and WebSocket are all refused.
    let (status, body) = call(port, Method::GET, "/api/todos", &evil, false, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["status"], 403);
    let (status, _) = call(port, Method::POST, "/api/todos", &evil, true, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(upgrade(port, &evil).await, Err(403));
    let (status, _) = call(port, Method::GET, "/_bss/stats", &evil, false, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The static files stay public.
    let (status, _) = call(port, Method::GET, "/", &evil, false, None).await;
    assert_eq!(status, StatusCode::OK);

    // Names it may be called by.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("app.internal.example:{port}"),
        format!("devbox:{port}"),
        "site.example.com".to_owned(),
    ] {
        let (status, _) = call(port, Method::GET, "/api/todos", &host, false, None).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    assert_eq!(upgrade(port, &format!("localhost:{port}")).await, Ok(()));
    let (status, _) = call(
        port,
        Method::POST,
        "/api/todos",
        &format!("127.0.0.1:{port}"),
        true,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Only that one write was stored.
    let (_, todos) = call(port, Method::GET, "/api/todos", "localhost", false, None).await;
    assert_eq!(todos.as_array().map(Vec::len), Some(1), "{todos}");
}

#[tokio::test]
async fn allowed_host_star_turns_the_check_off() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--allowed-host", "*"]);
    let host = format!("anything.example:{}", server.port);
    let (status, _) = call(
        server.port,
        reqwest::Method::GET,
        "/api/todos",
        &host,
        false,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn with_auth_on_the_token_decides_not_the_host() {
    let (dir, db) = temp_db();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"an hs256 secret for the tests, 40 bytes.").unwrap();
    let auth = backbone_socket_sync_server::auth::Auth::from_secret(
        b"an hs256 secret for the tests, 40 bytes.",
    )
    .unwrap();
    let (token, _) = auth
        .mint("alice", std::time::Duration::from_secs(60))
        .unwrap();
    let server = ServerProcess::start(&db, &["--auth-secret-file", secret.to_str().unwrap()]);
    let host = format!("app.example.com:{}", server.port);
    use reqwest::Method;
    let (status, _) = call(server.port, Method::GET, "/api/todos", &host, false, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        server.port,
        Method::GET,
        "/api/todos",
        &host,
        false,
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The probe: `--demo-tokens` turned the Host check off (authentication on), so a
/// rebound page (`Host: evil.example`, its own Origin) minted a token for alice and read and
/// wrote her data. The check stays on with demo tokens.
#[tokio::test]
async fn demo_tokens_keep_the_host_check() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--demo-tokens"]);
    let port = server.port;
    let mint = |host: String| async move {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/_bss/demo-token"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .json(&json!({"sub": "alice"}))
            .send()
            .await
            .unwrap()
    };
    let evil = format!("evil.example:{port}");
    assert_eq!(mint(evil.clone()).await.status(), StatusCode::FORBIDDEN);
    let minted = mint(format!("127.0.0.1:{port}")).await;
    assert_eq!(minted.status(), StatusCode::OK);
    let token: Value = minted.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    use reqwest::Method;
    let (status, _) = call(port, Method::GET, "/api/todos", &evil, true, Some(&token)).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a token does not vouch for the page"
    );
    assert_eq!(upgrade(port, &evil).await, Err(403));
    let own = format!("127.0.0.1:{port}");
    let (status, _) = call(port, Method::POST, "/api/todos", &own, true, Some(&token)).await;
    assert_eq!(status, StatusCode::CREATED);
}
