//! Live collections: a socket that sends `subscribe` with `{"signature":{"endPoint":"/api/todos"}}`
//! joins the socket.io room named for that collection path (`unsubscribe` leaves it), and after
//! every committed write, over the socket or over REST, the room hears one of
//!
//! ```text
//! created / updated / patched / deleted   {"endPoint": …, "collection": …, "item": …,
//!                                          "version": …, "seq": …}
//! ```
//!
//! `endPoint` is the write's own (normalised) endpoint, `collection` the collection path, `item`
//! the stored model (for `deleted`, `{"id": …}`), `version` the model's version after the
//! write (a client holding version k that hears k + 2 missed one), `seq` the change's place in
//! the feed it came from (informational). A socket write is not echoed
//! to the socket that made it (it has its reply); a write replayed from a known request id is
//! not broadcast again. With authentication on, rooms are per user and collection ([`room`]):
//! nobody hears another user's writes. Broadcasts go through socketioxide rooms in every
//! namespace.
//!
//! Who broadcasts depends on the store. Both stores carry their writes' changes
//! ([`Store::changes`]), relayed by one task in commit order ([`Live::follow`]), so a
//! subscriber's last broadcast of a model is the stored one. PostgreSQL's feed holds every
//! node's writes: each node emits them to its own sockets, once, also when the writing node
//! died right after COMMIT. SQLite's holds this process's writes only: the node emits them
//! through the adapter (Redis reaches other nodes). A store without a feed leaves the
//! broadcast to the writing request, after its write ([`Live::committed`]).
//!
//! [`Store::changes`]: crate::store::Store::changes
//!
//! When the store's change feed lost changes ([`FeedItem::Resync`]), every collection room of
//! this node hears `resync {"endPoint": collection, "collection": collection}`: its
//! subscribers read the collection again.
//!
//! The `subscribe`/`unsubscribe` handlers are socket.io handlers ([`crate::socket`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::cluster::BusStats;
use crate::endpoint::Endpoint;
use crate::method::Method;
use crate::store::change::{Change, FeedItem, Origin};

/// Path of the JSON counters of this process (outside the api prefix).
pub const STATS_PATH: &str = "/_bss/stats";

/// The broadcaster every transport shares: the socket.io handle (set once it exists) and
/// counters of what happened since the process started.
#[derive(Clone, Default)]
pub struct Live {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    io: OnceLock<Box<dyn Broadcaster>>,
    bus: OnceLock<Arc<BusStats>>,
    namespaces: OnceLock<Arc<dyn RoomTable>>,
    /// Set when the store's change feed carries the broadcasts ([`Live::follow`]).
    follows: OnceLock<()>,
    writes: AtomicU64,
    replays: AtomicU64,
    broadcasts: AtomicU64,
    /// Namespaces visited by broadcasts.
    visits: AtomicU64,
    /// Rooms told to resync.
    resyncs: AtomicU64,
}

/// Which namespaces hold a room: the namespace table ([`crate::namespaces`]) as the
/// broadcaster sees it.
pub trait RoomTable: Send + Sync {
    /// Notes that a socket of namespace `ns` joined `room`.
    fn joined(&self, ns: &str, room: &str);
    /// The namespaces a broadcast to `room` visits.
    fn holding(&self, room: &str) -> Vec<String>;
    /// Dynamic namespaces open now.
    fn dynamic_count(&self) -> usize;
}

/// A socket.io handle of any adapter (local, or Redis across nodes), seen by the broadcaster.
trait Broadcaster: Send + Sync {
    /// Sends `event` with `payload` to `room` in the namespaces `only` names (every
    /// namespace when `None`), leaving out `origin`, to this node's sockets only when `local`;
    /// resolves to the namespaces visited.
    #[allow(clippy::too_many_arguments)]
    fn send<'a>(
        &'a self,
        local: bool,
        only: Option<&'a [String]>,
        origin: Option<&'a Origin>,
        room: &'a str,
        event: &'static str,
        payload: &'a Value,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + 'a>>;

    /// Sends `resync` ([`resync`]) to every collection room with a socket on this node;
    /// resolves to the rooms told.
    fn resync(&self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>>;
}

impl<A: Adapter> Broadcaster for SocketIo<A> {
    fn send<'a>(
        &'a self,
        local: bool,
        only: Option<&'a [String]>,
        origin: Option<&'a Origin>,
        room: &'a str,
        event: &'static str,
        payload: &'a Value,
    ) -> Pin<Box<dyn Future<Output = usize> + Send + 'a>> {
        let origin_sid = origin.and_then(|o| o.sid.parse::<Sid>().ok());
        Box::pin(async move {
            let nsps = match only {
                Some(paths) => paths.iter().filter_map(|path| self.of(path)).collect(),
                None => self.nsps(),
            };
            let visited = nsps.len();
            for ns in nsps {
                // `broadcast()` on the writer's socket excludes that socket.
                let writer = origin
                    .filter(|o| o.ns == ns.ns_path())
                    .and(origin_sid)
                    .and_then(|sid| ns.clone().get_socket(sid));
                let ops = match (&writer, local) {
                    (Some(socket), false) => socket.broadcast().to(room.to_owned()),
                    (Some(socket), true) => socket.broadcast().local().to(room.to_owned()),
                    (None, false) => ns.clone().to(room.to_owned()),
                    (None, true) => ns.clone().local().to(room.to_owned()),
                };
                match ops.emit(event, payload).await {
                    Ok(()) => {}
                    // Other nodes were not reached (the bus is down): this node's own sockets
                    // still hear it, as they would with a single node.
                    Err(BroadcastError::Adapter(error)) => {
                        tracing::warn!(%error, event, "broadcast to other nodes failed; sent locally");
                        let ops = match &writer {
                            Some(socket) => socket.broadcast().local().to(room.to_owned()),
                            None => ns.local().to(room.to_owned()),
                        };
                        if let Err(error) = ops.emit(event, payload).await {
                            tracing::warn!(%error, event, "live broadcast failed");
                        }
                    }
                    Err(error) => tracing::warn!(%error, event, "live broadcast failed"),
                }
            }
            visited
        })
    }

    fn resync(&self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        Box::pin(async move {
            let mut told = 0;
            for ns in self.nsps() {
                let rooms = match ns.clone().local().rooms().await {
                    Ok(rooms) => rooms,
                    Err(error) => {
                        tracing::warn!(%error, "resync: cannot list rooms");
                        continue;
                    }
                };
                // Collection rooms only (their names are paths, see [`room`]).
                for room in rooms.into_iter().filter(|room| room.starts_with('/')) {
                    let payload = resync(&room);
                    let ops = ns.clone().local().to(room);
                    if let Err(error) = ops.emit("resync", &payload).await {
                        tracing::warn!(%error, "resync broadcast failed");
                    }
                    told += 1;
                }
            }
            told
        })
    }
}

impl Live {
    /// Gives the broadcaster its socket.io handle; until then writes are not broadcast.
    pub fn attach<A: Adapter>(&self, io: SocketIo<A>) {
        let _ = self.inner.io.set(Box::new(io));
    }

    /// Gives the broadcaster the namespace table, so a broadcast visits only the namespaces
    /// that may hold its room; until then it visits every namespace.
    pub fn set_namespaces(&self, namespaces: Arc<dyn RoomTable>) {
        let _ = self.inner.namespaces.set(namespaces);
    }

    /// Notes that `socket` joined `room` (see [`RoomTable::joined`]).
    pub fn joined<A: Adapter>(&self, socket: &SocketRef<A>, room: &str) {
        if let Some(namespaces) = self.inner.namespaces.get() {
            namespaces.joined(socket.ns(), room);
        }
    }

    /// Broadcasts every change of `feed` (the store's, see [`Store::changes`]), one after the
    /// other in the feed's order, and from now on leaves writes made here to the feed too.
    /// `local_feed` (see [`Store::changes_are_local`]): the feed holds this node's writes
    /// only, so they go through the adapter to every node; else to this node's sockets only.
    /// A [`FeedItem::Resync`] of the feed tells every collection room of this node to
    /// resync: the feed lost changes, so no subscriber here can be sure it heard all.
    ///
    /// [`Store::changes`]: crate::store::Store::changes
    /// [`Store::changes_are_local`]: crate::store::Store::changes_are_local
    pub fn follow(&self, mut feed: UnboundedReceiver<FeedItem>, local_feed: bool) {
        let _ = self.inner.follows.set(());
        let live = self.clone();
        tokio::spawn(async move {
            while let Some(item) = feed.recv().await {
                match item {
                    FeedItem::Change(change) => live.relay(change, !local_feed).await,
                    FeedItem::Resync => live.resync_all().await,
                }
            }
        });
    }

    /// Tells every collection room of this node to resync (see [`Live::follow`]).
    async fn resync_all(&self) {
        if let Some(io) = self.inner.io.get() {
            let told = io.resync().await;
            self.inner.resyncs.fetch_add(told as u64, Ordering::Relaxed);
            tracing::warn!(
                rooms = told,
                "change feed lost changes: rooms told to resync"
            );
        }
    }

    /// Emits one change of the feed to the subscribers: this node's only when `local`.
    async fn relay(&self, change: Change, local: bool) {
        let Some(method) = Method::from_name(&change.method) else {
            tracing::error!(method = change.method, "change feed: unknown method");
            return;
        };
        let endpoint = match method {
            Method::Create => Endpoint::Collection(change.collection),
            _ => Endpoint::Model {
                collection: change.collection,
                id: change.id,
            },
        };
        let (event, payload) = self::change(
            method,
            &endpoint,
            &change.item,
            change.version,
            Some(change.seq),
        );
        let room = room(&change.owner, endpoint.collection());
        self.publish(local, change.origin.as_ref(), &room, event, &payload)
            .await;
    }

    /// Counts a write answered from its request id: it is not broadcast again.
    pub fn replayed(&self) {
        self.inner.replays.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a committed write of `owner` to `endpoint` and broadcasts it (`value` is the
    /// stored model at `version`) to its collection's room, leaving out `origin` — unless the
    /// store's change feed broadcasts it ([`Live::follow`]).
    pub async fn committed(
        &self,
        origin: Option<&Origin>,
        owner: &str,
        method: Method,
        endpoint: &Endpoint,
        (value, version): (&Value, i64),
    ) {
        self.inner.writes.fetch_add(1, Ordering::Relaxed);
        if self.inner.follows.get().is_some() {
            return;
        }
        let (event, payload) = change(method, endpoint, value, version, None);
        let room = room(owner, endpoint.collection());
        self.publish(false, origin, &room, event, &payload).await;
    }

    /// Adds the bus between nodes' counters to [`Live::stats`] (several nodes only).
    pub fn attach_bus(&self, stats: Arc<BusStats>) {
        let _ = self.inner.bus.set(stats);
    }

    /// `{"writes", "replays", "broadcasts", "namespaceVisits", "resyncs", "dynamicNamespaces"}`:
    /// committed
    /// writes, writes answered from their request id without being applied again (duplicates
    /// prevented), broadcasts sent (following a change feed: the changes of every node this
    /// node emitted to its sockets), namespaces those broadcasts visited, rooms told to
    /// resync (the feed lost changes), and dynamic
    /// namespaces open now; with several nodes also `"bus"` ([`BusStats::to_json`]).
    pub fn stats(&self) -> Value {
        let mut stats = json!({
            "writes": self.inner.writes.load(Ordering::Relaxed),
            "replays": self.inner.replays.load(Ordering::Relaxed),
            "broadcasts": self.inner.broadcasts.load(Ordering::Relaxed),
            "namespaceVisits": self.inner.visits.load(Ordering::Relaxed),
            "resyncs": self.inner.resyncs.load(Ordering::Relaxed),
            "dynamicNamespaces": self.inner.namespaces.get().map_or(0, |n| n.dynamic_count()),
        });
        if let Some(bus) = self.inner.bus.get() {
            stats["bus"] = bus.to_json();
        }
        stats
    }

    /// Sends `event` with `payload` to the `room` of every namespace holding it (see
    /// [`RoomTable::holding`]), leaving out `origin`; to this node's sockets only when
    /// `local`.
    async fn publish(
        &self,
        local: bool,
        origin: Option<&Origin>,
        room: &str,
        event: &'static str,
        payload: &Value,
    ) {
        let Some(io) = self.inner.io.get() else {
            return;
        };
        // Sent through the bus to several nodes, a room may be held in a dynamic namespace on
        // another node only: then every namespace this node has is visited (at most
        // --max-namespaces of them). Sent locally, this node's table is enough.
        let only = match self.inner.bus.get() {
            Some(_) if !local => None,
            _ => self.inner.namespaces.get().map(|n| n.holding(room)),
        };
        // Counted first: whoever hears it finds it counted.
        self.inner.broadcasts.fetch_add(1, Ordering::Relaxed);
        let visited = io
            .send(local, only.as_deref(), origin, room, event, payload)
            .await;
        self.inner
            .visits
            .fetch_add(visited as u64, Ordering::Relaxed);
    }
}

/// The room of `owner`'s `collection`: the collection path itself for the shared documents of
/// authentication off (owner `""`), else `<collection>#<owner>`. A collection path never holds
/// a `#`, so no two (owner, collection) pairs share a room.
pub fn room(owner: &str, collection: &str) -> String {
    if owner.is_empty() {
        collection.to_owned()
    } else {
        format!("{collection}#{owner}")
    }
}

/// The broadcast for a committed write: its event name and `{endPoint, collection, item,
/// version, seq}` (`seq` left out when the write came from no feed).
pub fn change(
    method: Method,
    endpoint: &Endpoint,
    value: &Value,
    version: i64,
    seq: Option<i64>,
) -> (&'static str, Value) {
    let event = match method {
        Method::Create => "created",
        Method::Update => "updated",
        Method::Patch => "patched",
        Method::Delete | Method::Read => "deleted",
    };
    let item = match (method, endpoint) {
        (Method::Delete, Endpoint::Model { id, .. }) => json!({ "id": crate::ids::value(id) }),
        _ => value.clone(),
    };
    let mut payload = json!({
        "endPoint": endpoint.path(),
        "collection": endpoint.collection(),
        "item": item,
        "version": version,
    });
    if let Some(seq) = seq {
        payload["seq"] = json!(seq);
    }
    (event, payload)
}

/// The `resync` payload for `room`: `{"endPoint": collection, "collection": collection}`, the
/// collection being the room's path without its owner ([`room`]).
pub fn resync(room: &str) -> Value {
    let collection = room.split('#').next().unwrap_or(room);
    json!({ "endPoint": collection, "collection": collection })
}

/// `GET /_bss/stats`: this process's [`Live::stats`] counters.
pub fn stats_router(live: Live) -> Router {
    Router::new().route(
        STATS_PATH,
        get(move || {
            let stats = live.stats();
            async move { Json(stats) }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_carry_the_endpoint_collection_and_item() {
        let model = Endpoint::parse("/api/todos/7", "/api").unwrap();
        let (event, payload) = change(
            Method::Patch,
            &model,
            &json!({"id": 7, "done": true}),
            3,
            Some(9),
        );
        assert_eq!(event, "patched");
        assert_eq!(
            payload,
            json!({"endPoint": "/api/todos/7", "collection": "/api/todos", "item": {"id": 7, "done": true}, "version": 3, "seq": 9})
        );
        let (event, payload) = change(Method::Delete, &model, &json!({}), 4, None);
        assert_eq!(event, "deleted");
        assert_eq!(payload["item"], json!({"id": 7}));
        assert_eq!((&payload["version"], payload.get("seq")), (&json!(4), None));
        let named = Endpoint::parse("/api/todos/abc", "/api").unwrap();
        assert_eq!(
            change(Method::Delete, &named, &json!({}), 1, None).1["item"],
            json!({"id": "abc"})
        );
        let collection = Endpoint::parse("/api/todos/", "/api").unwrap();
        let (event, payload) = change(Method::Create, &collection, &json!({"id": 1}), 1, None);
        assert_eq!(
            (event, &payload["endPoint"]),
            ("created", &json!("/api/todos"))
        );
        assert_eq!(
            change(Method::Update, &model, &json!({}), 2, None).0,
            "updated"
        );
    }

    #[test]
    fn resync_names_the_rooms_collection() {
        let want = json!({"endPoint": "/api/todos", "collection": "/api/todos"});
        assert_eq!(resync(&room("", "/api/todos")), want);
        assert_eq!(resync(&room("alice#x", "/api/todos")), want);
    }
}
