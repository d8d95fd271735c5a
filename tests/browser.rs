//! Browser tests of the wasm client against a real socket.io v4 server.
//!
//! Start `node tests/support/socketio-server.mjs --ping-interval 300 --ping-timeout 300`, then
//! `SOCKET_URL=http://127.0.0.1:<port> PING_INTERVAL=300 wasm-pack test --headless --chrome
//! --mode no-install`. The URL reaches the wasm at compile time (wasm cannot read the
//! environment).

use wasm_bindgen_test::wasm_bindgen_test_configure;

wasm_bindgen_test_configure!(run_in_browser);

// Included by src/lib.rs as a module of the crate (the crate is a cdylib only; see Cargo.toml).

#[path = "browser/backbone.rs"]
mod backbone;
#[path = "browser/connection.rs"]
mod connection;
#[path = "browser/requests.rs"]
mod requests;
#[path = "browser/support.rs"]
mod support;
