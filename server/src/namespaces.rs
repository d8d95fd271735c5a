//! Which socket.io namespaces clients may connect to, and which namespaces a broadcast visits.
//!
//! - `/` and the namespaces given with `--namespace` always exist (`/` also when only others
//!   are named: its sockets are live too).
//! - Any other namespace exists only with `--dynamic-namespaces`, at most `--max-namespaces`
//!   of them at once (a connection beyond gets a CONNECT_ERROR), and is removed when its last
//!   socket leaves: one client cannot create namespaces without end (the 120,000).
//! - A dynamic namespace is counted from the moment a CONNECT to it begins, before its token is
//!   checked, so the cap also bounds names asked without a token. Each socket holds a [`Slot`],
//!   given back exactly once on whichever path ends it: a DISCONNECT or a close of its
//!   connection (its disconnect handler), a refused CONNECT, a CONNECT whose connection ended
//!   meanwhile (the socket is dropped: engineioxide closes a session's send channel before it
//!   disconnects that session's sockets, so a socket added to its namespace after that fails
//!   to send its CONNECT reply and is removed). A name whose last slot is given back is
//!   deleted from socketioxide, so a name that never had a socket leaves nothing.
//! - A broadcast to a room visits the configured namespaces (few) and only the dynamic
//!   namespaces where a socket joined that room, never every namespace. With several nodes
//!   (Redis adapter) a room may be held in a dynamic namespace on another node only, so there
//!   a broadcast visits every namespace the node has, at most `--max-namespaces` + the
//!   configured ones.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State as Shared, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::SocketIo;

use socketioxide_core::adapter::{DefinedAdapter, Spawnable};

use crate::access::{self, Access, Denied};
use crate::socket;

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
    /// Slots held in each dynamic namespace (sockets connecting or connected).
    members: HashMap<String, usize>,
    /// For each room, the dynamic namespaces where a socket joined it.
    rooms: HashMap<String, HashSet<String>>,
}

/// Why a CONNECT to a dynamic namespace is refused (its CONNECT_ERROR message).
#[derive(Debug)]
pub enum Refused {
    /// A new name while `--max-namespaces` are open.
    TooManyNamespaces,
    /// The token or client id (see [`access::authenticate`]).
    Denied(Denied),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooManyNamespaces => f.write_str("too many namespaces"),
            Refused::Denied(denied) => denied.fmt(f),
        }
    }
}

impl std::error::Error for Refused {}

/// One socket's place in a dynamic namespace, from the start of its CONNECT; given back once,
/// by [`Slot::release`] or when dropped (a CONNECT refused or never completed).
pub struct Slot {
    table: Arc<Namespaces>,
    ns: String,
    held: AtomicBool,
}

impl Slot {
    /// Gives the place back (once; later calls do nothing).
    pub fn release(&self) {
        if self.held.swap(false, Ordering::AcqRel) {
            self.table.leave(&self.ns);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

impl Namespaces {
    /// The table for the configured namespaces (and `/`), with dynamic ones when `dynamic` (at
    /// most `max_dynamic` at once).
    pub fn new(fixed: &[String], dynamic: bool, max_dynamic: usize) -> Result<Arc<Self>, String> {
        // `/` is always declared (see `crate::build`), so it is always visited by broadcasts.
        let mut paths: Vec<String> = vec!["/".into()];
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
        Ok(Arc::new(Self {
            fixed: paths,
            dynamic,
            max_dynamic,
            state: Mutex::default(),
            delete: OnceLock::new(),
        }))
    }

    /// Declares the namespaces on `io` besides `/` (which the caller declares: its adapter
    /// initialisation differs): each socket is authenticated (in a dynamic namespace, counted
    /// first), then gets its handlers.
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
            let admit = move |socket: SocketRef<A>,
                              io: SocketIo<A>,
                              access: Shared<Access>,
                              payload: TryData<Value>| {
                let table = table.clone();
                async move { table.admit(socket, io, access, payload).await }
            };
            io.dyn_ns(
                "/{*namespace}",
                connected::<A>
                    .with(socket::register_handlers::<A>)
                    .with(admit),
            )
            .map_err(|e| format!("namespace pattern: {e}"))?;
        }
        Ok(())
    }

    /// Takes a slot in the socket's dynamic namespace, then authenticates it; the slot is kept
    /// in the socket's extensions and given back when it disconnects (or, if its CONNECT fails
    /// from here on, when the socket is dropped).
    async fn admit<A: Adapter>(
        self: Arc<Self>,
        socket: SocketRef<A>,
        io: SocketIo<A>,
        access: Shared<Access>,
        payload: TryData<Value>,
    ) -> Result<(), Refused> {
        let slot = self.enter(socket.ns())?;
        access::authenticate(socket.clone(), io, access, payload)
            .await
            .map_err(Refused::Denied)?;
        socket.extensions.insert(Arc::new(slot));
        socket.on_disconnect(|socket: SocketRef<A>| {
            let slot = socket.extensions.remove::<Arc<Slot>>();
            // Released in the task socketioxide spawns: a namespace being deleted closes its
            // sockets while `remove_later` holds the table.
            async move {
                if let Some(slot) = slot {
                    slot.release();
                }
            }
        });
        Ok(())
    }

    /// Counts a socket into dynamic namespace `ns`, or refuses it beyond the limit.
    fn enter(self: &Arc<Self>, ns: &str) -> Result<Slot, Refused> {
        let mut state = self.state.lock().expect("namespaces");
        let open = state.members.len();
        match state.members.get_mut(ns) {
            Some(count) => *count += 1,
            None if open < self.max_dynamic => {
                state.members.insert(ns.to_owned(), 1);
            }
            None => {
                drop(state);
                tracing::debug!(ns, "dynamic namespace refused: limit reached");
                // socketioxide created it for this connection: remove it again.
                self.remove_later(ns.to_owned());
                return Err(Refused::TooManyNamespaces);
            }
        }
        Ok(Slot {
            table: self.clone(),
            ns: ns.to_owned(),
            held: AtomicBool::new(true),
        })
    }

    /// Gives back one slot of `ns`. Never waits for the table: when it is busy (held by
    /// `remove_later` while socketioxide drops a socket), the count is taken later.
    fn leave(self: &Arc<Self>, ns: &str) {
        let state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::WouldBlock) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let (table, ns) = (self.clone(), ns.to_owned());
                    runtime.spawn(async move { table.leave_locked(table.lock(), &ns) });
                    return;
                }
                self.lock()
            }
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        self.leave_locked(state, ns);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("namespaces")
    }

    fn leave_locked(self: &Arc<Self>, mut state: MutexGuard<'_, State>, ns: &str) {
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
    /// unless a socket entered it again meanwhile. The table is held while socketioxide
    /// removes it, so no CONNECT is counted into a namespace on its way out; one that began
    /// before and completes after finds its namespace gone ([`connected`]).
    fn remove_later(self: &Arc<Self>, ns: String) {
        let table = self.clone();
        tokio::spawn(async move {
            let state = table.lock();
            if let (false, Some(delete)) = (state.members.contains_key(&ns), table.delete.get()) {
                delete(&ns);
            }
            drop(state);
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

/// The connect handler of a dynamic namespace. A socket whose namespace was deleted while its
/// CONNECT ran (its last slot was given back just before it entered) is in a namespace
/// nobody reaches: it is disconnected (its client hears a DISCONNECT and may connect again),
/// which gives its slot back.
async fn connected<A: Adapter>(socket: SocketRef<A>, io: SocketIo<A>) {
    let reachable = io
        .of(socket.ns())
        .and_then(|ns| ns.get_socket(socket.id))
        .is_some();
    if !reachable {
        tracing::debug!(sid = %socket.id, ns = socket.ns(), "namespace removed during CONNECT");
        let _ = socket.disconnect();
        return;
    }
    socket::on_connect(socket).await;
}
