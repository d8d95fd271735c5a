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
//!
//! ## Size
//! The shipped wasm build is `no_std` (only `core` and `alloc`): its panic handler traps
//! without formatting anything, so `core::fmt` and the panic messages are not linked, and its
//! allocator is a small free list. Native builds, and the wasm build of the tests (whose
//! harness needs `std`, through the `std` feature), keep `std`.

#![warn(missing_docs)]
#![cfg_attr(all(target_arch = "wasm32", not(test), not(feature = "std")), no_std)]

extern crate alloc;

pub mod backoff;
pub mod idmap;
pub mod protocol;
pub mod request_id;
pub mod session;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod listener;
#[cfg(target_arch = "wasm32")]
mod shell;
#[cfg(target_arch = "wasm32")]
pub mod socket;
#[cfg(target_arch = "wasm32")]
pub mod sync;
#[cfg(target_arch = "wasm32")]
mod transport;

/// What `std`'s prelude would bring, taken from `alloc` so the crate also builds `no_std`.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::string::String;
    pub(crate) use alloc::vec::Vec;
}

/// The wasm build's allocator: a free list sorted by address that coalesces neighbours, a few
/// hundred bytes of code instead of dlmalloc's ~12 KB. Freed memory is reused, so a page that
/// runs for hours does not grow without bound.
// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the allocator and js::Local assume a single-threaded wasm module");

/// The shipped module's panic handler: a trap, with no message formatted (which keeps
/// `core::fmt` out of the wasm). Nothing the server sends may panic the module — the codec and
/// session return typed errors — so this is only reached by a bug.
#[cfg(all(target_arch = "wasm32", not(test), not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
