//! The connection: requests before connect, the bounded queue, the server closing the
//! connection (DISCONNECT, transport close, TCP drop, garbage), reconnection, heartbeat,
//! namespaces with auth, and the app's own events.

use std::cell::RefCell;
use std::rc::Rc;

use crate::sync::sync;
use js_sys::Array;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use super::support::*;

/// Records every occurrence of the lifecycle events on `socket` as `"name:arg"`.
fn log_events(socket: &crate::socket::Socket) -> Rc<RefCell<Vec<String>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    for name in [
        "connect",
        "disconnect",
        "connect_error",
        "error",
        "reconnect_attempt",
        "reconnect",
    ] {
        let log = log.clone();
        socket.on(
            name.into(),
            func(move |arg| {
                let arg = arg
                    .as_string()
                    .or_else(|| get(&arg, "message").as_string())
                    .or_else(|| arg.as_f64().map(|n| n.to_string()))
                    .unwrap_or_default();
                log.borrow_mut().push(format!("{name}:{arg}"));
            }),
        );
    }
    log
}

fn has(log: &Rc<RefCell<Vec<String>>>, entry: &str) -> bool {
    log.borrow().iter().any(|e| e.starts_with(entry))
}

#[wasm_bindgen_test]
async fn requests_made_before_connect_are_sent_on_connect() {
    let socket = connect_only("ack", &[]);
    assert!(!socket.connected());
    let todos = unique("/api/early");
    let a = sync(
        "create",
        obj(&[("url", todos.as_str().into())]),
        attrs(r#"{"n":1}"#),
    )
    .unwrap();
    let b = sync(
        "create",
        obj(&[("url", todos.as_str().into())]),
        attrs(r#"{"n":2}"#),
    )
    .unwrap();
    assert!(
        !socket.connected(),
        "still connecting when the requests were made"
    );
    let a = settle(a).await.expect("first");
    let b = settle(b).await.expect("second");
    assert_eq!(get(&a, "n").as_f64(), Some(1.0));
    assert_eq!(get(&b, "n").as_f64(), Some(2.0));
    assert!(socket.connected());
}

#[wasm_bindgen_test]
async fn the_offline_queue_is_bounded() {
    let _socket = connect_only("ack", &[("queueSize", 1.into())]);
    let url = unique("/api/q");
    let first = sync(
        "read",
        obj(&[("url", url.as_str().into())]),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let rec = recorder(&JsValue::UNDEFINED);
    let second = sync(
        "read",
        obj(&[("url", url.as_str().into())]),
        get(&rec, "options"),
    )
    .unwrap();
    let err = settle(second).await.expect_err("queue full");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("queue full")
    );
    assert_eq!(get(&err, "status").as_f64(), Some(0.0));
    assert_eq!(
        get(&rec, "options.textStatus").as_string().as_deref(),
        Some("queue full")
    );
    settle(first)
        .await
        .expect("the queued one is sent on connect");
}

#[wasm_bindgen_test]
async fn server_disconnect_fails_pending_and_stays_disconnected() {
    let socket = open("ack", &[]).await;
    let log = log_events(&socket);
    let pending = sync(
        "read",
        obj(&[("url", unique("/timeout/api/p").into())]),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let err = call("read", &unique("/disconnect/api/x"), &obj(&[]))
        .await
        .expect_err("disconnected");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("disconnect")
    );
    let err = settle(pending)
        .await
        .expect_err("other pending requests fail too");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("disconnect")
    );
    assert!(!socket.connected());
    assert!(
        has(&log, "disconnect:io server disconnect"),
        "{:?}",
        log.borrow()
    );
    sleep(1500).await;
    assert!(
        !has(&log, "reconnect_attempt"),
        "no reconnection after a server disconnect"
    );
    let err = call("read", &unique("/api/y"), &obj(&[]))
        .await
        .expect_err("closed");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("disconnect")
    );
}

#[wasm_bindgen_test]
async fn a_dropped_transport_reconnects_and_unanswered_requests_are_resent() {
    let fast = [
        ("reconnectionDelay", 50.into()),
        ("reconnectionDelayMax", 100.into()),
    ];
    let socket = open("ack", &fast).await;
    let log = log_events(&socket);
    let before = stats().await;
    // Answered only after 400 ms: by then its connection is gone, so it must be re-sent.
    let todos = unique("/delay/400/api/resend");
    let slow = sync(
        "create",
        obj(&[("url", todos.as_str().into())]),
        attrs(r#"{"k":1}"#),
    )
    .unwrap();
    sleep(50).await;
    let closing = obj(&[("timeout", 1000.into())]);
    let closer = sync(
        "read",
        obj(&[("url", unique("/close/api/c").into())]),
        closing,
    )
    .unwrap();
    let created = settle(slow).await.expect("re-sent after reconnecting");
    assert_eq!(get(&created, "k").as_f64(), Some(1.0));
    assert!(
        has(&log, "disconnect:transport close"),
        "{:?}",
        log.borrow()
    );
    assert!(has(&log, "reconnect_attempt"), "{:?}", log.borrow());
    assert!(has(&log, "reconnect:"), "{:?}", log.borrow());
    assert!(socket.connected());
    // The same requestId was applied once: the server counts the repeat as a duplicate.
    let list = call("read", &todos.replace("/delay/400", ""), &obj(&[]))
        .await
        .expect("list");
    assert_eq!(
        Array::from(&list).length(),
        1,
        "applied once: {}",
        text(&list)
    );
    let after = stats().await;
    let dup = |s: &JsValue| get(s, "duplicates").as_f64().unwrap_or(0.0);
    assert!(
        dup(&after) > dup(&before),
        "the re-sent request was recognised as a repeat"
    );
    // The request that closes the connection every time ends with its own timeout.
    let err = settle(closer).await.expect_err("never answered");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("timeout")
    );
}

async fn fails_without_reconnection(hook: &str, status_text: &str) {
    let socket = open("ack", &[("reconnection", false.into())]).await;
    let log = log_events(&socket);
    let pending = sync(
        "read",
        obj(&[("url", unique("/timeout/api/p").into())]),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let err = call("read", &unique(hook), &obj(&[]))
        .await
        .expect_err(hook);
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some(status_text),
        "{hook}"
    );
    let err = settle(pending).await.expect_err("pending fails too");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some(status_text)
    );
    assert!(!socket.connected());
    assert!(has(&log, "disconnect:"), "{hook}: {:?}", log.borrow());
}

#[wasm_bindgen_test]
async fn server_closing_the_transport_without_reconnection() {
    fails_without_reconnection("/close/api/x", "disconnect").await;
}

#[wasm_bindgen_test]
async fn server_dropping_tcp_without_reconnection() {
    fails_without_reconnection("/kill/api/x", "disconnect").await;
}

#[wasm_bindgen_test]
async fn malformed_frames_are_reported_and_fail_requests() {
    fails_without_reconnection("/garbage/api/x", "protocol error").await;
    // With reconnection the socket reports the error and comes back.
    let fast = [
        ("reconnectionDelay", 50.into()),
        ("reconnectionDelayMax", 100.into()),
    ];
    let socket = open("ack", &fast).await;
    let log = log_events(&socket);
    let options = obj(&[("timeout", 300.into())]);
    let _ = call("read", &unique("/garbage/api/y"), &options).await;
    assert!(has(&log, "error:"), "{:?}", log.borrow());
    assert!(wait_for(|| socket.connected(), 3000).await);
    call("read", &unique("/api/z"), &obj(&[]))
        .await
        .expect("works after reconnecting");
}

#[wasm_bindgen_test]
async fn binary_packets_are_reported_not_fatal() {
    let socket = open("ack", &[]).await;
    let log = log_events(&socket);
    let err = call(
        "read",
        &unique("/binary/api/b"),
        &obj(&[("timeout", 300.into())]),
    )
    .await;
    assert_eq!(
        get(&err.expect_err("no answer"), "statusText")
            .as_string()
            .as_deref(),
        Some("timeout")
    );
    assert!(has(&log, "error:binary"), "{:?}", log.borrow());
    assert!(socket.connected());
}

#[wasm_bindgen_test]
async fn connection_stays_alive_across_heartbeats() {
    let socket = open("ack", &[]).await;
    let log = log_events(&socket);
    let id = socket.id().expect("sid");
    let pongs = |s: &JsValue| get(s, "pongs").as_f64().unwrap_or(0.0);
    let before = pongs(&stats().await);
    sleep(ping_interval() * 6).await;
    let after = pongs(&stats().await);
    assert!(after - before >= 4.0, "answered pings: {before} -> {after}");
    assert!(socket.connected());
    assert_eq!(socket.id(), Some(id), "the same connection");
    assert!(
        log.borrow().is_empty(),
        "no disconnects: {:?}",
        log.borrow()
    );
    call("read", &unique("/api/alive"), &obj(&[]))
        .await
        .expect("still serving");
}

#[wasm_bindgen_test]
async fn namespace_with_auth() {
    let ok = open(
        "ack",
        &[
            ("namespace", "/private".into()),
            ("auth", json(r#"{"token":"secret"}"#)),
        ],
    )
    .await;
    call("read", &unique("/api/private"), &obj(&[]))
        .await
        .expect("authorised namespace");
    assert!(ok.connected());

    let refused = connect_only(
        "event",
        &[
            ("namespace", "/private".into()),
            ("auth", json(r#"{"token":"wrong"}"#)),
        ],
    );
    let log = log_events(&refused);
    let err = call("read", &unique("/api/private"), &obj(&[]))
        .await
        .expect_err("refused");
    // The server refuses with the message "unauthorized": an HTTP-like 401.
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("unauthorized")
    );
    assert_eq!(get(&err, "status").as_f64(), Some(401.0));
    assert!(get(&err, "responseJSON.message").is_string());
    assert!(has(&log, "connect_error:"), "{:?}", log.borrow());
    assert!(!refused.connected());
}

/// The CONNECT payload the server saw, asked through the test server's `handshake` event.
async fn handshake_auth(socket: &crate::socket::Socket) -> JsValue {
    let seen = Rc::new(RefCell::new(None::<JsValue>));
    let s = seen.clone();
    let ack = func(move |auth| *s.borrow_mut() = Some(auth));
    socket
        .emit("handshake", &Array::new(), Some(ack))
        .expect("emit");
    assert!(wait_for(|| seen.borrow().is_some(), 3000).await, "no ack");
    let auth = seen.borrow().clone().unwrap();
    auth
}

#[wasm_bindgen_test]
async fn the_connect_payload_names_the_page_s_client_id() {
    // Without `auth`, the payload is the page's client id alone; with it, the app's fields
    // are kept beside it. The server scopes request ids by it (issue 10).
    let plain = open("ack", &[]).await;
    let auth = handshake_auth(&plain).await;
    let client_id = get(&auth, "clientId").as_string().expect("clientId");
    assert!(!client_id.is_empty());
    let with_token = open(
        "ack",
        &[
            ("namespace", "/private".into()),
            ("auth", json(r#"{"token":"secret"}"#)),
        ],
    )
    .await;
    let auth = handshake_auth(&with_token).await;
    assert_eq!(get(&auth, "token").as_string().as_deref(), Some("secret"));
    assert_eq!(get(&auth, "clientId").as_string(), Some(client_id.clone()));
    // An app that names its own client id keeps it.
    let own = open("ack", &[("auth", json(r#"{"clientId":"mine"}"#))]).await;
    let auth = handshake_auth(&own).await;
    assert_eq!(get(&auth, "clientId").as_string().as_deref(), Some("mine"));
}

#[wasm_bindgen_test]
async fn connecting_again_fails_the_old_connections_requests() {
    let _old = open("ack", &[]).await;
    let pending = sync(
        "read",
        obj(&[("url", unique("/timeout/api/old").into())]),
        JsValue::UNDEFINED,
    )
    .unwrap();
    let _new = open("ack", &[]).await;
    let err = settle(pending).await.expect_err("old connection closed");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("disconnect")
    );
}

#[wasm_bindgen_test]
async fn app_events_and_acks_share_the_socket() {
    let socket = open("ack", &[]).await;
    let echoed = Rc::new(RefCell::new(Vec::<String>::new()));
    let acked = Rc::new(RefCell::new(Vec::<String>::new()));
    let e = echoed.clone();
    socket.once(
        "echoed".into(),
        func(move |first| e.borrow_mut().push(text(&first))),
    );
    let a = acked.clone();
    let ack = func(move |first| a.borrow_mut().push(text(&first)));
    let args = Array::of2(&json(r#"{"hello":"wörld"}"#), &2.into());
    socket.emit("echo", &args, Some(ack.clone())).expect("emit");
    socket
        .emit("echo", &Array::of1(&3.into()), None)
        .expect("emit again");
    assert!(
        wait_for(
            || !acked.borrow().is_empty() && echoed.borrow().len() == 1,
            3000
        )
        .await
    );
    sleep(200).await;
    assert_eq!(*acked.borrow(), [r#"{"hello":"wörld"}"#], "the ack, once");
    assert_eq!(
        *echoed.borrow(),
        [r#"{"hello":"wörld"}"#],
        "once: the second echo is not delivered"
    );
    assert!(
        socket.emit("connect", &Array::new(), None).is_err(),
        "reserved names are refused"
    );
}

#[wasm_bindgen_test]
async fn connection_refused_fails_requests_clearly() {
    // Nothing listens on port 1 (and browsers refuse it outright): every attempt fails.
    let nowhere = ("url", JsValue::from_str("http://127.0.0.1:1"));
    let fast = [
        nowhere.clone(),
        ("timeout", 600.into()),
        ("reconnectionDelay", 50.into()),
        ("reconnectionDelayMax", 100.into()),
    ];
    let socket = connect_only("ack", &fast);
    let log = log_events(&socket);
    let err = call("read", &unique("/api/r"), &obj(&[]))
        .await
        .expect_err("unreachable");
    assert_eq!(get(&err, "status").as_f64(), Some(0.0));
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("connect_error")
    );
    assert!(has(&log, "connect_error:"), "{:?}", log.borrow());
    assert!(has(&log, "error:connection failed"), "{:?}", log.borrow());
    assert!(has(&log, "reconnect_attempt:"), "{:?}", log.borrow());
    assert!(!socket.connected());

    let socket = connect_only("ack", &[nowhere, ("reconnection", false.into())]);
    let err = call("read", &unique("/api/r"), &obj(&[]))
        .await
        .expect_err("unreachable");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("connect_error")
    );
    assert!(!socket.connected());
}

/// `connect()`'s options: a wrong type or value is a `TypeError` naming the option, thrown
/// before anything else happens.
#[wasm_bindgen_test]
fn bad_options_are_type_errors_naming_the_option() {
    use wasm_bindgen::JsCast;
    let cases: [(&str, JsValue); 9] = [
        ("url", 42.into()),
        ("timeout", "soon".into()),
        ("timeout", (-1).into()),
        ("reconnection", "yes".into()),
        ("replies", "sometimes".into()),
        ("replies", 5.into()),
        ("transport", "pigeon".into()),
        ("transport", JsValue::TRUE),
        ("fallbackAfter", 0.into()),
    ];
    for (key, value) in cases {
        let shown = format!("{key}: {value:?}");
        let Err(error) = crate::socket::connect(obj(&[(key, value)])) else {
            panic!("{shown} was accepted");
        };
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{shown}");
        let message = get(&error, "message").as_string().unwrap_or_default();
        assert!(message.contains(key), "{shown}: {message}");
    }
}
