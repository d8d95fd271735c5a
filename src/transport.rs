//! The browser WebSocket: opened on a URL, its events turned into [`TransportEvent`]s.
//!
//! The listeners are owned by the [`Transport`], so dropping it unhooks them (and closes the
//! socket): a replaced or abandoned socket can never report into the session again.

use crate::prelude::*;

use alloc::rc::Rc;

use crate::listener::EventListener;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// What happened on the socket.
pub(crate) enum TransportEvent {
    /// The WebSocket is open.
    Open,
    /// A text frame.
    Text(String),
    /// A binary frame (not part of this protocol).
    Binary,
    /// The socket closed, cleanly or not (a failed connection also ends here).
    Closed,
}

/// One WebSocket with its listeners.
pub(crate) struct Transport {
    ws: WebSocket,
    _listeners: [EventListener; 3],
}

impl Transport {
    /// Opens a WebSocket on `url`, reporting its events to `handler`. Fails when the browser
    /// rejects the URL.
    pub(crate) fn open(url: &str, handler: Rc<dyn Fn(TransportEvent)>) -> Result<Self, JsValue> {
        let ws = WebSocket::new(url)?;
        // Binary frames are not part of this protocol; an ArrayBuffer is cheaper than a Blob
        // for the one we may have to recognise and skip.
        ws.set_binary_type(BinaryType::Arraybuffer);
        let h = handler.clone();
        let open = EventListener::new(&ws, "open", move |_| h(TransportEvent::Open));
        let h = handler.clone();
        let message = EventListener::new(&ws, "message", move |event| {
            let data = event.unchecked_ref::<MessageEvent>().data();
            h(match data.as_string() {
                Some(text) => TransportEvent::Text(text),
                None => TransportEvent::Binary,
            })
        });
        let close = EventListener::new(&ws, "close", move |_| handler(TransportEvent::Closed));
        Ok(Transport {
            ws,
            _listeners: [open, message, close],
        })
    }

    /// Sends a text frame (dropped if the socket is no longer open: the session notices the
    /// close through its own event).
    pub(crate) fn send(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        let _ = self.ws.close();
    }
}
