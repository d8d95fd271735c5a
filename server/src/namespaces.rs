//! Which socket.io namespaces clients may connect to, and which namespaces a broadcast visits.
//!
//! - `/` and the namespaces given with `--namespace` always exist.
//! - Any other namespace exists only with `--dynamic-namespaces`, at most `--max-namespaces`
//!   of them at once (a connection beyond gets a CONNECT_ERROR), and is removed when its last
//!   socket leaves: one client cannot create namespaces without end (the 120,000).
//! - A broadcast to a room visits the configured namespaces (few) and only the dynamic
//!   namespaces where a socket joined that room, never every namespace. With several nodes
//!   (Redis adapter) a room may be held in a dynamic namespace on another node only, so there
//!   a broadcast visits every namespace the node has, at most `--max-namespaces` + the
//!   configured ones.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::handler::ConnectHandler as _;
use socketioxide::SocketIo;

use socketioxide_core::adapter::{DefinedAdapter, Spawnable};

use crate::{access, socket};

/// Default of `--max-namespaces`.
pub use crate::config::DEFAULT_MAX_DYNAMIC;

/// Removes a namespace from socketioxide, whatever its adapter.
type DeleteNamespace = Box<dyn Fn(&str) + Send + Sync>;

/// The namespace table of one server.
pub struct Namespaces {
    fixed: Vec<String>,
    dynamic: bool,
    max_dynamic: usize,
    state: Mutex<State>,
    /// Removes a namespace from socketioxide (set by [`Namespaces::declare`]).
    delete: OnceLock<DeleteNamespace>,
}

#[derive(Default)]
struct State {
    /// Sockets connected to each dynamic namespace.
    members: HashMap<String, usize>,
    /// For each room, the dynamic namespaces where a socket joined it.
    rooms: HashMap<String, HashSet<String>>,
}

/// The CONNECT_ERROR of a dynamic namespace beyond the limit.
#[derive(Debug)]
pub struct TooManyNamespaces;

impl std::fmt::Display for TooManyNamespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("too many namespaces")
    }
}

impl std::error::Error for TooManyNamespaces {}

impl Namespaces {
    /// The table for the configured namespaces, with dynamic ones when `dynamic` (at most
    /// `max_dynamic` at once).
    pub fn new(fixed: &[String], dynamic: bool, max_dynamic: usize) -> Result<Arc<Self>, String> {
        let mut paths: Vec<String> = Vec::new();
        for path in fixed {
            if !path.starts_with('/') || path.contains(',') || path.contains('?') {
                return Err(format!(
                    "namespace {path:?} must start with '/' and hold no ',' or '?'"
                ));
            }
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
        if paths.is_empty() {
            paths.push("/".into());
        }
        Ok(Arc::new(Self {
            fixed: paths,
            dynamic,
            max_dynamic,
            state: Mutex::default(),
            delete: OnceLock::new(),
        }))
    }

    /// Declares the namespaces on `io` besides `/` (which the caller declares: its adapter
    /// initialisation differs): each socket is authenticated, admitted (dynamic namespaces),
    /// then gets its handlers.
    pub fn declare<A: Adapter + DefinedAdapter>(
        self: &Arc<Self>,
        io: &SocketIo<A>,
    ) -> Result<(), String> {
        let deleter = io.clone();
        let _ = self
            .delete
            .set(Box::new(move |ns: &str| deleter.delete_ns(ns)));
        // Middlewares run last-added first.
        for path in self.fixed.iter().filter(|path| *path != "/") {
            let init = io.ns(
                path.clone(),
                socket::on_connect::<A>
                    .with(socket::register_handlers::<A>)
                    .with(access::authenticate::<A>),
            );
            // A node-spanning adapter subscribes in the background, as for dynamic ones.
            Spawnable::spawn(init);
        }
        if self.dynamic {
            let table = self.clone();
            let admit = move |socket: SocketRef<A>| {
                let table = table.clone();
                async move { table.admit(&socket) }
            };
            io.dyn_ns(
                "/{*namespace}",
                socket::on_connect::<A>
                    .with(socket::register_handlers::<A>)
                    .with(admit)
                    .with(access::authenticate::<A>),
            )
            .map_err(|e| format!("namespace pattern: {e}"))?;
        }
        Ok(())
    }

    /// Counts a socket into its dynamic namespace, or refuses it beyond the limit.
    fn admit<A: Adapter>(self: &Arc<Self>, socket: &SocketRef<A>) -> Result<(), TooManyNamespaces> {
        let ns = socket.ns().to_owned();
        {
            let mut state = self.state.lock().expect("namespaces");
            let open = state.members.len();
            match state.members.get_mut(&ns) {
                Some(count) => *count += 1,
                None if open < self.max_dynamic => {
                    state.members.insert(ns.clone(), 1);
                }
                None => {
                    drop(state);
                    tracing::debug!(ns, "dynamic namespace refused: limit reached");
                    // socketioxide created it for this connection: remove it again.
                    self.remove_later(ns);
                    return Err(TooManyNamespaces);
                }
            }
        }
        let table = self.clone();
        socket.on_disconnect(move |socket: SocketRef<A>| {
            table.leave(socket.ns());
            async {}
        });
        Ok(())
    }

    fn leave(self: &Arc<Self>, ns: &str) {
        let mut state = self.state.lock().expect("namespaces");
        let Some(count) = state.members.get_mut(ns) else {
            return;
        };
        *count -= 1;
        if *count > 0 {
            return;
        }
        state.members.remove(ns);
        for holders in state.rooms.values_mut() {
            holders.remove(ns);
        }
        state.rooms.retain(|_, holders| !holders.is_empty());
        drop(state);
        self.remove_later(ns.to_owned());
    }

    /// Removes a namespace from socketioxide outside the connect / disconnect in progress,
    /// unless a socket entered it again meanwhile.
    fn remove_later(self: &Arc<Self>, ns: String) {
        let table = self.clone();
        tokio::spawn(async move {
            let entered_again = table
                .state
                .lock()
                .expect("namespaces")
                .members
                .contains_key(&ns);
            if let (false, Some(delete)) = (entered_again, table.delete.get()) {
                delete(&ns);
            }
        });
    }

    /// Notes that a socket of namespace `ns` joined `room`.
    pub fn joined(&self, ns: &str, room: &str) {
        if self.fixed.iter().any(|fixed| fixed == ns) {
            return;
        }
        let mut state = self.state.lock().expect("namespaces");
        if state.members.contains_key(ns) {
            state
                .rooms
                .entry(room.to_owned())
                .or_default()
                .insert(ns.to_owned());
        }
    }

    /// The namespaces a broadcast to `room` visits.
    pub fn holding(&self, room: &str) -> Vec<String> {
        let mut paths = self.fixed.clone();
        let state = self.state.lock().expect("namespaces");
        if let Some(holders) = state.rooms.get(room) {
            paths.extend(holders.iter().cloned());
        }
        paths
    }

    /// Dynamic namespaces open now.
    pub fn dynamic_count(&self) -> usize {
        self.state.lock().expect("namespaces").members.len()
    }
}

impl crate::live::RoomTable for Namespaces {
    fn joined(&self, ns: &str, room: &str) {
        Namespaces::joined(self, ns, room);
    }

    fn holding(&self, room: &str) -> Vec<String> {
        Namespaces::holding(self, room)
    }

    fn dynamic_count(&self) -> usize {
        Namespaces::dynamic_count(self)
    }
}
