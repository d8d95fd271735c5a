//! The codec on literal wire strings, including malformed ones.

use super::engineio::{self, EioKind, OpenInfo};
use super::socketio::{self, Header, SioKind};
use super::ProtocolError as E;
use crate::payload::Payload;

fn eio(frame: &str) -> Result<EioKind, E> {
    engineio::parse(frame, true)
}

fn sio(text: &str) -> Result<Header, E> {
    socketio::parse(text, true)
}

fn header(kind: SioKind, ns: &str, ack: Option<u64>, event: Option<&str>, at: usize) -> Header {
    Header {
        kind,
        namespace: ns.into(),
        ack_id: ack,
        event: event.map(Into::into),
        body_at: at,
        has_body: true,
    }
}

#[test]
fn open_packet() {
    let frame = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    assert_eq!(eio(frame), Ok(EioKind::Open));
    let info: OpenInfo = frame.to_owned().rest("0").decode().unwrap();
    assert_eq!(info.sid, "lv_VI97HAXpY6yYWAAAC");
    assert_eq!(
        (info.ping_interval, info.ping_timeout, info.max_payload),
        (25000, 20000, 1_000_000)
    );
    // Missing or mistyped fields are not an open packet.
    for body in [
        r#"{"sid":"x"}"#,
        r#"{"sid":1,"pingInterval":1,"pingTimeout":1}"#,
        "null",
        "{",
    ] {
        assert_eq!(body.to_owned().decode::<OpenInfo>(), None, "{body}");
    }
    assert_eq!(eio("0"), Err(E::Empty));
}

#[test]
fn heartbeat_and_bare_packets() {
    assert_eq!(eio("2"), Ok(EioKind::Ping));
    assert_eq!(eio("2probe"), Ok(EioKind::Ping));
    assert_eq!(eio("2x"), Err(E::TrailingData));
    assert_eq!(eio("3"), Ok(EioKind::Pong));
    assert_eq!(eio("1"), Ok(EioKind::Close));
    assert_eq!(eio("1x"), Err(E::TrailingData));
    assert_eq!(eio("6"), Ok(EioKind::Noop));
    assert_eq!(eio("4"), Ok(EioKind::Message));
    assert_eq!(eio(""), Err(E::Empty));
    assert_eq!(eio("7"), Err(E::UnknownPacketType));
    assert_eq!(eio("é"), Err(E::UnknownPacketType));
    // Only a head of the frame was read: "2" may be followed by more.
    assert_eq!(engineio::parse("2", false), Err(E::TrailingData));
}

#[test]
fn connect_packets() {
    let mut bare = header(SioKind::Connect, "/", None, None, 1);
    bare.has_body = false;
    assert_eq!(sio("0"), Ok(bare));
    assert_eq!(
        sio(r#"0{"sid":"x"}"#),
        Ok(header(SioKind::Connect, "/", None, None, 1))
    );
    assert_eq!(
        sio(r#"0/admin,{"sid":"x"}"#),
        Ok(header(SioKind::Connect, "/admin", None, None, 8))
    );
    assert_eq!(sio("0[1]"), Err(E::UnexpectedPayload));
    assert_eq!(sio("01"), Err(E::Empty));
}

#[test]
fn connect_error_and_disconnect() {
    assert_eq!(
        sio(r#"4{"message":"Not authorized"}"#),
        Ok(header(SioKind::ConnectError, "/", None, None, 1))
    );
    assert_eq!(
        sio(r#"4"v4 string""#).map(|h| h.kind),
        Ok(SioKind::ConnectError)
    );
    assert_eq!(sio("4"), Err(E::Empty));
    assert_eq!(
        sio("1").map(|h| (h.kind, h.has_body)),
        Ok((SioKind::Disconnect, false))
    );
    assert_eq!(sio("1/admin,").map(|h| h.namespace), Ok("/admin".into()));
    assert_eq!(sio("1x"), Err(E::UnexpectedPayload));
}

#[test]
fn events_with_and_without_ack_ids() {
    assert_eq!(
        sio(r#"2["create",{"a":1}]"#),
        Ok(header(SioKind::Event, "/", None, Some("create"), 1))
    );
    assert_eq!(
        sio(r#"21["create",{"a":1}]"#),
        Ok(header(SioKind::Event, "/", Some(1), Some("create"), 2))
    );
    assert_eq!(
        sio(r#"2/admin,3[ "x"]"#),
        Ok(header(SioKind::Event, "/admin", Some(3), Some("x"), 9))
    );
    assert_eq!(sio("2[]"), Err(E::UnexpectedPayload));
    assert_eq!(sio("2[1]"), Err(E::UnexpectedPayload));
    assert_eq!(sio("2{}"), Err(E::UnexpectedPayload));
    assert_eq!(sio("2"), Err(E::UnexpectedPayload));
    assert_eq!(sio(r#"2["a"#), Err(E::UnexpectedPayload));
}

#[test]
fn acks() {
    assert_eq!(
        sio(r#"31[null,{"id":1}]"#),
        Ok(header(SioKind::Ack, "/", Some(1), None, 2))
    );
    assert_eq!(sio("3[null]"), Err(E::UnexpectedPayload));
    assert_eq!(sio("31"), Err(E::Empty));
    assert_eq!(sio("31{}"), Err(E::UnexpectedPayload));
    assert_eq!(sio("399999999999999999999999[1]"), Err(E::AckIdOverflow));
    assert_eq!(
        sio("318446744073709551615[1]").map(|h| h.ack_id),
        Ok(Some(u64::MAX))
    );
}

#[test]
fn binary_packets_have_their_namespace_and_ack_id_read() {
    assert_eq!(
        sio(r#"51-0["upload",{"_placeholder":true,"num":0}]"#),
        Ok(header(
            SioKind::BinaryEvent,
            "/",
            Some(0),
            Some("upload"),
            4
        ))
    );
    assert_eq!(
        sio(r#"61-/admin,7[{"_placeholder":true,"num":0}]"#),
        Ok(header(SioKind::BinaryAck, "/admin", Some(7), None, 11))
    );
    assert_eq!(sio(r#"5["x"]"#), Err(E::UnexpectedPayload));
    assert_eq!(sio("61[1]"), Err(E::UnexpectedPayload));
}

#[test]
fn encodes_headers() {
    assert_eq!(socketio::head(SioKind::Connect, "/", None), "40");
    assert_eq!(
        socketio::head(SioKind::Connect, "/admin", None),
        "40/admin,"
    );
    assert_eq!(socketio::head(SioKind::Event, "/", Some(12)), "4212");
    assert_eq!(socketio::head(SioKind::Ack, "/x", Some(0)), "43/x,0");
    assert_eq!(socketio::head(SioKind::Disconnect, "/", None), "41");
}

#[test]
fn event_names_with_escapes_and_unicode() {
    let name = |text: &str| sio(text).map(|h| h.event.unwrap_or_default());
    assert_eq!(name(r#"2["a\"b\\c\/d\n"]"#), Ok("a\"b\\c/d\n".into()));
    assert_eq!(name(r#"2["\u00e9\ud83d\ude00"]"#), Ok("é😀".into()));
    assert_eq!(name(r#"2["\ud800x"]"#), Ok("\u{fffd}x".into()));
    assert_eq!(name(r#"2["héllo",1]"#), Ok("héllo".into()));
    assert_eq!(name(r#"2["\x"]"#), Err(E::UnexpectedPayload));
    assert_eq!(name("2[\"a\u{1}\"]"), Err(E::UnexpectedPayload));
    // Four hex digits exactly, as JSON.parse reads them: no sign, no short escape.
    assert_eq!(name(r#"2["\u00E9"]"#), Ok("é".into()));
    assert_eq!(name(r#"2["\u+0e9"]"#), Err(E::UnexpectedPayload));
    assert_eq!(name(r#"2["\u0e9"]"#), Err(E::UnexpectedPayload));
}

#[test]
fn a_header_longer_than_the_head_read_asks_for_more() {
    let long = format!(r#"2["{}",1]"#, "n".repeat(300));
    assert_eq!(socketio::parse(&long[..100], false), Err(E::Truncated));
    assert_eq!(sio(&long).map(|h| h.event.unwrap().len()), Ok(300));
    let ns = format!("2/{},[\"x\"]", "a".repeat(200));
    assert_eq!(socketio::parse(&ns[..100], false), Err(E::Truncated));
}

#[test]
fn the_body_after_the_header_is_not_copied_out_or_read() {
    let frame = r#"431[null,{"big":"…"}]"#.to_owned();
    let (head, complete) = frame.head(128);
    assert!(complete);
    let h = socketio::parse(&head[1..], complete).unwrap();
    assert_eq!(frame.rest(&head[..1 + h.body_at]), r#"[null,{"big":"…"}]"#);
    assert_eq!("abcdef".to_owned().head(3), ("abc".into(), false));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A seeded xorshift over an alphabet of protocol characters: every input is rejected or
    // read, never a panic. The seed is printed so a failure can be replayed.
    let seed: u64 = 0x5EED_1234_ABCD_0001;
    println!("seed {seed:#x}");
    let alphabet: Vec<char> = "0123456789[]{}\",:/-\\ué \u{0}\u{1f600}anx"
        .chars()
        .collect();
    let mut x = seed;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 24) as usize;
        let text: String = (0..len)
            .map(|i| alphabet[((x >> (i % 48)) as usize + i * 7) % alphabet.len()])
            .collect();
        let _ = eio(&text);
        let _ = sio(&text);
        for cut in 0..text.chars().count() {
            let head: String = text.chars().take(cut).collect();
            let _ = socketio::parse(&head, false);
        }
    }
}
