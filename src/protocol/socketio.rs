//! Socket.IO v5 packets, as carried in an Engine.IO `message`.
//!
//! ```text
//! <type>[/<namespace>,][<ack id>][<JSON payload>]
//! ```
//!
//! | char | packet        | payload                                          |
//! |------|---------------|--------------------------------------------------|
//! | `0`  | CONNECT       | client: optional auth object; server: `{"sid"}`  |
//! | `1`  | DISCONNECT    | none                                             |
//! | `2`  | EVENT         | `["name", ...args]`, optional ack id             |
//! | `3`  | ACK           | `[...args]`, ack id required                     |
//! | `4`  | CONNECT_ERROR | `{"message", "data"?}`                           |
//! | `5`  | BINARY_EVENT  | unsupported: [`ProtocolError::BinaryUnsupported`] |
//! | `6`  | BINARY_ACK    | unsupported: [`ProtocolError::BinaryUnsupported`] |
//!
//! Examples: `0`, `0{"sid":"x"}`, `2["create",{…}]`, `21["create",{…}]`, `31[null,{…}]`,
//! `2/admin,3["x"]`, `1`.

use crate::prelude::*;

use super::{json, ProtocolError};

/// The kind of a (text) Socket.IO packet.
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
}

impl SioKind {
    fn code(self) -> char {
        match self {
            SioKind::Connect => '0',
            SioKind::Disconnect => '1',
            SioKind::Event => '2',
            SioKind::Ack => '3',
            SioKind::ConnectError => '4',
        }
    }
}

/// One Socket.IO packet; `data` is JSON text, borrowed from the frame when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SioPacket<'a> {
    /// What the packet is.
    pub kind: SioKind,
    /// The namespace, `/` by default.
    pub namespace: &'a str,
    /// The ack id of an EVENT that wants an answer, or of an ACK.
    pub ack_id: Option<u64>,
    /// The JSON payload, validated by [`parse`].
    pub data: Option<&'a str>,
}

impl SioPacket<'_> {
    /// Encodes the packet as a complete Engine.IO `message` frame (`4…`), ready to send.
    pub fn to_frame(&self) -> String {
        let mut out =
            String::with_capacity(8 + self.namespace.len() + self.data.map_or(0, str::len));
        out.push('4');
        out.push(self.kind.code());
        if self.namespace != "/" && !self.namespace.is_empty() {
            out.push_str(self.namespace);
            out.push(',');
        }
        if let Some(id) = self.ack_id {
            push_u64(&mut out, id);
        }
        if let Some(data) = self.data {
            out.push_str(data);
        }
        out
    }
}

/// Appends the decimal digits of `n` without `core::fmt`.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(d as char);
    }
}

/// Parses the text of an Engine.IO message as a Socket.IO packet, validating its payload.
pub fn parse(text: &str) -> Result<SioPacket<'_>, ProtocolError> {
    let b = text.as_bytes();
    let Some(&kind) = b.first() else {
        return Err(ProtocolError::Empty);
    };
    let kind = match kind {
        b'0' => SioKind::Connect,
        b'1' => SioKind::Disconnect,
        b'2' => SioKind::Event,
        b'3' => SioKind::Ack,
        b'4' => SioKind::ConnectError,
        b'5' | b'6' => {
            // Binary header: `51-…`; report its ack id if we can read one.
            let rest = super::split_once_ascii(super::sub(text, 1, text.len()), b'-')
                .map_or("", |(_, r)| r);
            let rest = skip_namespace(rest).1;
            let ack_id = read_ack_id(rest).ok().and_then(|(id, _)| id);
            return Err(ProtocolError::BinaryUnsupported { ack_id });
        }
        _ => return Err(ProtocolError::UnknownPacketType),
    };
    let (namespace, rest) = skip_namespace(super::sub(text, 1, text.len()));
    let (ack_id, rest) = read_ack_id(rest)?;
    let data = if rest.is_empty() { None } else { Some(rest) };
    if let Some(d) = data {
        json::validate(d)?;
    }
    let first_is_string = |d: &str| {
        json::split_array(d)
            .ok()
            .and_then(|items| items.first().map(|i| i.starts_with('"')))
            .unwrap_or(false)
    };
    let shape_ok = match kind {
        SioKind::Connect => {
            ack_id.is_none() && data.is_none_or(|d| d.trim_ascii_start().starts_with('{'))
        }
        SioKind::Disconnect => ack_id.is_none() && data.is_none(),
        SioKind::Event => data.is_some_and(first_is_string),
        SioKind::Ack => ack_id.is_some() && data.is_some_and(|d| json::split_array(d).is_ok()),
        SioKind::ConnectError => ack_id.is_none() && data.is_some(),
    };
    if !shape_ok {
        return Err(if data.is_none() && kind != SioKind::Disconnect {
            ProtocolError::Empty
        } else {
            ProtocolError::UnexpectedPayload
        });
    }
    Ok(SioPacket {
        kind,
        namespace,
        ack_id,
        data,
    })
}

/// Splits off `/nsp,` (or a bare `/nsp` filling the rest); the default namespace is `/`.
fn skip_namespace(text: &str) -> (&str, &str) {
    if !text.starts_with('/') {
        return ("/", text);
    }
    super::split_once_ascii(text, b',').unwrap_or((text, ""))
}

fn read_ack_id(text: &str) -> Result<(Option<u64>, &str), ProtocolError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Ok((None, text));
    }
    let mut id: u64 = 0;
    for d in text.bytes().take(digits) {
        id = id
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(ProtocolError::AckIdOverflow)?;
    }
    Ok((Some(id), super::sub(text, digits, text.len())))
}
