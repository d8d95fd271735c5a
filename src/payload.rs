//! The payload handle: how the pure core holds frame text it does not read.
//!
//! The codec reads only a frame's header (packet types, namespace, ack id, event name); bodies
//! (a model, a reply, an event's arguments) pass through the session untouched, as a handle of
//! type [`Payload`]. Natively that handle is a [`String`] (the tests write literal frames); in
//! the browser it is a JavaScript string, so a reply is never copied into wasm memory and its
//! body is `JSON.parse`d once, by the JS engine, at the edge.

use std::fmt::Debug;

use serde::de::DeserializeOwned;

/// Text the core carries without reading: a whole frame, or the JSON body of a packet.
pub trait Payload: Clone + Debug {
    /// A payload holding `text` (frames the core writes itself: `"3"`, `"40"`, …).
    fn from_text(text: &str) -> Self;

    /// `head`, then `body`, then `tail`, as one payload: a frame around a body that is not
    /// copied (a request's JSON, sent again unchanged after a reconnection).
    fn wrap(head: &str, body: &Self, tail: &str) -> Self;

    /// Its length as the server measures a frame (bytes; UTF-16 units in the browser, close
    /// enough for the `maxPayload` check).
    fn size(&self) -> usize;

    /// Up to the first `max` characters, as Rust text (where the codec reads a header), and
    /// whether that is the whole payload.
    fn head(&self, max: usize) -> (String, bool);

    /// What follows `head` (a prefix of this payload returned by [`Payload::head`]).
    fn rest(&self, head: &str) -> Self;

    /// The payload as JSON decoded into a small typed structure (the Engine.IO open packet,
    /// a CONNECT's sid, a CONNECT_ERROR's message); `None` if it is not that.
    fn decode<T: DeserializeOwned>(&self) -> Option<T>;
}

/// Native payloads (the core's tests, native tools): plain strings, decoded with `serde_json`
/// (only small typed structures are ever decoded; bodies are not).
impl Payload for String {
    fn from_text(text: &str) -> Self {
        text.to_owned()
    }

    fn wrap(head: &str, body: &Self, tail: &str) -> Self {
        let mut out = String::with_capacity(head.len() + body.len() + tail.len());
        out.push_str(head);
        out.push_str(body);
        out.push_str(tail);
        out
    }

    fn size(&self) -> usize {
        self.len()
    }

    fn head(&self, max: usize) -> (String, bool) {
        match self.char_indices().nth(max) {
            Some((end, _)) => (self[..end].to_owned(), false),
            None => (self.clone(), true),
        }
    }

    fn rest(&self, head: &str) -> Self {
        self.get(head.len()..).unwrap_or_default().to_owned()
    }

    fn decode<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self).ok()
    }
}
