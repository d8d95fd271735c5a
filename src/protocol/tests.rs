//! The codec on literal wire strings, well-formed and hostile.

use super::engineio::{self, EioPacket, OpenInfo};
use super::json;
use super::socketio::{self, SioKind, SioPacket};
use super::ProtocolError as E;

#[test]
fn open_packet() {
    let frame = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    assert_eq!(
        engineio::parse(frame),
        Ok(EioPacket::Open(OpenInfo {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        }))
    );
}

#[test]
fn open_packet_rejects_missing_or_mistyped_fields() {
    for frame in [
        "0",
        "0{}",
        r#"0{"sid":"a","pingInterval":1}"#,
        r#"0{"sid":"a","pingInterval":"25000","pingTimeout":1}"#,
        r#"0{"sid":"a","pingInterval":-1,"pingTimeout":1}"#,
        r#"0{"sid":"a","pingInterval":2.5,"pingTimeout":1}"#,
        r#"0{"sid":7,"pingInterval":1,"pingTimeout":1}"#,
        r#"0{"sid":"","pingInterval":1,"pingTimeout":1}"#,
        r#"0{"sid":"a","pingInterval":99999999999999999999999,"pingTimeout":1}"#,
        r#"0["sid"]"#,
        r#"0{"sid":"a","pingInterval":1,"pingTimeout":1"#,
        r#"0{"sid":"a","pingInterval":1,"pingTimeout":1}x"#,
    ] {
        assert!(engineio::parse(frame).is_err(), "{frame}");
    }
}

#[test]
fn heartbeat_and_bare_packets() {
    assert_eq!(engineio::parse("2"), Ok(EioPacket::Ping));
    assert_eq!(engineio::parse("2probe"), Ok(EioPacket::Ping));
    assert_eq!(engineio::parse("3"), Ok(EioPacket::Pong));
    assert_eq!(engineio::parse("1"), Ok(EioPacket::Close));
    assert_eq!(engineio::parse("6"), Ok(EioPacket::Noop));
    assert_eq!(engineio::parse("5"), Ok(EioPacket::Upgrade));
    assert_eq!(engineio::PONG, "3");
    assert_eq!(engineio::parse("2x"), Err(E::TrailingData));
    assert_eq!(engineio::parse("1 "), Err(E::TrailingData));
    assert_eq!(engineio::parse(""), Err(E::Empty));
    assert_eq!(engineio::parse("7"), Err(E::UnknownPacketType));
    assert_eq!(engineio::parse("x"), Err(E::UnknownPacketType));
    assert_eq!(engineio::parse("é"), Err(E::UnknownPacketType));
    assert_eq!(engineio::parse("40"), Ok(EioPacket::Message("0")));
    assert_eq!(engineio::message("0"), "40");
}

fn sio(frame: &str) -> Result<SioPacket<'_>, E> {
    match engineio::parse(frame)? {
        EioPacket::Message(m) => socketio::parse(m),
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn connect_packets() {
    let p = sio("40").unwrap();
    assert_eq!(
        (p.kind, p.namespace, p.ack_id, p.data),
        (SioKind::Connect, "/", None, None)
    );
    let p = sio(r#"40{"sid":"x"}"#).unwrap();
    assert_eq!(p.data, Some(r#"{"sid":"x"}"#));
    assert_eq!(json::field(p.data.unwrap(), "sid"), Some(r#""x""#));
    let p = sio(r#"40/admin,{"sid":"y"}"#).unwrap();
    assert_eq!((p.namespace, p.data), ("/admin", Some(r#"{"sid":"y"}"#)));
    assert_eq!(sio("40[1]"), Err(E::UnexpectedPayload));
    assert_eq!(sio(r#"401{"sid":"x"}"#), Err(E::UnexpectedPayload));
}

#[test]
fn connect_error_and_disconnect() {
    let p = sio(r#"44{"message":"Not authorized"}"#).unwrap();
    assert_eq!(p.kind, SioKind::ConnectError);
    assert_eq!(p.data, Some(r#"{"message":"Not authorized"}"#));
    let p = sio(r#"44/admin,{"message":"no","data":{"code":3}}"#).unwrap();
    assert_eq!(p.namespace, "/admin");
    assert_eq!(sio("44"), Err(E::Empty));
    let p = sio("41").unwrap();
    assert_eq!((p.kind, p.namespace), (SioKind::Disconnect, "/"));
    let p = sio("41/admin,").unwrap();
    assert_eq!((p.kind, p.namespace), (SioKind::Disconnect, "/admin"));
    let p = sio("41/admin").unwrap();
    assert_eq!(p.namespace, "/admin");
    assert_eq!(sio("41[]"), Err(E::UnexpectedPayload));
}

#[test]
fn events_with_and_without_ack_ids() {
    let p = sio(r#"421["create",{"signature":{"endPoint":"/api/todos"},"item":{"title":"a"}}]"#)
        .unwrap();
    assert_eq!((p.kind, p.ack_id), (SioKind::Event, Some(1)));
    let items = json::split_array(p.data.unwrap()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(json::unescape(items[0]).unwrap(), "create");
    assert_eq!(
        items[1],
        r#"{"signature":{"endPoint":"/api/todos"},"item":{"title":"a"}}"#
    );

    let p = sio(r#"42["create:/api/todos",{"id":1}]"#).unwrap();
    assert_eq!(p.ack_id, None);
    let p = sio(r#"42/admin,3["x"]"#).unwrap();
    assert_eq!(
        (p.namespace, p.ack_id, p.data),
        ("/admin", Some(3), Some(r#"["x"]"#))
    );
}

#[test]
fn acks() {
    let p = sio(r#"431[null,{"id":1,"title":"a"}]"#).unwrap();
    assert_eq!((p.kind, p.ack_id), (SioKind::Ack, Some(1)));
    let items = json::split_array(p.data.unwrap()).unwrap();
    assert_eq!(items, vec!["null", r#"{"id":1,"title":"a"}"#]);
    let p = sio(r#"4318446744073709551615[{"status":404,"message":"not found"}]"#).unwrap();
    assert_eq!(p.ack_id, Some(u64::MAX));
    assert_eq!(sio("43[null]"), Err(E::UnexpectedPayload));
    assert_eq!(sio("431"), Err(E::Empty));
    assert_eq!(sio(r#"431{"a":1}"#), Err(E::UnexpectedPayload));
}

#[test]
fn encodes_frames() {
    let p = SioPacket {
        kind: SioKind::Event,
        namespace: "/",
        ack_id: Some(12),
        data: Some(r#"["read",{}]"#),
    };
    assert_eq!(p.to_frame(), r#"4212["read",{}]"#);
    let p = SioPacket {
        kind: SioKind::Connect,
        namespace: "/admin",
        ack_id: None,
        data: Some(r#"{"token":"t"}"#),
    };
    assert_eq!(p.to_frame(), r#"40/admin,{"token":"t"}"#);
    let p = SioPacket {
        kind: SioKind::Disconnect,
        namespace: "/",
        ack_id: None,
        data: None,
    };
    assert_eq!(p.to_frame(), "41");
    let p = SioPacket {
        kind: SioKind::Ack,
        namespace: "/",
        ack_id: Some(0),
        data: Some("[]"),
    };
    assert_eq!(p.to_frame(), "430[]");
    // Round trip.
    assert_eq!(sio(&p.to_frame()), Ok(p));
}

#[test]
fn binary_packets_are_typed_errors() {
    assert_eq!(
        sio(r#"451-["ev",{"_placeholder":true,"num":0}]"#),
        Err(E::BinaryUnsupported { ack_id: None })
    );
    assert_eq!(
        sio(r#"461-7[{"_placeholder":true,"num":0}]"#),
        Err(E::BinaryUnsupported { ack_id: Some(7) })
    );
    assert_eq!(
        sio(r#"461-/admin,9[{"_placeholder":true,"num":0}]"#),
        Err(E::BinaryUnsupported { ack_id: Some(9) })
    );
    assert_eq!(sio("45"), Err(E::BinaryUnsupported { ack_id: None }));
}

#[test]
fn hostile_frames_are_rejected_without_panic() {
    let cases: &[(&str, E)] = &[
        ("4", E::Empty),
        ("47", E::UnknownPacketType),
        ("4x", E::UnknownPacketType),
        ("42", E::Empty),
        ("42[", E::TruncatedJson),
        (r#"42["create""#, E::TruncatedJson),
        (r#"42["cre"#, E::TruncatedJson),
        (r#"42["create",{"a":1]"#, E::InvalidJson),
        (r#"42["create",{"a":1}]]"#, E::TrailingData),
        (r#"42["create"] x"#, E::TrailingData),
        (r#"42{"name":"create"}"#, E::UnexpectedPayload),
        ("42[]", E::UnexpectedPayload),
        ("42[1,2]", E::UnexpectedPayload),
        ("42[null]", E::UnexpectedPayload),
        (r#"42"create""#, E::UnexpectedPayload),
        ("4299999999999999999999[\"x\"]", E::AckIdOverflow),
        ("4318446744073709551616[null]", E::AckIdOverflow),
        ("42[tru]", E::InvalidJson),
        ("42[nul", E::TruncatedJson),
        ("42[01]", E::InvalidJson),
        ("42[1.]", E::InvalidJson),
        ("42[-]", E::InvalidJson),
        ("42[\"\\x\"]", E::InvalidJson),
        ("42[\"\\u12\"]", E::InvalidJson),
        ("42[\"a\nb\"]", E::InvalidJson),
        ("42[\"a\",]", E::InvalidJson),
        ("42[,\"a\"]", E::InvalidJson),
        (r#"42["a",{"k"}]"#, E::InvalidJson),
        (r#"42["a",{"k":}]"#, E::InvalidJson),
        (r#"42["a",{1:2}]"#, E::InvalidJson),
        (r#"42["a"}"#, E::InvalidJson),
        ("42[\"a\"]\u{0}", E::TrailingData),
    ];
    for (frame, want) in cases {
        assert_eq!(sio(frame), Err(*want), "{frame:?}");
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let deep = "[".repeat(200_000) + &"]".repeat(200_000);
    assert_eq!(json::validate(&deep), Ok(()));
    let frame = String::from("42[\"x\",") + &"[".repeat(200_000);
    assert_eq!(sio(&frame), Err(E::TruncatedJson));
}

#[test]
fn unicode_names_and_escapes() {
    let p = sio(r#"42["créé ✓ \ud83d\ude00 \"q\" \\ \n",{"é":"ü"}]"#).unwrap();
    let items = json::split_array(p.data.unwrap()).unwrap();
    assert_eq!(json::unescape(items[0]).unwrap(), "créé ✓ 😀 \"q\" \\ \n");
    assert_eq!(json::unescape(r#""\ud83d""#).unwrap(), "\u{FFFD}");
    assert_eq!(json::unescape(r#""\ud83dx""#).unwrap(), "\u{FFFD}x");
    assert_eq!(json::unescape(r#""\u00e9\/""#).unwrap(), "é/");
    assert!(json::unescape(r#""abc"#).is_err());
    assert!(json::unescape("abc").is_err());
}

#[test]
fn string_escaping_round_trips() {
    for s in [
        "",
        "plain",
        "qu\"ote",
        "back\\slash",
        "ctl\u{1}\u{1f}\t\r\n",
        "ünï ✓ 😀",
        "</script>",
    ] {
        let q = json::quote(s);
        assert_eq!(json::validate(&q), Ok(()), "{q}");
        assert_eq!(json::unescape(&q).unwrap(), s);
    }
    assert_eq!(json::quote("a\u{1}"), r#""a\u0001""#);
}

#[test]
fn json_helpers() {
    assert_eq!(
        json::split_array(" [ 1 , \"a\" , [2,3] , {\"b\":[]} ] "),
        Ok(vec!["1", "\"a\"", "[2,3]", "{\"b\":[]}"])
    );
    assert_eq!(json::split_array("[]"), Ok(vec![]));
    assert_eq!(json::split_array(""), Err(E::Empty));
    assert_eq!(json::split_array("{}"), Err(E::UnexpectedPayload));
    assert_eq!(json::split_array("[1] 2"), Err(E::TrailingData));
    let f = json::object_fields(r#"{"a":1,"b":{"c":[true,false,null]},"a":-2.5e+3}"#).unwrap();
    assert_eq!(f.len(), 3);
    assert_eq!(f[1], ("b".to_string(), r#"{"c":[true,false,null]}"#));
    assert_eq!(json::field(r#"{"a":1,"a":2}"#, "a"), Some("1"));
    assert_eq!(json::field("[1]", "a"), None);
    assert_eq!(json::parse_u64("25000"), Some(25000));
    assert_eq!(json::parse_u64("-1"), None);
    assert_eq!(json::parse_u64("1e3"), None);
    assert_eq!(json::parse_u64(""), None);
    assert_eq!(json::validate(" 1 "), Ok(()));
    assert_eq!(json::validate(""), Err(E::TruncatedJson));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every prefix and every single-byte mutation of real frames.
    let seeds = [
        r#"0{"sid":"a","pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        r#"42/admin,17["create:/api/todos",{"error":{"status":404,"message":"n\u00e9"}}]"#,
        r#"4312[null,[{"id":1,"t":"\"x\""},2.5e-3,true]]"#,
        r#"461-/a,3[{"_placeholder":true,"num":0}]"#,
    ];
    let alphabet = b"0123456789[]{}\",:\\/-.eE tnulfrsa\x00\x7f";
    for seed in seeds {
        for end in 0..=seed.len() {
            if let Some(prefix) = seed.get(..end) {
                let _ = sio_any(prefix);
            }
        }
        let bytes = seed.as_bytes();
        for i in 0..bytes.len() {
            for &c in alphabet {
                let mut m = bytes.to_vec();
                m[i] = c;
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = sio_any(s);
                }
            }
        }
    }
}

fn sio_any(frame: &str) -> Result<(), E> {
    if let EioPacket::Message(m) = engineio::parse(frame)? {
        let p = socketio::parse(m)?;
        if let Some(d) = p.data {
            let _ = json::split_array(d);
            let _ = json::object_fields(d);
        }
    }
    Ok(())
}
