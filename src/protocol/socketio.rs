//! Socket.IO v5 packet headers, as carried in an Engine.IO `message`.
//!
//! ```text
//! <type>[<attachments>-][/<namespace>,][<ack id>][<JSON body>]
//! ```
//!
//! | char | packet        | body                                             |
//! |------|---------------|--------------------------------------------------|
//! | `0`  | CONNECT       | client: optional auth object; server: `{"sid"}`  |
//! | `1`  | DISCONNECT    | none                                             |
//! | `2`  | EVENT         | `["name", ...args]`, optional ack id             |
//! | `3`  | ACK           | `[...args]`, ack id required                     |
//! | `4`  | CONNECT_ERROR | `{"message", "data"?}`                           |
//! | `5`  | BINARY_EVENT  | as EVENT, after `<attachments>-`                 |
//! | `6`  | BINARY_ACK    | as ACK, after `<attachments>-`                   |
//!
//! Examples: `0`, `0{"sid":"x"}`, `2["create",{…}]`, `21["create",{…}]`, `31[null,{…}]`,
//! `2/admin,3["x"]`, `51-0["upload",{"_placeholder":true,"num":0}]`, `1`.
//!
//! Only the header is read: the body is left to the caller (see [`Header::body_at`]).

use super::ProtocolError;

/// The kind of a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SioKind {
    /// `0`: namespace connection request (client) or acceptance (server).
    Connect,
    /// `1`: leave the namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: the acknowledgement of an event.
    Ack,
    /// `4`: the server refused the namespace connection.
    ConnectError,
    /// `5`: an event with binary attachments (this client reads text only).
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl SioKind {
    fn code(self) -> char {
        match self {
            SioKind::Connect => '0',
            SioKind::Disconnect => '1',
            SioKind::Event => '2',
            SioKind::Ack => '3',
            SioKind::ConnectError => '4',
            SioKind::BinaryEvent => '5',
            SioKind::BinaryAck => '6',
        }
    }
}

/// The header of one Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// What the packet is.
    pub kind: SioKind,
    /// The namespace, `/` by default.
    pub namespace: String,
    /// The ack id of an EVENT that wants an answer, or of an ACK.
    pub ack_id: Option<u64>,
    /// The name of an EVENT or BINARY_EVENT (the first element of its array).
    pub event: Option<String>,
    /// Where the JSON body starts, in bytes from the start of the text given to [`parse`]
    /// (its length when there is no body).
    pub body_at: usize,
    /// Whether the packet has a body.
    pub has_body: bool,
}

/// Parses the header of a Socket.IO packet from `text` (the Engine.IO message without its `4`,
/// or only its first characters: `complete` says whether `text` is the whole message). An
/// event name that runs past an incomplete `text` is [`ProtocolError::Truncated`]: read more.
pub fn parse(text: &str, complete: bool) -> Result<Header, ProtocolError> {
    let b = text.as_bytes();
    let kind = match b.first() {
        None => return Err(ProtocolError::Empty),
        Some(b'0') => SioKind::Connect,
        Some(b'1') => SioKind::Disconnect,
        Some(b'2') => SioKind::Event,
        Some(b'3') => SioKind::Ack,
        Some(b'4') => SioKind::ConnectError,
        Some(b'5') => SioKind::BinaryEvent,
        Some(b'6') => SioKind::BinaryAck,
        Some(_) => return Err(ProtocolError::UnknownPacketType),
    };
    let mut at = 1;
    if matches!(kind, SioKind::BinaryEvent | SioKind::BinaryAck) {
        // `<attachments>-`: a count is required.
        let (count, after) = read_number(text, at)?;
        if count.is_none() || b.get(after) != Some(&b'-') {
            return Err(ProtocolError::UnexpectedPayload);
        }
        at = after + 1;
    }
    let mut namespace = "/";
    if b.get(at) == Some(&b'/') {
        let comma = b.get(at..).and_then(|r| r.iter().position(|&c| c == b','));
        let end = match comma {
            Some(i) => at + i,
            None if complete => text.len(),
            None => return Err(ProtocolError::Truncated),
        };
        // `/` and `,` are ASCII: both ends are char boundaries.
        namespace = text.get(at..end).unwrap_or_default();
        at = (end + 1).min(text.len());
    }
    let (ack_id, after) = read_number(text, at)?;
    at = after;
    let has_body = at < text.len() || !complete;
    let first = b.get(at).copied();
    let mut event = None;
    let shape_ok = match kind {
        SioKind::Connect => ack_id.is_none() && (!has_body || first == Some(b'{')),
        SioKind::Disconnect => ack_id.is_none() && !has_body,
        SioKind::Event | SioKind::BinaryEvent => {
            event = Some(read_event_name(text, at, complete)?);
            true
        }
        SioKind::Ack | SioKind::BinaryAck => ack_id.is_some() && first == Some(b'['),
        SioKind::ConnectError => ack_id.is_none() && matches!(first, Some(b'{' | b'"')),
    };
    if !shape_ok {
        return Err(if !has_body && kind != SioKind::Disconnect {
            ProtocolError::Empty
        } else {
            ProtocolError::UnexpectedPayload
        });
    }
    Ok(Header {
        kind,
        namespace: namespace.to_owned(),
        ack_id,
        event,
        body_at: at,
        has_body,
    })
}

/// The header of a packet we send, as the start of an Engine.IO `message` frame (`4…`): the
/// body, if any, follows it.
pub fn head(kind: SioKind, namespace: &str, ack_id: Option<u64>) -> String {
    let mut out = String::with_capacity(4 + namespace.len() + 20);
    out.push('4');
    out.push(kind.code());
    if namespace != "/" && !namespace.is_empty() {
        out.push_str(namespace);
        out.push(',');
    }
    if let Some(id) = ack_id {
        out.push_str(&id.to_string());
    }
    out
}

/// The decimal number at `at`, if any, and where it ends.
fn read_number(text: &str, at: usize) -> Result<(Option<u64>, usize), ProtocolError> {
    let rest = text.get(at..).unwrap_or_default();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, at));
    }
    let id = rest
        .bytes()
        .take(digits)
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(ProtocolError::AckIdOverflow)?;
    Ok((Some(id), at + digits))
}

/// The event name at the start of an event's body `["name", …]`: a JSON string literal.
fn read_event_name(text: &str, at: usize, complete: bool) -> Result<String, ProtocolError> {
    let short = if complete {
        ProtocolError::UnexpectedPayload
    } else {
        ProtocolError::Truncated
    };
    let body = text.get(at..).unwrap_or_default();
    let Some(after_bracket) = body.strip_prefix('[') else {
        return Err(if body.is_empty() {
            short
        } else {
            ProtocolError::UnexpectedPayload
        });
    };
    let trimmed = after_bracket.trim_start_matches([' ', '\t', '\n', '\r']);
    let Some(literal) = trimmed.strip_prefix('"') else {
        return Err(if trimmed.is_empty() {
            short
        } else {
            ProtocolError::UnexpectedPayload
        });
    };
    let mut name = String::new();
    let mut chars = literal.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(name),
            '\\' => match chars.next() {
                Some('"') => name.push('"'),
                Some('\\') => name.push('\\'),
                Some('/') => name.push('/'),
                Some('b') => name.push('\u{8}'),
                Some('f') => name.push('\u{c}'),
                Some('n') => name.push('\n'),
                Some('r') => name.push('\r'),
                Some('t') => name.push('\t'),
                Some('u') => name.push(read_unicode_escape(&mut chars).ok_or(short)?),
                Some(_) => return Err(ProtocolError::UnexpectedPayload),
                None => return Err(short),
            },
            c if u32::from(c) < 0x20 => return Err(ProtocolError::UnexpectedPayload),
            c => name.push(c),
        }
    }
    Err(short)
}

/// The character of a `\uXXXX` escape (after the `\u`), joining a surrogate pair; a lone
/// surrogate becomes U+FFFD, as `JSON.parse` would keep it as an unpaired code unit.
fn read_unicode_escape(chars: &mut std::str::Chars<'_>) -> Option<char> {
    // Exactly four hex digits (no sign: `from_str_radix` would take `\u+abc`).
    let hex = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
        (0..4).try_fold(0, |n, _| Some(n * 16 + chars.next()?.to_digit(16)?))
    };
    let high = hex(chars)?;
    if (0xD800..0xDC00).contains(&high) {
        let mut ahead = chars.clone();
        if ahead.next() == Some('\\') && ahead.next() == Some('u') {
            if let Some(low) = hex(&mut ahead).filter(|l| (0xDC00..0xE000).contains(l)) {
                *chars = ahead;
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(code);
            }
        }
    }
    Some(char::from_u32(high).unwrap_or('\u{fffd}'))
}
