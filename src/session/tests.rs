//! The session on literal frames: handshake, the request table, both reply modes, queueing,
//! timeouts, aborts and app events. (Connection loss and heartbeat: `tests_connection.rs`.)

use super::*;

pub(super) const OPEN: &str =
    r#"0{"sid":"e1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

pub(super) fn quiet() -> Config<String> {
    Config {
        randomization_factor: 0.0,
        ..Config::default()
    }
}

/// A session driven through the handshake at time 0.
pub(super) fn connected(config: Config<String>) -> Session<String> {
    let mut s = Session::new(config);
    assert_eq!(s.start(0), [Effect::OpenSocket]);
    assert_eq!(s.on_open(0), []);
    let connect = s.on_frame(0, OPEN);
    assert_eq!(connect.len(), 1);
    let ns = s.config().namespace.clone();
    let ok = if ns == "/" {
        r#"40{"sid":"s1"}"#.to_owned()
    } else {
        format!(r#"40{ns},{{"sid":"s1"}}"#)
    };
    assert_eq!(s.on_frame(0, &ok), [Effect::Lifecycle(Lifecycle::Connect)]);
    s
}

pub(super) fn req(method: &str, endpoint: &str, payload: &str) -> Request<String> {
    Request {
        method: method.into(),
        endpoint: endpoint.into(),
        ctx: None,
        payload: payload.into(),
        timeout_ms: None,
    }
}

pub(super) fn send(frame: &str) -> Effect<String> {
    Effect::Send(frame.into())
}

/// A request settled by an ACK `[null, result]`, handed over unread.
pub(super) fn ok(id: RequestId, result: &str) -> Effect<String> {
    acked(id, &format!("[null,{result}]"))
}

/// A request settled by the ACK array `raw`, handed over unread.
pub(super) fn acked(id: RequestId, raw: &str) -> Effect<String> {
    Effect::Settle {
        id,
        outcome: Ok(Reply::Ack(raw.into())),
    }
}

/// A request settled by the event-mode reply `raw` (the reply event's whole array).
pub(super) fn replied(id: RequestId, raw: &str) -> Effect<String> {
    Effect::Settle {
        id,
        outcome: Ok(Reply::Event(raw.into())),
    }
}

pub(super) fn failed(id: RequestId, kind: FailureKind) -> Effect<String> {
    Effect::Settle {
        id,
        outcome: Err(Failure::of(kind)),
    }
}

fn event_mode() -> Config<String> {
    Config {
        replies: ReplyMode::Event,
        ..quiet()
    }
}

#[test]
fn handshake_sends_connect_and_waits_for_the_sid() {
    let mut s = Session::new(quiet());
    assert!(!s.is_connected());
    assert_eq!(s.start(0), [Effect::OpenSocket]);
    assert_eq!(s.start(0), [], "start is idempotent");
    assert_eq!(s.on_frame(5, OPEN), [send("40")]);
    assert!(!s.is_connected());
    assert_eq!(
        s.on_frame(6, r#"40{"sid":"abc"}"#),
        [Effect::Lifecycle(Lifecycle::Connect)]
    );
    assert!(s.is_connected());
    assert_eq!(s.sid(), Some("abc"));
}

#[test]
fn namespace_and_auth_go_in_the_connect_packet() {
    let mut s = Session::new(Config {
        namespace: "/admin".into(),
        auth: Some(r#"{"token":"t"}"#.into()),
        ..quiet()
    });
    s.start(0);
    assert_eq!(s.on_frame(0, OPEN), [send(r#"40/admin,{"token":"t"}"#)]);
    // The main namespace's traffic is not ours.
    assert_eq!(s.on_frame(0, r#"40{"sid":"main"}"#), []);
    assert_eq!(
        s.on_frame(0, r#"40/admin,{"sid":"a"}"#),
        [Effect::Lifecycle(Lifecycle::Connect)]
    );
    let (id, fx) = s.request(0, req("read", "/api/x", "{}"));
    assert_eq!(fx, [send(r#"42/admin,0["read",{}]"#)]);
    assert_eq!(s.on_frame(0, r#"430[null,1]"#), []);
    assert_eq!(s.on_frame(0, r#"43/admin,0[null,[]]"#), [ok(id, "[]")]);
}

#[test]
fn connect_error_fails_pending_requests_and_does_not_reconnect() {
    let mut s = Session::new(quiet());
    s.start(0);
    let (id, fx) = s.request(0, req("read", "/api/x", "{}"));
    assert_eq!(fx, []);
    s.on_frame(0, OPEN);
    let fx = s.on_frame(1, r#"44{"message":"Not authorized"}"#);
    assert_eq!(
        fx,
        [
            Effect::Lifecycle(Lifecycle::ConnectError(ConnectError::Refused {
                body: r#"{"message":"Not authorized"}"#.into(),
                message: Some("Not authorized".into()),
            })),
            Effect::Lifecycle(Lifecycle::Error("connection refused by the server")),
            Effect::CloseSocket,
            Effect::Settle {
                id,
                outcome: Err(Failure {
                    kind: FailureKind::ConnectError,
                    status: 0,
                    body: Some(r#"{"message":"Not authorized"}"#.into()),
                    message: Some("Not authorized".into()),
                })
            },
        ]
    );
    assert!(s.is_closed());
    assert_eq!(s.next_deadline(), None);
    let (id2, fx) = s.request(2, req("read", "/api/x", "{}"));
    assert_eq!(fx, [failed(id2, FailureKind::Disconnect)]);
    assert_eq!(s.tick(100_000), []);
}

#[test]
fn ack_mode_round_trip() {
    let mut s = connected(quiet());
    let payload =
        r#"{"signature":{"endPoint":"/api/todos","requestId":"r1"},"item":{"title":"a"}}"#;
    let (id, fx) = s.request(10, req("create", "/api/todos", payload));
    assert_eq!(fx, [send(&format!(r#"420["create",{payload}]"#))]);
    assert_eq!(s.pending(), 1);
    assert_eq!(
        s.on_frame(11, r#"430[null,{"id":1,"title":"a"}]"#),
        [ok(id, r#"{"id":1,"title":"a"}"#)]
    );
    assert_eq!(s.pending(), 0);
    // The same ack again, and acks nobody asked for, are ignored.
    assert_eq!(s.on_frame(12, r#"430[null,{"id":1}]"#), []);
    assert_eq!(s.on_frame(12, r#"4399[null,{"id":1}]"#), []);
    assert_eq!(s.on_frame(12, r#"4318446744073709551615[null]"#), []);
}

#[test]
fn ack_ids_count_up_and_acks_may_come_out_of_order() {
    let mut s = connected(quiet());
    let ids: Vec<RequestId> = (0..3)
        .map(|i| {
            let (id, fx) = s.request(0, req("read", "/api/t", "{}"));
            assert_eq!(fx, [send(&format!(r#"42{i}["read",{{}}]"#))]);
            id
        })
        .collect();
    assert_eq!(s.on_frame(1, "432[null,2]"), [ok(ids[2], "2")]);
    assert_eq!(s.on_frame(1, "430[null,0]"), [ok(ids[0], "0")]);
    assert_eq!(s.on_frame(1, "431[]"), [acked(ids[1], "[]")]);
}

#[test]
fn error_acks_are_handed_over_unread() {
    // Telling an error from a success (`if (err)`) is JavaScript's truthiness, applied at the
    // edge once the JS engine parsed the array: the session never reads the body.
    let mut s = connected(quiet());
    for (i, raw) in [
        r#"[{"status":404,"message":"not found"}]"#,
        "[0.0,7]",
        "[-0.0,7]",
        "[0e0,7]",
        "[1e-400,7]",
        r#"["boom"]"#,
    ]
    .iter()
    .enumerate()
    {
        let (id, _) = s.request(0, req("read", "/api/t", "{}"));
        assert_eq!(s.on_frame(1, format!("43{i}{raw}")), [acked(id, raw)]);
    }
}

#[test]
fn requests_before_connect_wait_in_order_and_go_out_on_connect() {
    let mut s = Session::new(quiet());
    let (a, fx) = s.request(0, req("create", "/api/t", r#"{"n":1}"#));
    assert_eq!(fx, []);
    s.start(0);
    let (b, _) = s.request(0, req("create", "/api/t", r#"{"n":2}"#));
    s.on_frame(1, OPEN);
    let fx = s.on_frame(2, r#"40{"sid":"s"}"#);
    assert_eq!(
        fx,
        [
            Effect::Lifecycle(Lifecycle::Connect),
            send(r#"420["create",{"n":1}]"#),
            send(r#"421["create",{"n":2}]"#),
        ]
    );
    assert_eq!(s.on_frame(3, "431[null,2]"), [ok(b, "2")]);
    assert_eq!(s.on_frame(3, "430[null,1]"), [ok(a, "1")]);
}

#[test]
fn the_offline_queue_is_bounded() {
    let mut s = Session::new(Config {
        queue_size: 2,
        ..quiet()
    });
    s.start(0);
    assert_eq!(s.request(0, req("read", "/a", "1")).1, []);
    assert_eq!(s.request(0, req("read", "/a", "2")).1, []);
    let (c, fx) = s.request(0, req("read", "/a", "3"));
    assert_eq!(fx, [failed(c, FailureKind::QueueFull)]);
    s.on_frame(0, OPEN);
    let fx = s.on_frame(0, r#"40{"sid":"s"}"#);
    assert_eq!(fx.len(), 3, "connect + the two queued: {fx:?}");
    // Connected: no bound on requests in flight.
    for _ in 0..5 {
        assert_eq!(s.request(0, req("read", "/a", "4")).1.len(), 1);
    }
}

#[test]
fn requests_time_out_and_late_acks_are_ignored() {
    let mut s = connected(quiet());
    let (a, _) = s.request(100, req("read", "/a", "{}"));
    let (b, _) = s.request(
        100,
        Request {
            timeout_ms: Some(50),
            ..req("read", "/a", "{}")
        },
    );
    assert_eq!(s.next_deadline(), Some(150));
    assert_eq!(s.tick(149), []);
    assert_eq!(s.tick(150), [failed(b, FailureKind::Timeout)]);
    assert_eq!(s.next_deadline(), Some(10_100));
    assert_eq!(
        s.on_frame(151, "431[null,1]"),
        [],
        "late ack of the timed-out request"
    );
    assert_eq!(s.tick(10_100), [failed(a, FailureKind::Timeout)]);
    assert_eq!(s.pending(), 0);
}

#[test]
fn queued_requests_time_out_too() {
    let mut s = Session::new(Config {
        timeout_ms: 300,
        ..quiet()
    });
    s.start(0);
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    assert_eq!(s.tick(300), [failed(a, FailureKind::Timeout)]);
}

#[test]
fn abort_fails_the_request_and_ignores_its_reply() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    assert_eq!(s.abort(1, a), [failed(a, FailureKind::Abort)]);
    assert_eq!(s.abort(1, a), []);
    assert_eq!(s.on_frame(2, "430[null,1]"), []);
}

#[test]
fn event_mode_reply_names_and_fifo_per_name() {
    let mut s = connected(event_mode());
    let (a, fx) = s.request(0, req("create", "/api/todos", r#"{"n":1}"#));
    assert_eq!(fx, [send(r#"42["create",{"n":1}]"#)]);
    let (b, fx) = s.request(0, req("create", "/api/todos", r#"{"n":2}"#));
    assert_eq!(fx, [], "same reply name: waits");
    let (c, fx) = s.request(0, req("read", "/api/todos", r#"{"n":3}"#));
    assert_eq!(
        fx,
        [send(r#"42["read",{"n":3}]"#)],
        "another name: goes at once"
    );
    let fx = s.on_frame(1, r#"42["create:/api/todos",{"id":1}]"#);
    assert_eq!(
        fx,
        [
            replied(a, r#"["create:/api/todos",{"id":1}]"#),
            send(r#"42["create",{"n":2}]"#)
        ]
    );
    assert_eq!(
        s.on_frame(1, r#"42["read:/api/todos",[]]"#),
        [replied(c, r#"["read:/api/todos",[]]"#)]
    );
    let error = r#"["create:/api/todos",{"error":{"status":400,"message":"bad"}}]"#;
    assert_eq!(s.on_frame(2, format!("42{error}")), [replied(b, error)]);
    // With nothing awaiting it, a reply-like event is an ordinary app event.
    let fx = s.on_frame(3, r#"42["create:/api/todos",{"id":9}]"#);
    assert_eq!(
        fx,
        [Effect::Event {
            name: "create:/api/todos".into(),
            data: r#"["create:/api/todos",{"id":9}]"#.into(),
            ack: None,
        }]
    );
}

#[test]
fn event_mode_ctx_and_non_error_replies() {
    let mut s = connected(event_mode());
    let (a, fx) = s.request(
        0,
        Request {
            ctx: Some("c1".into()),
            ..req("update", "/api/t/1", "{}")
        },
    );
    assert_eq!(fx.len(), 1);
    assert_eq!(
        s.on_frame(1, r#"42["update:/api/t/1",{"id":1}]"#).len(),
        1,
        "no ctx: not the reply"
    );
    let reply = r#"["update:/api/t/1:c1",{"error":"text","x":1}]"#;
    assert_eq!(s.on_frame(1, format!("42{reply}")), [replied(a, reply)]);
    let (b, _) = s.request(0, req("read", "/api/t", "{}"));
    assert_eq!(
        s.on_frame(1, r#"42["read:/api/t"]"#),
        [replied(b, r#"["read:/api/t"]"#)]
    );
}

#[test]
fn event_mode_timed_out_reply_cannot_resolve_the_next_request() {
    let mut s = connected(Config {
        timeout_ms: 100,
        ..event_mode()
    });
    let (a, _) = s.request(0, req("read", "/api/slow", "1"));
    let patient = Request {
        timeout_ms: Some(1000),
        ..req("read", "/api/slow", "2")
    };
    let (b, fx) = s.request(0, patient);
    assert_eq!(fx, []);
    assert_eq!(
        s.tick(100),
        [failed(a, FailureKind::Timeout)],
        "b stays queued behind a's ghost"
    );
    // a's late reply is swallowed and b goes out.
    assert_eq!(
        s.on_frame(150, r#"42["read:/api/slow","late"]"#),
        [send(r#"42["read",2]"#)]
    );
    assert_eq!(
        s.on_frame(160, r#"42["read:/api/slow","mine"]"#),
        [replied(b, r#"["read:/api/slow","mine"]"#)]
    );

    // When the late reply never comes, the name is freed after another timeout period.
    let (c, _) = s.request(200, req("read", "/api/never", "3"));
    let slow = Request {
        timeout_ms: Some(1000),
        ..req("read", "/api/never", "4")
    };
    let (d, _) = s.request(200, slow);
    assert_eq!(s.tick(300), [failed(c, FailureKind::Timeout)]);
    assert_eq!(s.next_deadline(), Some(400));
    assert_eq!(s.tick(399), []);
    assert_eq!(s.tick(400), [send(r#"42["read",4]"#)]);
    assert_eq!(
        s.on_frame(410, r#"42["read:/api/never",4]"#),
        [replied(d, r#"["read:/api/never",4]"#)]
    );
}

#[test]
fn app_events_and_emits_with_acks() {
    let mut s = Session::new(quiet());
    s.start(0);
    assert_eq!(s.emit(0, r#"["hello","early"]"#, None, None), []);
    s.on_frame(0, OPEN);
    let fx = s.on_frame(0, r#"40{"sid":"s"}"#);
    assert_eq!(
        fx,
        [
            Effect::Lifecycle(Lifecycle::Connect),
            send(r#"42["hello","early"]"#)
        ]
    );
    assert_eq!(
        s.emit(0, r#"["chat","hi",{"a":1}]"#, Some(77), None),
        [send(r#"420["chat","hi",{"a":1}]"#)]
    );
    assert_eq!(
        s.on_frame(1, r#"430["ok",2]"#),
        [Effect::AppAck {
            handle: 77,
            args: Some(r#"["ok",2]"#.into())
        }]
    );
    assert_eq!(
        s.on_frame(2, r#"42["news",{"a":1},2]"#),
        [Effect::Event {
            name: "news".into(),
            data: r#"["news",{"a":1},2]"#.into(),
            ack: None,
        }]
    );
    // The server asks for an ack: the listener gets its id, and the answer goes back as 43.
    assert_eq!(
        s.on_frame(2, r#"425["ping?"]"#),
        [Effect::Event {
            name: "ping?".into(),
            data: r#"["ping?"]"#.into(),
            ack: Some(5),
        }]
    );
    assert_eq!(s.ack(3, 5, r#"["pong",1]"#), [send(r#"435["pong",1]"#)]);
    // Escaped and non-ASCII event names are read from the header.
    assert_eq!(
        s.on_frame(2, r#"42["q\"u\u00e9\ud83d\ude00",1]"#),
        [Effect::Event {
            name: "q\"u\u{e9}\u{1f600}".into(),
            data: r#"["q\"u\u00e9\ud83d\ude00",1]"#.into(),
            ack: None,
        }]
    );
}

#[test]
fn offline_emits_are_buffered_and_acks_may_time_out() {
    let mut s = Session::new(quiet());
    s.start(0);
    // Made offline, with a 500 ms ack timeout: the timeout counts from the emit.
    assert_eq!(s.emit(0, r#"["late"]"#, Some(1), Some(500)), []);
    assert_eq!(s.emit(0, r#"["soon"]"#, Some(2), Some(5000)), []);
    assert_eq!(s.next_deadline(), Some(500));
    assert_eq!(
        s.tick(500),
        [Effect::AppAck {
            handle: 1,
            args: None
        }]
    );
    s.on_frame(600, OPEN);
    // The timed-out emit is not sent; the other is, with an ack id.
    assert_eq!(
        s.on_frame(600, r#"40{"sid":"s"}"#),
        [
            Effect::Lifecycle(Lifecycle::Connect),
            send(r#"420["soon"]"#)
        ]
    );
    // Sent and never answered: the timeout fires once, and a late ack is ignored.
    assert_eq!(
        s.tick(5000),
        [Effect::AppAck {
            handle: 2,
            args: None
        }]
    );
    assert_eq!(s.on_frame(5001, r#"430["ok"]"#), []);
}

#[test]
fn events_before_the_connect_answer_are_delivered_after_it() {
    let mut s = Session::new(quiet());
    s.start(0);
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    s.on_frame(0, OPEN);
    // python-socketio's connect handler may emit before the namespace CONNECT answer.
    assert_eq!(s.on_frame(1, r#"42["welcome",1]"#), []);
    assert_eq!(s.on_frame(1, r#"423["hello?"]"#), []);
    assert_eq!(
        s.on_frame(2, r#"40{"sid":"s"}"#),
        [
            Effect::Lifecycle(Lifecycle::Connect),
            Effect::Event {
                name: "welcome".into(),
                data: r#"["welcome",1]"#.into(),
                ack: None,
            },
            Effect::Event {
                name: "hello?".into(),
                data: r#"["hello?"]"#.into(),
                ack: Some(3),
            },
            send(r#"420["read",{}]"#),
        ]
    );
    assert_eq!(s.on_frame(3, "430[null,1]"), [ok(a, "1")]);
}

#[test]
fn client_close_disconnects_and_fails_pending() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.close(1);
    assert_eq!(
        fx,
        [
            send("41"),
            Effect::CloseSocket,
            Effect::Lifecycle(Lifecycle::Disconnect("io client disconnect")),
            failed(a, FailureKind::Disconnect)
        ]
    );
    assert!(s.is_closed());
    assert_eq!(s.on_frame(2, "430[null,1]"), []);
    assert_eq!(s.on_close(2), []);
    assert_eq!(
        s.emit(2, r#"["x"]"#, None, None),
        [Effect::Lifecycle(Lifecycle::Error(
            "emit on a closed socket"
        ))]
    );
}

#[test]
fn server_disconnect_fails_pending_without_reconnecting() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.on_frame(1, "41");
    assert_eq!(
        fx,
        [
            Effect::CloseSocket,
            Effect::Lifecycle(Lifecycle::Disconnect("io server disconnect")),
            Effect::Lifecycle(Lifecycle::Error("disconnected by the server")),
            failed(a, FailureKind::Disconnect)
        ]
    );
    assert!(s.is_closed());
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.on_close(2), []);
}

#[test]
fn oversized_requests_fail_with_413_instead_of_killing_the_connection() {
    let mut s = Session::new(quiet());
    s.start(0);
    s.on_frame(
        0,
        r#"0{"sid":"e","pingInterval":100,"pingTimeout":100,"maxPayload":40}"#,
    );
    s.on_frame(0, r#"40{"sid":"s"}"#);
    let (a, fx) = s.request(
        0,
        req(
            "create",
            "/a",
            &format!(r#"{{"big":"{}"}}"#, "x".repeat(40)),
        ),
    );
    let Effect::Settle {
        id,
        outcome: Err(f),
    } = &fx[0]
    else {
        panic!("{fx:?}")
    };
    assert_eq!((*id, f.status), (a, 413));
    assert_eq!(
        s.request(0, req("read", "/a", "{}")).1,
        [send(r#"421["read",{}]"#)]
    );
}

#[test]
fn a_binary_ack_fails_its_request_and_the_connection_stays() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.on_frame(1, r#"461-0[{"_placeholder":true,"num":0}]"#);
    assert_eq!(
        fx,
        [
            Effect::Lifecycle(Lifecycle::Error("binary packets are not supported")),
            failed(a, FailureKind::Protocol)
        ]
    );
    assert!(s.is_connected());
}

#[test]
fn a_binary_event_with_an_ack_id_touches_no_request_or_app_ack() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    assert_eq!(
        s.emit(0, r#"["chat"]"#, Some(9), None),
        [send(r#"421["chat"]"#)]
    );
    // The server's own binary events carry *its* ack ids (0 and 1 here, like ours).
    for frame in [
        r#"451-0["upload",{"_placeholder":true,"num":0}]"#,
        r#"451-1["upload",{"_placeholder":true,"num":0}]"#,
    ] {
        assert_eq!(
            s.on_frame(1, frame),
            [Effect::Lifecycle(Lifecycle::Error(
                "binary packets are not supported"
            ))]
        );
    }
    assert_eq!(s.on_binary_frame(1), []);
    assert_eq!(s.pending(), 1);
    assert_eq!(s.on_frame(2, "430[null,1]"), [ok(a, "1")]);
    assert_eq!(
        s.on_frame(2, r#"431["ok"]"#),
        [Effect::AppAck {
            handle: 9,
            args: Some(r#"["ok"]"#.into())
        }]
    );
}

#[test]
fn binary_packets_for_another_namespace_are_ignored() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    assert_eq!(
        s.on_frame(1, r#"461-/admin,0[{"_placeholder":true,"num":0}]"#),
        []
    );
    assert_eq!(
        s.on_frame(1, r#"451-/admin,0["x",{"_placeholder":true,"num":0}]"#),
        []
    );
    assert_eq!(s.pending(), 1);
    assert_eq!(s.on_frame(2, "430[null,1]"), [ok(a, "1")]);
}
