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

use serde::Deserialize;

use super::ProtocolError;

/// The handshake data of the open packet (decoded with serde from its JSON).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    /// The Engine.IO session id.
    pub sid: String,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong (and the client adds to the interval before it
    /// declares the connection dead).
    pub ping_timeout: u64,
    /// The largest frame the server accepts, in bytes (`0` when the server did not say).
    #[serde(default)]
    pub max_payload: u64,
}

/// The type of one Engine.IO packet; what follows the type character is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EioKind {
    /// `0{…}`: the server's handshake (decode the rest as [`OpenInfo`]).
    Open,
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat; answer with [`PONG`].
    Ping,
    /// `3`: a pong (servers do not normally send one to a v4 client).
    Pong,
    /// `4…`: a message, here always a Socket.IO packet.
    Message,
    /// `5`: transport upgrade (unused: this client starts on WebSocket).
    Upgrade,
    /// `6`: no-op.
    Noop,
}

/// The frame that answers a ping.
pub const PONG: &str = "3";

/// Reads the packet type of a WebSocket text frame from its `head`: its first characters, or
/// all of it when `complete`.
pub fn parse(head: &str, complete: bool) -> Result<EioKind, ProtocolError> {
    let Some(kind) = head.as_bytes().first() else {
        return Err(ProtocolError::Empty);
    };
    let rest = head.get(1..).unwrap_or("\u{fffd}");
    let alone = complete && head.len() == 1;
    let bare = |k: EioKind| {
        if alone {
            Ok(k)
        } else {
            Err(ProtocolError::TrailingData)
        }
    };
    match kind {
        b'0' if !alone => Ok(EioKind::Open),
        b'0' => Err(ProtocolError::Empty),
        b'1' => bare(EioKind::Close),
        // "probe" pings only occur during a polling -> websocket upgrade; accept and answer them.
        b'2' if alone || (complete && rest == "probe") => Ok(EioKind::Ping),
        b'2' => Err(ProtocolError::TrailingData),
        b'3' => Ok(EioKind::Pong),
        b'4' => Ok(EioKind::Message),
        b'5' => bare(EioKind::Upgrade),
        b'6' => bare(EioKind::Noop),
        _ => Err(ProtocolError::UnknownPacketType),
    }
}
