//! # backbone-socket-sync
//!
//! `Backbone.sync` over one socket.io WebSocket, in Rust compiled to WebAssembly.
//!
//! The crate is a pure core and a thin browser shell:
//! - [`protocol`]: the Engine.IO v4 / Socket.IO v5 packet codec (pure, tested natively);
//! - [`session`]: the connection state machine (handshake, heartbeat, request table, timeouts,
//!   queueing, reconnection) — inputs in, effects out, no I/O (pure, tested natively);
//! - [`backoff`]: the reconnection delay schedule (pure);
//! - `transport`, `socket`, `sync` (wasm32 only): the browser WebSocket and timer, and the
//!   `#[wasm_bindgen]` exports `connect`, `sync` and the `Socket` class.

#![warn(missing_docs)]

pub mod backoff;
pub mod idmap;
pub mod protocol;
pub mod session;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
pub mod socket;
#[cfg(target_arch = "wasm32")]
pub mod sync;
#[cfg(target_arch = "wasm32")]
mod transport;

/// The wasm build's allocator: a free list sorted by address that coalesces neighbours, a few
/// hundred bytes of code instead of dlmalloc's ~12 KB. Freed memory is reused, so a page that
/// runs for hours does not grow without bound.
// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
