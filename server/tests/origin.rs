//! Origin checks and CORS over real sockets: a WebSocket upgrade (or polling handshake) from a
//! foreign origin is a 403 before any socket.io handshake, the server's own origin and clients
//! with no Origin are let in, `--allowed-origin` adds origins (with CORS headers for them only),
//! `*` allows all; REST writes that are not `application/json` are a 415 and store nothing.

mod common;

use common::{req, temp_db, Client, ServerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

/// Opens a socket.io WebSocket with `origin` (if any): `Ok(())` once the Engine.IO OPEN
/// arrived, else the HTTP status of the refused upgrade.
async fn upgrade(port: u16, origin: Option<&str>) -> Result<(), u16> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            use futures_util::StreamExt;
            let open = ws.next().await.unwrap().unwrap();
            assert!(open.to_text().unwrap().starts_with("0{"), "{open}");
            Ok(())
        }
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(other) => panic!("{other}"),
    }
}

fn acao(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn by_default_only_the_servers_own_origin_and_non_browsers() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let own = server.url();
    assert_eq!(upgrade(server.port, None).await, Ok(()));
    assert_eq!(upgrade(server.port, Some(&own)).await, Ok(()));
    for foreign in [
        "http://evil.example",
        "http://127.0.0.1:1",
        "null",
        &format!("https://localhost:{}", server.port),
    ] {
        assert_eq!(
            upgrade(server.port, Some(foreign)).await,
            Err(403),
            "{foreign}"
        );
    }
    let http = reqwest::Client::new();
    // The long-polling handshake is refused the same way.
    let polling = http
        .get(format!("{own}/socket.io/?EIO=4&transport=polling"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(polling.status(), StatusCode::FORBIDDEN);
    // REST: refused from a foreign page, with no CORS headers; fine from the own one.
    let foreign = http
        .post(format!("{own}/api/todos"))
        .header("origin", "http://evil.example")
        .json(&json!({"t": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(acao(&foreign), None);
    assert_eq!(
        foreign.json::<Value>().await.unwrap(),
        json!({"status": 403, "message": "origin not allowed"})
    );
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{own}/api/todos"))
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(acao(&preflight), None);
    let same = http
        .post(format!("{own}/api/todos"))
        .header("origin", &own)
        .json(&json!({"t": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::CREATED);
    assert_eq!(acao(&same), None, "the own origin needs no CORS");
    // Static files stay public.
    let page = http
        .get(&own)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // Nothing the foreign requests sent was stored.
    let mut c = Client::connect(server.port).await;
    assert_eq!(
        c.ok("read", req("/api/todos", None)).await,
        json!([{"id": 1, "t": 1}])
    );
}

#[tokio::test]
async fn allowed_origins_get_in_with_cors_headers() {
    let (_dir, db) = temp_db();
    let app = "http://app.example:8080";
    let server = ServerProcess::start(
        &db,
        &[
            "--allowed-origin",
            app,
            "--allowed-origin",
            "https://other.example",
        ],
    );
    assert_eq!(upgrade(server.port, Some(app)).await, Ok(()));
    assert_eq!(
        upgrade(server.port, Some("https://other.example")).await,
        Ok(())
    );
    assert_eq!(upgrade(server.port, Some(&server.url())).await, Ok(()));
    assert_eq!(
        upgrade(server.port, Some("http://evil.example")).await,
        Err(403)
    );
    let http = reqwest::Client::new();
    let url = format!("{}/api/todos", server.url());
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", app)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization,x-request-id,x-client-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(acao(&preflight).as_deref(), Some(app));
    let allowed_headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "content-type",
        "authorization",
        "x-request-id",
        "x-client-id",
    ] {
        assert!(allowed_headers.contains(name), "{allowed_headers}");
    }
    let created = http
        .post(&url)
        .header("origin", app)
        .json(&json!({"t": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(acao(&created).as_deref(), Some(app));
    let exposed = created.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("location"), "{exposed}");
    let refused = http
        .get(&url)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(acao(&refused), None);
}

#[tokio::test]
async fn a_star_allows_every_origin() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--allowed-origin", "*"]);
    assert_eq!(
        upgrade(server.port, Some("http://evil.example")).await,
        Ok(())
    );
    let response = reqwest::Client::new()
        .get(format!("{}/api/todos", server.url()))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(acao(&response).as_deref(), Some("*"));
}

#[tokio::test]
async fn a_malformed_allowed_origin_stops_the_server_from_starting() {
    let (dir, db) = temp_db();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bss-server"))
        .args(["--port", "0", "--allowed-origin", "app.example"])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    drop(dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allowed-origin"));
}

#[tokio::test]
async fn rest_writes_must_be_json() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let body = r#"{"t": 1}"#;
    let refused = [
        http.post(url("/api/todos"))
            .header("content-type", "text/plain")
            .body(body),
        http.post(url("/api/todos"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
        http.post(url("/api/todos"))
            .header("content-type", "multipart/form-data; boundary=x")
            .body(body),
        http.post(url("/api/todos")).body(body),
        http.put(url("/api/todos/1"))
            .header("content-type", "text/plain")
            .body(body),
        http.patch(url("/api/todos/1")).body(body),
    ];
    for request in refused {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"status": 415, "message": "Content-Type must be application/json"})
        );
    }
    let mut c = Client::connect(server.port).await;
    assert_eq!(c.ok("read", req("/api/todos", None)).await, json!([]));
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ] {
        let response = http
            .post(url("/api/todos"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{content_type}");
    }
    // A DELETE has no body to declare.
    let deleted = http.delete(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
}
