//! The wire protocol: Engine.IO v4 and Socket.IO v5 packets over a WebSocket, as text.
//!
//! Pure Rust with no I/O and no JavaScript. [`engineio`] reads the packet type of a WebSocket
//! text frame, and [`socketio`] the *header* of the Socket.IO packet an Engine.IO `message`
//! carries: its type, namespace, ack id and, for an event, its name. The JSON body after the
//! header is never scanned here: it stays a [`crate::payload::Payload`] handle, which the JS
//! engine parses once at the edge (small typed bodies, such as the open packet, are decoded
//! with serde).

pub mod engineio;
pub mod socketio;

#[cfg(test)]
mod tests;

use std::fmt;

/// Everything that can be wrong with a frame's header.
///
/// Every variant is a clean rejection of the frame: parsing never panics, whatever the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame (or a required part of it) is empty.
    Empty,
    /// The packet-type character is not one the protocol defines.
    UnknownPacketType,
    /// An ack id (or a binary attachment count) that does not fit in 64 bits.
    AckIdOverflow,
    /// A header that ends before it is complete (an event name with no closing quote).
    Truncated,
    /// The body is not the shape this packet requires (an event that is not an array starting
    /// with a string, an ACK without an id, an open packet without `sid`).
    UnexpectedPayload,
    /// Bytes after the end of a packet that has no body.
    TrailingData,
}

impl ProtocolError {
    /// A short, stable, human-readable description.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProtocolError::Empty => "empty packet",
            ProtocolError::UnknownPacketType => "unknown packet type",
            ProtocolError::AckIdOverflow => "ack id too large",
            ProtocolError::Truncated => "truncated packet header",
            ProtocolError::UnexpectedPayload => "unexpected payload",
            ProtocolError::TrailingData => "trailing data after packet",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ProtocolError {}
