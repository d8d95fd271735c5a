//! The few socket.io frames the load generator speaks (Engine.IO v4 + Socket.IO v5 text
//! frames over WebSocket), built and recognised without any I/O.

use serde_json::Value;

/// What one incoming text frame means to a connection.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// `0{...}`: the Engine.IO open packet.
    Open,
    /// `40{...}`: the namespace accepted the connection.
    Connected,
    /// `44{...}`: the namespace refused it.
    ConnectError(String),
    /// `2`: a server ping, to answer with `3`.
    Ping,
    /// `43<id>[...]`: an ack; `ok` is true for `[null, result]`, and `id` is the result's
    /// `id` attribute when it has an integer one.
    Ack { ack: u64, ok: bool, id: Option<i64> },
    /// `1` or `41`: the server is closing the session.
    Close,
    /// Anything else (events, noop): ignored.
    Other,
}

/// Classifies one text frame.
pub fn parse(frame: &str) -> Incoming {
    let bytes = frame.as_bytes();
    match bytes.first() {
        Some(b'0') => Incoming::Open,
        Some(b'1') => Incoming::Close,
        Some(b'2') => Incoming::Ping,
        Some(b'4') => parse_socketio(&frame[1..]),
        _ => Incoming::Other,
    }
}

fn parse_socketio(packet: &str) -> Incoming {
    match packet.as_bytes().first() {
        Some(b'0') => Incoming::Connected,
        Some(b'1') => Incoming::Close,
        Some(b'4') => Incoming::ConnectError(packet[1..].to_owned()),
        Some(b'3') => parse_ack(&packet[1..]),
        _ => Incoming::Other,
    }
}

fn parse_ack(rest: &str) -> Incoming {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(ack) = rest[..digits].parse::<u64>() else {
        return Incoming::Other;
    };
    let (ok, id) = match serde_json::from_str::<Value>(&rest[digits..]) {
        Ok(Value::Array(args)) if args.first() == Some(&Value::Null) => (
            true,
            args.get(1)
                .and_then(|r| r.get("id"))
                .and_then(Value::as_i64),
        ),
        _ => (false, None),
    };
    Incoming::Ack { ack, ok, id }
}

/// `42<ack>["<method>",{"signature":{...},"item":...}]`, the contract's request frame.
pub fn request(
    ack: u64,
    method: &str,
    endpoint: &str,
    request_id: &str,
    item: Option<&str>,
) -> String {
    let mut frame = String::with_capacity(96 + item.map_or(0, str::len));
    frame.push_str("42");
    frame.push_str(&ack.to_string());
    frame.push_str("[\"");
    frame.push_str(method);
    frame.push_str("\",{\"signature\":{\"endPoint\":");
    frame.push_str(&Value::String(endpoint.to_owned()).to_string());
    frame.push_str(",\"requestId\":");
    frame.push_str(&Value::String(request_id.to_owned()).to_string());
    frame.push('}');
    if let Some(item) = item {
        frame.push_str(",\"item\":");
        frame.push_str(item);
    }
    frame.push_str("}]");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_handshake_and_heartbeat() {
        assert_eq!(
            parse(r#"0{"sid":"a","pingInterval":25000}"#),
            Incoming::Open
        );
        assert_eq!(parse(r#"40{"sid":"b"}"#), Incoming::Connected);
        assert_eq!(
            parse(r#"44{"message":"no"}"#),
            Incoming::ConnectError(r#"{"message":"no"}"#.into())
        );
        assert_eq!(parse("2"), Incoming::Ping);
        assert_eq!(parse("41"), Incoming::Close);
        assert_eq!(parse("6"), Incoming::Other);
    }

    #[test]
    fn reads_acks() {
        assert_eq!(
            parse(r#"4312[null,{"id":7,"t":"x"}]"#),
            Incoming::Ack {
                ack: 12,
                ok: true,
                id: Some(7)
            }
        );
        assert_eq!(
            parse(r#"433[null,[]]"#),
            Incoming::Ack {
                ack: 3,
                ok: true,
                id: None
            }
        );
        assert_eq!(
            parse(r#"433[{"status":404}]"#),
            Incoming::Ack {
                ack: 3,
                ok: false,
                id: None
            }
        );
        assert_eq!(
            parse("433[null,"),
            Incoming::Ack {
                ack: 3,
                ok: false,
                id: None
            }
        );
        assert_eq!(parse("43[null]"), Incoming::Other);
    }

    #[test]
    fn builds_requests() {
        assert_eq!(
            request(5, "create", "/api/t", "r-1", Some(r#"{"a":1}"#)),
            r#"425["create",{"signature":{"endPoint":"/api/t","requestId":"r-1"},"item":{"a":1}}]"#
        );
        assert_eq!(
            request(6, "read", "/api/t/3", "r-2", None),
            r#"426["read",{"signature":{"endPoint":"/api/t/3","requestId":"r-2"}}]"#
        );
    }
}
