//! The session with an auth payload computed per connection (`auth` a function): each
//! attempt asks for a fresh payload, a server DISCONNECT (a token's expiry) reconnects and
//! re-sends what was unanswered, a refused CONNECT fails what waited and tries again; with a
//! fixed payload both end the session (`tests.rs`).

use super::tests::{failed, ok, quiet, req, send, OPEN};
use super::*;

fn lifecycle(l: Lifecycle<String>) -> Effect<String> {
    Effect::Lifecycle(l)
}

fn provided() -> Config<String> {
    Config {
        auth_provider: true,
        ..quiet()
    }
}

/// A session connected with the payload `{"token":"<token>"}` at time 0.
fn connected_with(token: &str) -> Session<String> {
    let mut s = Session::new(provided());
    assert_eq!(s.start(0), [Effect::OpenSocket]);
    assert_eq!(s.on_frame(0, OPEN), [Effect::Authorize]);
    let auth = format!(r#"{{"token":"{token}"}}"#);
    assert_eq!(
        s.set_auth(0, Some(auth.clone())),
        [send(&format!("40{auth}"))]
    );
    assert_eq!(
        s.on_frame(0, r#"40{"sid":"s1"}"#),
        [lifecycle(Lifecycle::Connect)]
    );
    s
}

#[test]
fn a_server_disconnect_reconnects_with_a_fresh_payload_and_resends() {
    let mut s = connected_with("first");
    let payload = r#"{"signature":{"endPoint":"/api/t","requestId":"r1"},"item":{}}"#;
    let (a, fx) = s.request(0, req("create", "/api/t", payload));
    assert_eq!(fx, [send(&format!(r#"420["create",{payload}]"#))]);
    // The token expired: the server leaves the namespace with the request unanswered.
    assert_eq!(
        s.on_frame(10, "41"),
        [
            Effect::CloseSocket,
            lifecycle(Lifecycle::Disconnect("io server disconnect")),
        ],
        "nothing fails, nothing ends"
    );
    assert!(!s.is_closed());
    assert_eq!(s.on_close(11), [], "the socket's end was already handled");
    // A request made meanwhile waits in the queue.
    let (b, fx) = s.request(20, req("read", "/api/t", "{}"));
    assert_eq!(fx, []);
    assert_eq!(s.next_deadline(), Some(1010));
    assert_eq!(
        s.tick(1010),
        [
            lifecycle(Lifecycle::ReconnectAttempt(1)),
            Effect::OpenSocket
        ]
    );
    assert_eq!(s.on_frame(1010, OPEN), [Effect::Authorize], "asked again");
    let fresh = r#"{"token":"second"}"#;
    assert_eq!(
        s.set_auth(1011, Some(fresh.into())),
        [send(&format!("40{fresh}"))]
    );
    assert_eq!(
        s.on_frame(1012, r#"40{"sid":"s2"}"#),
        [
            lifecycle(Lifecycle::Reconnect(1)),
            lifecycle(Lifecycle::Connect),
            send(&format!(r#"421["create",{payload}]"#)),
            send(r#"422["read",{}]"#),
        ],
        "the unanswered create again, same payload (same requestId), then the queued read"
    );
    assert_eq!(
        s.on_frame(1013, r#"431[null,{"id":1}]"#),
        [ok(a, r#"{"id":1}"#)]
    );
    assert_eq!(s.on_frame(1013, "432[null,[]]"), [ok(b, "[]")]);
}

#[test]
fn a_refused_reconnection_fails_what_waits_with_401_and_tries_again() {
    let mut s = connected_with("first");
    let (a, _) = s.request(0, req("read", "/api/t", "{}"));
    s.on_frame(10, "41");
    s.tick(1010);
    s.on_frame(1010, OPEN);
    s.set_auth(1010, Some(r#"{"token":"first"}"#.into()));
    let refusal = r#"{"message":"unauthorized"}"#;
    let fx = s.on_frame(1011, format!("44{refusal}"));
    assert_eq!(
        fx,
        [
            lifecycle(Lifecycle::ConnectError(ConnectError::Refused {
                body: refusal.into(),
                message: Some("unauthorized".into()),
            })),
            lifecycle(Lifecycle::Error("connection refused by the server")),
            Effect::CloseSocket,
            Effect::Settle {
                id: a,
                outcome: Err(Failure {
                    kind: FailureKind::Unauthorized,
                    status: 401,
                    body: Some(refusal.into()),
                    message: Some("unauthorized".into()),
                }),
            },
        ]
    );
    assert!(!s.is_closed());
    // The next attempt comes after the backoff's second delay, and asks for a payload again.
    assert_eq!(s.next_deadline(), Some(1011 + 2000));
    s.tick(3011);
    assert_eq!(s.on_frame(3011, OPEN), [Effect::Authorize]);
}

#[test]
fn without_reconnection_a_server_disconnect_fails_what_was_sent() {
    let mut s = Session::new(Config {
        reconnection: false,
        ..provided()
    });
    s.start(0);
    s.on_frame(0, OPEN);
    s.set_auth(0, None);
    s.on_frame(0, r#"40{"sid":"s1"}"#);
    let (a, _) = s.request(0, req("read", "/api/t", "{}"));
    assert_eq!(
        s.on_frame(1, "41"),
        [
            Effect::CloseSocket,
            lifecycle(Lifecycle::Disconnect("io server disconnect")),
            lifecycle(Lifecycle::Error("connection lost")),
            failed(a, FailureKind::Disconnect),
        ]
    );
    assert!(s.is_closed());
}
