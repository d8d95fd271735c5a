//! # backbone-socket-sync
//!
//! `Backbone.sync` over one socket.io WebSocket, in Rust compiled to WebAssembly.
//!
//! The crate is a pure core and a thin browser shell:
//! - [`protocol`]: the Engine.IO v4 / Socket.IO v5 packet headers (pure, tested natively on
//!   literal wire strings);
//! - [`session`]: the connection state machine (handshake, heartbeat, request table, timeouts,
//!   queueing, reconnection) — inputs in, effects out, no I/O (pure, tested natively);
//! - [`live`] and [`fallback`]: the decisions of live collections and of the XHR fallback,
//!   as pure state machines (events in, actions out); [`live_twins`], which copies of a
//!   page's own unanswered create a live collection drops; [`live_versions`], the versions
//!   a live collection holds, so that it never steps back and sees what it missed;
//! - [`payload`]: the handle bodies travel in, never read by the core (a `String` natively,
//!   a JavaScript string in the browser, parsed once by the JS engine);
//! - [`backoff`], [`url`], [`request_id`]: small pure helpers;
//! - wasm32 only: `transport` (the WebSocket, with gloo-events listeners), `shell` (one
//!   session's effects performed in the browser), and the `#[wasm_bindgen]` boundary: `socket`
//!   (`connect`, the `Socket` class), `sync` (`Backbone.sync`), `xhr` (the jqXHR-like
//!   thenable), `install` (Backbone at the edge: live collections, the fallback).

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod backoff;
pub mod fallback;
pub mod live;
pub mod live_twins;
pub mod live_versions;
pub mod payload;
pub mod protocol;
pub mod request_id;
pub mod session;
pub mod url;

#[cfg(target_arch = "wasm32")]
pub mod install;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod live_apply;
#[cfg(target_arch = "wasm32")]
pub mod live_backbone;
#[cfg(target_arch = "wasm32")]
mod names;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
pub mod socket;
#[cfg(target_arch = "wasm32")]
pub mod sync;
#[cfg(target_arch = "wasm32")]
mod transport;
#[cfg(target_arch = "wasm32")]
mod xhr;

/// The browser tests (wasm-bindgen-test, in headless Chromium against a real socket.io server).
#[cfg(all(test, target_arch = "wasm32"))]
#[path = "../tests/browser.rs"]
mod browser_tests;
