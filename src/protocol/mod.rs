//! The wire protocol: Engine.IO v4 and Socket.IO v5 packets over a WebSocket, as text.
//!
//! Pure Rust with no I/O and no JavaScript: [`engineio`] splits a WebSocket text frame into an
//! Engine.IO packet, [`socketio`] reads the Socket.IO packet carried by an Engine.IO `message`,
//! and [`json`] is the small JSON scanner both need. Payloads stay JSON *text*: the browser's
//! own `JSON.parse` turns them into values at the boundary, which keeps `serde_json` (and its
//! size) out of the module.

pub mod engineio;
pub mod json;
pub mod socketio;

#[cfg(test)]
mod tests;

/// `text.split_once(sep)` for an ASCII `sep`, as a plain byte loop: core's char searcher and
/// `memchr` cost the wasm ~0.6 KB, and an ASCII byte is always a char boundary.
pub(crate) fn split_once_ascii(text: &str, sep: u8) -> Option<(&str, &str)> {
    let i = text.bytes().position(|b| b == sep)?;
    let (head, tail) = text.split_at_checked(i)?;
    Some((head, tail.get(1..)?))
}

/// `&text[start..end]` without a panic path. The scanners only cut next to ASCII bytes, so the
/// range is always on char boundaries; were it not, the result is empty rather than a panic
/// (whose message formatting alone would cost the wasm ~0.6 KB).
pub(crate) fn sub(text: &str, start: usize, end: usize) -> &str {
    text.get(start..end).unwrap_or("")
}

/// Everything that can be wrong with a frame received from the server.
///
/// Every variant is a clean rejection of the frame: parsing never panics, whatever the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame (or a required part of it) is empty.
    Empty,
    /// The packet-type character is not one the protocol defines.
    UnknownPacketType,
    /// A binary Socket.IO packet (`45`/`46`): this client speaks text only. Carries the ack id
    /// when the header had one, so a binary ACK for a pending request can fail that request.
    BinaryUnsupported {
        /// The ack id from the packet header, if any.
        ack_id: Option<u64>,
    },
    /// An ack id that does not fit in 64 bits.
    AckIdOverflow,
    /// JSON that ends before its value is complete.
    TruncatedJson,
    /// Text that is not JSON.
    InvalidJson,
    /// Valid JSON, but not the shape this packet requires (e.g. an event that is not an array
    /// starting with a string, an open packet without `sid`).
    UnexpectedPayload,
    /// Bytes after the end of the packet.
    TrailingData,
}

impl ProtocolError {
    /// A short, stable, human-readable description (no `core::fmt` needed).
    pub fn as_str(&self) -> &'static str {
        match self {
            ProtocolError::Empty => "empty packet",
            ProtocolError::UnknownPacketType => "unknown packet type",
            ProtocolError::BinaryUnsupported { .. } => "binary packets are not supported",
            ProtocolError::AckIdOverflow => "ack id too large",
            ProtocolError::TruncatedJson => "truncated JSON",
            ProtocolError::InvalidJson => "invalid JSON",
            ProtocolError::UnexpectedPayload => "unexpected payload",
            ProtocolError::TrailingData => "trailing data after packet",
        }
    }
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for ProtocolError {}
