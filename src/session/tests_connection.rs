//! The session across connection trouble: heartbeat, dropped transports, reconnection with
//! backoff, re-sending unanswered requests, connect timeouts and hostile frames.

use super::tests::{connected, failed, ok, quiet, replied, req, send, OPEN};
use super::*;

fn lifecycle(l: Lifecycle<String>) -> Effect<String> {
    Effect::Lifecycle(l)
}

/// Drives a reconnection attempt due at `at` through to connected.
fn reconnect(s: &mut Session<String>, at: u64, attempt: u32) -> Vec<Effect<String>> {
    assert_eq!(s.next_deadline(), Some(at));
    assert_eq!(
        s.tick(at),
        [
            lifecycle(Lifecycle::ReconnectAttempt(attempt)),
            Effect::OpenSocket
        ]
    );
    assert_eq!(s.on_frame(at, OPEN), [send("40")]);
    s.on_frame(at, r#"40{"sid":"again"}"#)
}

#[test]
fn heartbeat_answers_pings_and_detects_a_dead_connection() {
    let mut s = connected(quiet());
    // pingInterval 25000 + pingTimeout 20000.
    assert_eq!(s.next_deadline(), Some(45_000));
    assert_eq!(s.on_frame(25_000, "2"), [send("3")]);
    assert_eq!(s.next_deadline(), Some(70_000));
    assert_eq!(s.tick(69_999), []);
    assert_eq!(
        s.tick(70_000),
        [
            Effect::CloseSocket,
            lifecycle(Lifecycle::Disconnect("ping timeout"))
        ]
    );
    assert!(!s.is_connected());
    assert_eq!(
        s.next_deadline(),
        Some(71_000),
        "reconnects after reconnectionDelay"
    );
}

#[test]
fn reconnection_follows_the_backoff_schedule_and_resets_on_success() {
    let mut s = connected(quiet());
    assert_eq!(
        s.on_close(0),
        [lifecycle(Lifecycle::Disconnect("transport close"))]
    );
    let mut now = 0;
    let mut delays = Vec::new();
    for attempt in 1..=5 {
        let due = s.next_deadline().unwrap();
        delays.push(due - now);
        now = due;
        assert_eq!(
            s.tick(now),
            [
                lifecycle(Lifecycle::ReconnectAttempt(attempt)),
                Effect::OpenSocket
            ]
        );
        // Connection refused: the socket closes before the handshake.
        assert_eq!(
            s.on_close(now),
            [
                lifecycle(Lifecycle::ConnectError(ConnectError::Transport(
                    "transport close"
                ))),
                lifecycle(Lifecycle::Error("connection failed")),
            ]
        );
    }
    assert_eq!(delays, [1000, 2000, 4000, 5000, 5000]);
    let at = s.next_deadline().unwrap();
    assert_eq!(
        reconnect(&mut s, at, 6),
        [
            lifecycle(Lifecycle::Reconnect(6)),
            lifecycle(Lifecycle::Connect)
        ]
    );
    assert_eq!(s.sid(), Some("again"));
    s.on_close(at);
    assert_eq!(
        s.next_deadline(),
        Some(at + 1000),
        "the schedule starts over"
    );
}

#[test]
fn jittered_delays_stay_within_the_randomization_band() {
    for seed in 1..50 {
        let mut s = connected(Config {
            seed,
            ..Config::default()
        });
        s.on_close(0);
        let d = s.next_deadline().unwrap();
        assert!((500..=1500).contains(&d), "seed {seed}: {d}");
    }
}

#[test]
fn unanswered_requests_are_sent_again_after_reconnecting() {
    let mut s = connected(quiet());
    let payload = r#"{"signature":{"endPoint":"/api/t","requestId":"same"},"item":{}}"#;
    let (a, fx) = s.request(0, req("create", "/api/t", payload));
    assert_eq!(fx, [send(&format!(r#"420["create",{payload}]"#))]);
    let (b, _) = s.request(0, req("read", "/api/t", "{}"));
    assert_eq!(s.on_frame(1, "431[null,[]]"), [ok(b, "[]")]);
    s.on_close(2);
    // Requests made while reconnecting are queued behind it.
    let (c, fx) = s.request(3, req("read", "/api/t", "{}"));
    assert_eq!(fx, []);
    let fx = reconnect(&mut s, 1002, 1);
    assert_eq!(
        fx,
        [
            lifecycle(Lifecycle::Reconnect(1)),
            lifecycle(Lifecycle::Connect),
            send(&format!(r#"422["create",{payload}]"#)),
            send(r#"423["read",{}]"#),
        ]
    );
    assert_eq!(
        s.on_frame(1003, "430[null,\"stale\"]"),
        [],
        "the old ack id is dead"
    );
    assert_eq!(
        s.on_frame(1003, "432[null,{\"id\":1}]"),
        [ok(a, r#"{"id":1}"#)]
    );
    assert_eq!(s.on_frame(1003, "433[null,[]]"), [ok(c, "[]")]);
}

#[test]
fn resent_requests_keep_their_own_timeout() {
    let mut s = connected(quiet());
    let (a, _) = s.request(
        0,
        Request {
            timeout_ms: Some(1500),
            ..req("read", "/a", "{}")
        },
    );
    s.on_close(100);
    reconnect(&mut s, 1100, 1);
    assert_eq!(s.tick(1500), [failed(a, FailureKind::Timeout)]);
}

#[test]
fn event_mode_requests_are_resent_too() {
    let mut s = connected(Config {
        replies: ReplyMode::Event,
        ..quiet()
    });
    let (a, _) = s.request(0, req("read", "/a", "1"));
    let (_b, _) = s.request(0, req("read", "/a", "2"));
    s.on_close(1);
    let fx = reconnect(&mut s, 1001, 1);
    assert_eq!(
        &fx[2..],
        [send(r#"42["read",1]"#)],
        "FIFO kept: only the first is in flight"
    );
    assert_eq!(
        s.on_frame(1002, r#"42["read:/a",1]"#),
        [replied(a, r#"["read:/a",1]"#), send(r#"42["read",2]"#)]
    );
}

#[test]
fn without_reconnection_a_drop_fails_everything() {
    let mut s = connected(Config {
        reconnection: false,
        ..quiet()
    });
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.on_close(1);
    assert_eq!(
        fx,
        [
            lifecycle(Lifecycle::Disconnect("transport close")),
            lifecycle(Lifecycle::Error("connection lost")),
            failed(a, FailureKind::Disconnect)
        ]
    );
    assert!(s.is_closed());
    assert_eq!(s.next_deadline(), None);

    let mut s = Session::new(Config {
        reconnection: false,
        ..quiet()
    });
    s.start(0);
    let (b, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.on_close(1);
    assert_eq!(
        fx[2],
        failed(b, FailureKind::ConnectError),
        "refused: {fx:?}"
    );
}

#[test]
fn exhausted_attempts_give_up() {
    let mut s = connected(Config {
        reconnection_attempts: 2,
        ..quiet()
    });
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    s.on_close(0);
    s.tick(1000);
    s.on_close(1000);
    s.tick(3000);
    let fx = s.on_close(3000);
    assert_eq!(
        fx,
        [
            lifecycle(Lifecycle::ConnectError(ConnectError::Transport(
                "transport close"
            ))),
            lifecycle(Lifecycle::Error("connection failed")),
            lifecycle(Lifecycle::ReconnectFailed),
            failed(a, FailureKind::ConnectError)
        ]
    );
    assert!(s.is_closed());
}

#[test]
fn a_handshake_that_never_finishes_times_out() {
    let mut s = Session::new(quiet());
    s.start(0);
    assert_eq!(s.next_deadline(), Some(20_000));
    s.on_frame(10, OPEN);
    let fx = s.tick(20_000);
    assert_eq!(
        fx,
        [
            Effect::CloseSocket,
            lifecycle(Lifecycle::ConnectError(ConnectError::Transport("timeout"))),
            lifecycle(Lifecycle::Error("connection failed")),
        ]
    );
    assert_eq!(s.next_deadline(), Some(21_000));
    // The closed socket's late events change nothing.
    assert_eq!(s.on_close(20_001), []);
    assert_eq!(s.on_frame(20_001, r#"40{"sid":"x"}"#), []);
}

#[test]
fn engineio_close_packet_reconnects() {
    let mut s = connected(quiet());
    assert_eq!(
        s.on_frame(5, "1"),
        [
            Effect::CloseSocket,
            lifecycle(Lifecycle::Disconnect("transport close"))
        ]
    );
    assert_eq!(s.next_deadline(), Some(1005));
}

#[test]
fn malformed_frames_drop_the_connection_and_requests_survive_it() {
    let mut s = connected(quiet());
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    // A header that cannot be read (an event whose name never ends). A body that is not
    // JSON is the edge's to find: `JSON.parse` fails that one reply or event alone.
    let fx = s.on_frame(1, r#"42["x,{"#);
    assert_eq!(
        fx,
        [
            lifecycle(Lifecycle::Error("unexpected payload")),
            Effect::CloseSocket,
            lifecycle(Lifecycle::Disconnect("parse error"))
        ]
    );
    let fx = reconnect(&mut s, 1001, 1);
    assert_eq!(fx.last(), Some(&send(r#"421["read",{}]"#)));
    assert_eq!(s.on_frame(1002, "431[null,1]"), [ok(a, "1")]);

    let mut s = connected(Config {
        reconnection: false,
        ..quiet()
    });
    let (b, _) = s.request(0, req("read", "/a", "{}"));
    let fx = s.on_frame(1, "4x");
    assert_eq!(fx.last(), Some(&failed(b, FailureKind::Protocol)));
}

#[test]
fn hostile_frames_never_panic_in_any_state() {
    let frames = [
        "",
        "0",
        "0{",
        "0{}",
        "0null",
        OPEN,
        "1",
        "2",
        "3",
        "4",
        "40",
        "41",
        "44",
        "44null",
        "45",
        "46",
        "4x",
        "7",
        "é",
        "42",
        "42[]",
        "42[1]",
        r#"42["a""#,
        "43",
        "43[]",
        "430",
        "430[",
        "43999999999999999999999[null]",
        "4318446744073709551615[null,1]",
        r#"43/x,0[null]"#,
        r#"40{"sid":5}"#,
        r#"40{"sid":"s"}"#,
        r#"42["create:/a",{"error":{}}]"#,
        "2probe",
        "6",
        "5",
        "\u{0}",
        "4\u{0}",
        r#"42["\ud800"]"#,
    ];
    for config in [
        quiet(),
        Config {
            replies: ReplyMode::Event,
            reconnection: false,
            ..quiet()
        },
    ] {
        // Feed every frame, in every state the hostile stream leads to.
        let mut s = Session::new(config.clone());
        s.start(0);
        let _ = s.request(0, req("create", "/a", "{}"));
        for round in 0..3u64 {
            for (i, f) in frames.iter().enumerate() {
                let now = round * 100_000 + i as u64;
                let _ = s.on_frame(now, *f);
                let _ = s.tick(now);
                if i % 7 == 0 {
                    let _ = s.request(now, req("read", "/a", "{}"));
                }
            }
            let _ = s.on_close(round * 100_000 + 99_999);
            let _ = s.tick(round * 100_000 + 99_999);
        }
        let _ = s.tick(u64::MAX);
        let _ = s.next_deadline();
    }
}

#[test]
fn queued_requests_that_never_reach_a_server_fail_as_connect_errors() {
    let mut s = Session::new(Config {
        timeout_ms: 2500,
        ..quiet()
    });
    s.start(0);
    let (a, _) = s.request(0, req("read", "/a", "{}"));
    // Refused, retried at 1000, refused again: the request is still waiting when it expires.
    s.on_close(5);
    s.tick(1005);
    s.on_close(1010);
    assert_eq!(s.tick(2500), [failed(a, FailureKind::ConnectError)]);
    // Once a connection succeeds, a request that is merely slow times out as such.
    let at = s.next_deadline().unwrap();
    s.tick(at);
    s.on_frame(at, OPEN);
    s.on_frame(at, r#"40{"sid":"s"}"#);
    let (b, _) = s.request(at, req("read", "/a", "{}"));
    assert_eq!(s.tick(at + 2500), [failed(b, FailureKind::Timeout)]);
}
