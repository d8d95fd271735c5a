//! Owned browser callbacks: an event listener and a timeout that unhook themselves when
//! dropped (gloo's idea, without its `std` dependency).
//!
//! Each value owns its [`Callback`]; `Drop` removes the listener or clears the timeout before the
//! closure is freed, so the browser can never call into a dropped closure.

use core::cell::Cell;

use wasm_bindgen::prelude::*;
use web_sys::{Event, EventTarget};

use crate::js::{callback, Callback};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &JsValue, ms: u32) -> i32;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: i32);
}

/// A listener for `kind` events on `target`, removed on drop.
#[must_use = "the listener is removed when this value is dropped"]
pub(crate) struct EventListener {
    target: EventTarget,
    kind: &'static str,
    callback: Callback,
}

impl EventListener {
    /// Calls `f` for every `kind` event on `target` until the returned value is dropped.
    pub(crate) fn new(
        target: &EventTarget,
        kind: &'static str,
        f: impl Fn(Event) + 'static,
    ) -> Self {
        let callback = callback(move |event, _| {
            f(event.unchecked_into());
            JsValue::UNDEFINED
        });
        let _ = target.add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref());
        EventListener {
            target: target.clone(),
            kind,
            callback,
        }
    }
}

impl Drop for EventListener {
    fn drop(&mut self) {
        let f = self.callback.as_ref().unchecked_ref();
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, f);
    }
}

/// A `setTimeout` callback, cleared on drop.
#[must_use = "the timeout is cleared when this value is dropped"]
pub(crate) struct Timeout {
    id: i32,
    _callback: Callback,
}

impl Timeout {
    /// Calls `f` once after `ms` milliseconds, unless the returned value is dropped first.
    pub(crate) fn new(ms: u32, f: impl FnOnce() + 'static) -> Self {
        let f = Cell::new(Some(f));
        let callback = callback(move |_, _| {
            if let Some(f) = f.take() {
                f();
            }
            JsValue::UNDEFINED
        });
        Timeout {
            id: set_timeout(callback.as_ref(), ms),
            _callback: callback,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(self.id);
    }
}
