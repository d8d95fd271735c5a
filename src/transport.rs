//! The browser WebSocket: opened on a URL, its events turned into [`TransportEvent`]s.
//!
//! The gloo-events listeners are owned by the [`Transport`], so dropping it unhooks them (and
//! closes the socket): a replaced or abandoned socket can never report into the session again.

use std::rc::Rc;

use gloo_events::EventListener;
use js_sys::JsString;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, MessageEvent, WebSocket};

/// What happened on the socket.
pub(crate) enum TransportEvent {
    /// The WebSocket is open.
    Open,
    /// A text frame, as the JavaScript string it arrived as.
    Text(JsString),
    /// A binary frame (an attachment of a binary packet, which this client skips).
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
        // Binary frames are not read; an ArrayBuffer is cheaper than a Blob for one that is
        // only recognised and skipped.
        ws.set_binary_type(BinaryType::Arraybuffer);
        let h = handler.clone();
        let open = EventListener::new(&ws, "open", move |_| h(TransportEvent::Open));
        let h = handler.clone();
        let message = EventListener::new(&ws, "message", move |event| {
            let data = event.unchecked_ref::<MessageEvent>().data();
            h(match data.dyn_into::<JsString>() {
                Ok(text) => TransportEvent::Text(text),
                Err(_) => TransportEvent::Binary,
            })
        });
        let close = EventListener::new(&ws, "close", move |_| handler(TransportEvent::Closed));
        Ok(Transport {
            ws,
            _listeners: [open, message, close],
        })
    }

    /// What sends on this socket, held without the transport (so no borrow of the connection
    /// is held while JavaScript runs).
    pub(crate) fn sender(&self) -> Sender {
        Sender(self.ws.clone().unchecked_into())
    }
}

/// Sends text frames on one socket (see [`Transport::sender`]).
pub(crate) struct Sender(TextSocket);

impl Sender {
    /// Sends a text frame (dropped if the socket is no longer open: the session notices the
    /// close through its own event).
    pub(crate) fn send(&self, text: &JsString) {
        let _ = self.0.send(text);
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A WebSocket seen through the one method web-sys lacks.
    type TextSocket;
    /// `ws.send(text)` with a string already on the JS side (web-sys's `send_with_str` would
    /// copy it out of wasm memory and back).
    #[wasm_bindgen(method, catch)]
    fn send(this: &TextSocket, text: &JsString) -> Result<(), JsValue>;
}

impl Drop for Transport {
    fn drop(&mut self) {
        let _ = self.ws.close();
    }
}
