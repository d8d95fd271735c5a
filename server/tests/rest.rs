//! The REST twin and the static files of the real binary, over HTTP.

mod common;

use common::{req, temp_db, Client, ServerProcess};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("json body")
}

#[tokio::test]
async fn crud_and_status_codes() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &["--max-item-bytes", "1000"]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());

    let created = http
        .post(url("/api/todos"))
        .json(&json!({"title": "a", "done": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["location"], "/api/todos/1");
    assert_eq!(
        body(created).await,
        json!({"id": 1, "title": "a", "done": false})
    );
    http.post(url("/api/todos"))
        .json(&json!({"title": "b", "done": true}))
        .send()
        .await
        .unwrap();

    let all = http.get(url("/api/todos")).send().await.unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(body(all).await.as_array().unwrap().len(), 2);
    let done = body(http.get(url("/api/todos?done=true")).send().await.unwrap()).await;
    assert_eq!(done, json!([{"id": 2, "title": "b", "done": true}]));
    let paged = body(
        http.get(url("/api/todos?_limit=1&_offset=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(paged[0]["id"], 2);
    let by_title = body(http.get(url("/api/todos?title=a")).send().await.unwrap()).await;
    assert_eq!(by_title.as_array().unwrap().len(), 1);

    let one = http.get(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(
        (one.status(), body(one).await["title"].clone()),
        (StatusCode::OK, json!("a"))
    );
    let put = http
        .put(url("/api/todos/1"))
        .json(&json!({"id": 1, "title": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (put.status(), body(put).await),
        (StatusCode::OK, json!({"id": 1, "title": "A"}))
    );
    let patch = http
        .patch(url("/api/todos/1"))
        .json(&json!({"done": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(patch).await,
        json!({"id": 1, "title": "A", "done": true})
    );
    let delete = http.delete(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(
        (delete.status(), body(delete).await),
        (StatusCode::OK, json!({}))
    );

    let missing = http.get(url("/api/todos/1")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body(missing).await,
        json!({"status": 404, "message": "not found"})
    );
    assert_eq!(
        http.delete(url("/api/todos/1"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.patch(url("/api/todos/1"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let bad = |status: u16| StatusCode::from_u16(status).unwrap();
    let cases = [
        (json_body(http.post(url("/api/todos")), "{not json"), 400),
        (json_body(http.post(url("/api/todos")), "[1,2]"), 400),
        (json_body(http.post(url("/api/todos")), ""), 400),
        (http.post(url("/api/todos/1")).json(&json!({})), 400),
        (http.put(url("/api/todos")).json(&json!({})), 400),
        (http.put(url("/api/todos/1")).json(&json!({"id": 2})), 400),
        (http.delete(url("/api/todos")), 400),
        (http.get(url("/api")), 400),
        (http.get(url("/api/to!do")), 400),
        (http.get(url("/api/todos?_limit=x")), 400),
        (
            http.post(url("/api/todos"))
                .json(&json!({"big": "x".repeat(1000)})),
            413,
        ),
        (
            http.request(reqwest::Method::OPTIONS, url("/api/todos")),
            405,
        ),
    ];
    for (request, status) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), bad(status));
        let error = body(response).await;
        assert_eq!(error["status"], status, "{error}");
        assert!(error["message"].is_string());
    }
    // A body over the transport bound is refused from its Content-Length alone (raw HTTP, so
    // the client is not still writing the body when the server answers).
    let head = "POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n";
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    // Read until the JSON error body is complete (the server may keep the connection open).
    let mut response = String::new();
    let mut buf = [0u8; 4096];
    while !response.ends_with('}') {
        let n = tokio::time::timeout(common::WAIT, tcp.read(&mut buf))
            .await
            .expect("413 in time")
            .unwrap();
        assert!(n > 0, "closed before the response: {response:?}");
        response.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"status\":413"), "{response}");

    // Only the one model b is left: nothing above was half-written.
    assert_eq!(
        body(http.get(url("/api/todos")).send().await.unwrap())
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn request_ids_and_one_store_for_both_transports() {
    let (_dir, db) = temp_db();
    let server = ServerProcess::start(&db, &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/api/notes", server.url());
    let post = || {
        http.post(&url)
            .header("x-request-id", "rest-1")
            .json(&json!({"text": "hi"}))
    };
    let first = body(post().send().await.unwrap()).await;
    let again = body(post().send().await.unwrap()).await;
    assert_eq!(first, again);

    let mut socket = Client::connect(server.port).await;
    assert_eq!(
        socket.ok("read", req("/api/notes", None)).await,
        json!([first])
    );
    let from_socket = socket
        .ok("create", req("/api/notes", Some(json!({"text": "yo"}))))
        .await;
    let listed = body(http.get(&url).send().await.unwrap()).await;
    assert_eq!(listed, json!([first, from_socket]));
}

#[tokio::test]
async fn static_files_and_vendor_scripts() {
    let repo = tempfile::tempdir().unwrap();
    let www = repo.path().join("www");
    std::fs::create_dir_all(www.join("vendor")).unwrap();
    std::fs::create_dir_all(repo.path().join("node_modules/jquery/dist")).unwrap();
    std::fs::create_dir_all(repo.path().join("node_modules/backbone")).unwrap();
    std::fs::write(www.join("index.html"), "<!doctype html><title>demo</title>").unwrap();
    std::fs::write(
        www.join("vendor/backbone.js"),
        "/* backbone from www/vendor */",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("node_modules/backbone/backbone.js"),
        "/* shadowed */",
    )
    .unwrap();
    std::fs::write(
        repo.path().join("node_modules/jquery/dist/jquery.js"),
        "/* jquery from node_modules */",
    )
    .unwrap();
    std::fs::write(repo.path().join("secret.txt"), "no").unwrap();

    let (_dir, db) = temp_db();
    let www_arg = www.to_str().unwrap();
    let server = ServerProcess::start(&db, &["--www", www_arg]);
    let get = |path: &str| reqwest::get(format!("{}{path}", server.url()));

    let index = get("/").await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().await.unwrap().contains("<title>demo</title>"));
    let backbone = get("/vendor/backbone.js").await.unwrap();
    assert!(backbone.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    assert_eq!(
        backbone.text().await.unwrap(),
        "/* backbone from www/vendor */"
    );
    assert_eq!(
        get("/vendor/jquery.js")
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "/* jquery from node_modules */"
    );
    assert_eq!(
        get("/vendor/underscore.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/vendor/..%2Fsecret.txt").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/..%2Fsecret.txt").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get("/missing.html").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// `request` with a raw `body` declared as JSON.
fn json_body(request: reqwest::RequestBuilder, body: &'static str) -> reqwest::RequestBuilder {
    request
        .header("content-type", "application/json")
        .body(body)
}
