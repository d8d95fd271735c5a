//! The decision of the XHR fallback (`transport: 'auto'`), as a pure state machine.
//!
//! With `transport: 'auto'` in the connect options, a page whose WebSocket cannot be opened
//! (the port refused, a proxy that blocks the upgrade) keeps saving: after `fallbackAfter`
//! failed attempts in a row (3 by default), the installed `Backbone.sync` hands calls to
//! `Backbone.ajaxSync`, the original XHR sync, which talks to the server's REST twin. The
//! socket keeps retrying with its usual backoff; once it connects, calls go over it again.
//! `transport: 'socket'` (the default) never falls back. Calls already queued on the socket
//! when the fallback starts stay in that queue; only later calls take XHR.

/// What the fallback hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackEvent {
    /// A new connection: `auto` is `transport: 'auto'`, `after` its `fallbackAfter`.
    Configure {
        /// Whether falling back is allowed.
        auto: bool,
        /// How many failed attempts in a row before it does.
        after: u32,
    },
    /// A connection attempt failed (`connect_error`).
    ConnectError,
    /// The socket connected.
    Connect,
    /// The socket lost its connection.
    Disconnect,
}

/// The fallback's state: failures counted since the last connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    auto: bool,
    after: u32,
    failures: u32,
    connected: bool,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback::new()
    }
}

impl Fallback {
    /// `transport: 'socket'`, no failures (a `const fn`, for a `thread_local!` that needs no
    /// lazy initialisation).
    pub const fn new() -> Self {
        Fallback {
            auto: false,
            after: 3,
            failures: 0,
            connected: false,
        }
    }

    /// Takes one event in.
    pub fn on(&mut self, event: FallbackEvent) {
        match event {
            FallbackEvent::Configure { auto, after } => {
                *self = Fallback {
                    auto,
                    after: after.max(1),
                    ..Fallback::default()
                }
            }
            FallbackEvent::ConnectError => self.failures = self.failures.saturating_add(1),
            FallbackEvent::Connect => {
                self.failures = 0;
                self.connected = true;
            }
            FallbackEvent::Disconnect => self.connected = false,
        }
    }

    /// Whether falling back is allowed at all (`transport: 'auto'`).
    pub fn allowed(&self) -> bool {
        self.auto
    }

    /// Whether calls should go through XHR right now: `transport: 'auto'`, not connected, and
    /// the last `fallbackAfter` attempts all failed.
    pub fn use_xhr(&self) -> bool {
        self.auto && !self.connected && self.failures >= self.after
    }
}

#[cfg(test)]
mod tests {
    use super::{Fallback, FallbackEvent::*};

    #[test]
    fn switches_after_n_failures_with_auto_only_and_back_on_connect() {
        let mut f = Fallback::default();
        for _ in 0..5 {
            f.on(ConnectError);
        }
        assert!(!f.use_xhr(), "transport 'socket' never falls back");
        assert!(!f.allowed());
        f.on(Configure {
            auto: true,
            after: 2,
        });
        assert!(f.allowed());
        f.on(ConnectError);
        assert!(!f.use_xhr());
        f.on(ConnectError);
        assert!(f.use_xhr());
        f.on(Connect);
        assert!(!f.use_xhr());
        f.on(Disconnect);
        f.on(ConnectError);
        assert!(!f.use_xhr(), "counting starts again after a connection");
        f.on(ConnectError);
        assert!(f.use_xhr());
        f.on(Configure {
            auto: true,
            after: 2,
        });
        assert!(!f.use_xhr(), "a new connection starts with no failures");
    }
}
