//! Engine.IO v4 packets over the WebSocket transport: one packet per text frame.
//!
//! | char | packet    | payload                                              |
//! |------|-----------|------------------------------------------------------|
//! | `0`  | open      | `{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}` |
//! | `1`  | close     | none                                                 |
//! | `2`  | ping      | none (or `probe` during an upgrade)                  |
//! | `3`  | pong      | as the ping                                          |
//! | `4`  | message   | a Socket.IO packet                                   |
//! | `5`  | upgrade   | none                                                 |
//! | `6`  | noop      | none                                                 |
//!
//! In Engine.IO v4 the *server* pings and the client answers with a pong.

use crate::prelude::*;

use super::{json, ProtocolError};

/// The handshake data of the open packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    /// The Engine.IO session id.
    pub sid: String,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong (and the client adds to the interval before it
    /// declares the connection dead).
    pub ping_timeout: u64,
    /// The largest frame the server accepts, in bytes (`0` when the server did not say).
    pub max_payload: u64,
}

/// One Engine.IO packet, borrowing its message text from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0{…}`: the server's handshake.
    Open(OpenInfo),
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat; answer with [`PONG`].
    Ping,
    /// `3`: a pong (servers do not normally send one to a v4 client).
    Pong,
    /// `4…`: a message, here always a Socket.IO packet.
    Message(&'a str),
    /// `5`: transport upgrade (unused: this client starts on WebSocket).
    Upgrade,
    /// `6`: no-op.
    Noop,
}

/// The frame that answers a ping.
pub const PONG: &str = "3";

/// Parses one WebSocket text frame.
pub fn parse(frame: &str) -> Result<EioPacket<'_>, ProtocolError> {
    let Some(kind) = frame.as_bytes().first() else {
        return Err(ProtocolError::Empty);
    };
    // Every packet type is one ASCII digit; anything else (including a multi-byte character,
    // which must not be sliced into) is unknown.
    let Some(rest) = frame.get(1..).filter(|_| kind.is_ascii()) else {
        return Err(ProtocolError::UnknownPacketType);
    };
    let bare = |p: EioPacket<'static>| {
        if rest.is_empty() {
            Ok(p)
        } else {
            Err(ProtocolError::TrailingData)
        }
    };
    match kind {
        b'0' => parse_open(rest).map(EioPacket::Open),
        b'1' => bare(EioPacket::Close),
        // "probe" pings only occur during a polling -> websocket upgrade; accept and answer them.
        b'2' if rest.is_empty() || rest == "probe" => Ok(EioPacket::Ping),
        b'2' => Err(ProtocolError::TrailingData),
        b'3' => Ok(EioPacket::Pong),
        b'4' => Ok(EioPacket::Message(rest)),
        b'5' => bare(EioPacket::Upgrade),
        b'6' => bare(EioPacket::Noop),
        _ => Err(ProtocolError::UnknownPacketType),
    }
}

/// Wraps a message (a Socket.IO packet's text) into an Engine.IO `message` frame.
pub fn message(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    out.push('4');
    out.push_str(text);
    out
}

fn parse_open(payload: &str) -> Result<OpenInfo, ProtocolError> {
    if payload.is_empty() {
        return Err(ProtocolError::Empty);
    }
    let mut sid = None;
    let (mut interval, mut timeout, mut max_payload) = (None, None, 0);
    for (key, value) in json::object_fields(payload)? {
        let number = || json::parse_u64(value).ok_or(ProtocolError::UnexpectedPayload);
        match key.as_str() {
            "sid" => sid = Some(json::unescape(value)?),
            "pingInterval" => interval = Some(number()?),
            "pingTimeout" => timeout = Some(number()?),
            "maxPayload" => max_payload = number()?,
            _ => {}
        }
    }
    match (sid, interval, timeout) {
        (Some(sid), Some(ping_interval), Some(ping_timeout)) if !sid.is_empty() => Ok(OpenInfo {
            sid,
            ping_interval,
            ping_timeout,
            max_payload,
        }),
        _ => Err(ProtocolError::UnexpectedPayload),
    }
}
