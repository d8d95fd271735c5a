//! The decisions of live collections, as a pure state machine: [`LiveEvent`]s in,
//! [`LiveAction`]s out; the edge (`src/live_backbone.rs`) performs them with Backbone.
//!
//! A collection made live hears the writes other clients make to its endpoint: the server
//! answers every committed write with one broadcast to the endpoint's room (`created`,
//! `updated`, `patched` or `deleted` with `{endPoint, collection, item}`), applied with
//! Backbone's own methods. The socket (re)joins the rooms on every `connect`. After a
//! connection was lost, each live collection of a room that had been joined is read again
//! (a *catch-up*), and broadcasts arriving while that read is out are held and applied after
//! it, so an answer read before them cannot undo them; a reconnection during a catch-up reads
//! again once it is over. `T` is the broadcast's item (a JS object in the browser).
//!
//! With versions (see [`crate::live_versions`]) a room never steps back: a broadcast or a
//! reply of the page's own that is not newer than the version the room holds for its model is
//! ignored, and a broadcast that shows a missed version, or the server's `resync` event,
//! starts the same catch-up as a reconnection. Broadcasts and replies without a version are
//! applied as they come.

use crate::live_versions::{Heard, Versions};

/// A live collection, as the edge numbers them.
pub type CollectionId = u32;

/// A write the server broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `created`: `collection.add(item, {merge: true})`.
    Created,
    /// `updated` / `patched`: `model.set(item)`, or add it when missing.
    Updated,
    /// `deleted`: the model's `destroy` event.
    Deleted,
}

/// What the live collections hear.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent<T> {
    /// `live(collection)` with its endpoint.
    Live {
        /// The collection.
        collection: CollectionId,
        /// Its url.
        endpoint: String,
    },
    /// `unlive(collection)`.
    Unlive {
        /// The collection.
        collection: CollectionId,
    },
    /// The socket connected.
    Connected,
    /// The socket lost its connection.
    Disconnected,
    /// The server answered a `subscribe` for `room`.
    Subscribed {
        /// The room (see [`room_of`]).
        room: String,
        /// Whether it accepted.
        ok: bool,
    },
    /// A catch-up read of one collection of `room` finished (either way).
    ReadDone {
        /// The room.
        room: String,
    },
    /// A broadcast arrived for the collection path `room`.
    Broadcast {
        /// The room (see [`room_of`]).
        room: String,
        /// What happened.
        change: Change,
        /// The written model (`{id}` for `deleted`).
        item: T,
        /// The model's id as text, when the item has one.
        id: Option<String>,
        /// The model's version after the write, when the server sent one.
        version: Option<i64>,
    },
    /// The server cannot promise it delivered every change of the room: catch up.
    Resync {
        /// The room (see [`room_of`]).
        room: String,
    },
}

/// What the edge must do.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveAction<T> {
    /// Open the connection (none was made yet).
    Connect,
    /// Send `subscribe` for `endpoint`; answer with [`LiveEvent::Subscribed`] for `room`.
    Subscribe {
        /// The room.
        room: String,
        /// The endpoint to send.
        endpoint: String,
    },
    /// Send `unsubscribe` for `endpoint` (no answer needed).
    Unsubscribe {
        /// The endpoint.
        endpoint: String,
    },
    /// Read `collection` again (a catch-up); answer with [`LiveEvent::ReadDone`] for `room`.
    Read {
        /// The room.
        room: String,
        /// The collection.
        collection: CollectionId,
    },
    /// Apply a broadcast to `collection`.
    Apply {
        /// The collection.
        collection: CollectionId,
        /// What happened.
        change: Change,
        /// The written model.
        item: T,
    },
    /// The server refused the subscription: report it on `collection`.
    Refused {
        /// The collection.
        collection: CollectionId,
    },
}

/// One endpoint's room.
#[derive(Debug)]
struct Room<T> {
    endpoint: String,
    collections: Vec<CollectionId>,
    /// Whether a connection ever joined it (so a later join may have missed writes).
    joined: bool,
    /// Broadcasts held while a catch-up is out (`None`: no catch-up).
    held: Option<Vec<(Change, T)>>,
    /// Catch-up reads still out.
    reading: usize,
    /// A reconnection happened during the catch-up: read again after it.
    again: bool,
    /// The versions heard of its models.
    versions: Versions,
    /// The page's own requests to it still unanswered (see [`Live::sent`]).
    asking: usize,
}

/// The live collections' state. See the module docs.
#[derive(Debug)]
pub struct Live<T> {
    /// The rooms by key, in the order they were made (a page has a handful).
    rooms: Vec<(String, Room<T>)>,
    connected: bool,
}

impl<T> Default for Live<T> {
    fn default() -> Self {
        Live::new()
    }
}

impl<T> Live<T> {
    /// No live collections (a `const fn`, for a `thread_local!` that needs no lazy
    /// initialisation).
    pub const fn new() -> Self {
        Live {
            rooms: Vec::new(),
            connected: false,
        }
    }
}

/// A collection's room as the server names it: the url's path, without origin, query or
/// trailing slashes.
///
/// Byte searches, as in [`crate::url`]: core's substring and char-pattern searchers cost the
/// wasm about 2 KB, and every delimiter here is ASCII, so each cut is a char boundary.
pub fn room_of(url: &str) -> String {
    let bytes = url.as_bytes();
    let from = |at: usize, hit: &dyn Fn(u8) -> bool| {
        let rest = bytes.get(at..).unwrap_or_default();
        rest.iter()
            .position(|&b| hit(b))
            .map_or(bytes.len(), |i| at + i)
    };
    let start = match bytes.windows(3).position(|w| w == b"://") {
        Some(i) => from(i + 3, &|b| b == b'/'),
        None => 0,
    };
    let end = from(start, &|b| b == b'?' || b == b'#');
    let path = url.get(start..end).unwrap_or_default();
    let trimmed = path.bytes().rposition(|b| b != b'/').map_or(0, |i| i + 1);
    match path.get(..trimmed) {
        Some(room) if !room.is_empty() => room.to_owned(),
        _ => "/".to_owned(),
    }
}

impl<T: Clone> Live<T> {
    /// Takes one event in; returns what to do, in order.
    pub fn on(&mut self, event: LiveEvent<T>) -> Vec<LiveAction<T>> {
        let mut out = Vec::new();
        match event {
            LiveEvent::Live {
                collection,
                endpoint,
            } => {
                let room = room_of(&endpoint);
                if let Some(r) = self.room(&room) {
                    if !r.collections.contains(&collection) {
                        r.collections.push(collection);
                    }
                    return out;
                }
                self.rooms.push((
                    room.clone(),
                    Room {
                        endpoint: endpoint.clone(),
                        collections: vec![collection],
                        joined: false,
                        held: None,
                        reading: 0,
                        again: false,
                        versions: Versions::new(),
                        asking: 0,
                    },
                ));
                // Not connected yet: the `connect` joins it.
                out.push(if self.connected {
                    LiveAction::Subscribe { room, endpoint }
                } else {
                    LiveAction::Connect
                });
            }
            LiveEvent::Unlive { collection } => {
                for (_, room) in &mut self.rooms {
                    room.collections.retain(|c| *c != collection);
                }
                let connected = self.connected;
                self.rooms.retain(|(_, room)| {
                    let empty = room.collections.is_empty();
                    if empty && connected {
                        out.push(LiveAction::Unsubscribe {
                            endpoint: room.endpoint.clone(),
                        });
                    }
                    !empty
                });
            }
            LiveEvent::Connected => {
                self.connected = true;
                for (key, room) in &self.rooms {
                    out.push(LiveAction::Subscribe {
                        room: key.clone(),
                        endpoint: room.endpoint.clone(),
                    });
                }
            }
            LiveEvent::Disconnected => self.connected = false,
            LiveEvent::Subscribed { room, ok } => {
                let Some(r) = self.room(&room) else {
                    return out;
                };
                if !ok {
                    for &collection in &r.collections {
                        out.push(LiveAction::Refused { collection });
                    }
                    return out;
                }
                let missed = r.joined;
                r.joined = true;
                if missed {
                    Self::catch_up(&room, r, &mut out);
                }
            }
            LiveEvent::ReadDone { room } => {
                let Some(r) = self.room(&room) else {
                    return out;
                };
                r.reading = r.reading.saturating_sub(1);
                if r.reading > 0 {
                    return out;
                }
                for (change, item) in r.held.take().unwrap_or_default() {
                    for &collection in &r.collections {
                        out.push(LiveAction::Apply {
                            collection,
                            change,
                            item: item.clone(),
                        });
                    }
                }
                if std::mem::take(&mut r.again) {
                    Self::catch_up(&room, r, &mut out);
                }
            }
            LiveEvent::Broadcast {
                room,
                change,
                item,
                id,
                version,
            } => self.broadcast(room, (change, item), id.zip(version), &mut out),
            LiveEvent::Resync { room } => {
                if let Some(r) = self.room(&room) {
                    Self::catch_up(&room, r, &mut out);
                }
            }
        }
        out
    }

    /// The page sent a request to `endpoint` (a collection's, or a model's in it): until it
    /// is [`settled`](Live::settled), a gap in its room's broadcasts may be its own write's
    /// version, whose reply is still on its way, so the room waits for it before reading.
    pub fn sent(&mut self, endpoint: &str) {
        if let Some(i) = self.request_room(endpoint) {
            self.rooms[i].1.asking += 1;
        }
    }

    /// The page's request to `endpoint` was answered: with the model `id` at `version`
    /// (`reply`), or with no version, or not at all (failed). Returns whether to apply the
    /// reply (`false` only when the room holds a version of that model at least as new; a
    /// newer one is held from now on), and the catch-up to start when the room's last
    /// request was answered and a gap it waited for is still missing.
    pub fn settled(
        &mut self,
        endpoint: &str,
        reply: Option<(&str, i64)>,
    ) -> (bool, Vec<LiveAction<T>>) {
        let mut out = Vec::new();
        let Some(i) = self.request_room(endpoint) else {
            return (true, out);
        };
        let (key, r) = &mut self.rooms[i];
        r.asking = r.asking.saturating_sub(1);
        let apply = reply.is_none_or(|(id, version)| r.versions.reply(id, version));
        if r.asking == 0 && r.versions.missed() {
            Self::catch_up(key, r, &mut out);
        }
        (apply, out)
    }

    /// The room of a request's endpoint: the endpoint's own (a collection's), else its
    /// parent's (a model's).
    fn request_room(&self, endpoint: &str) -> Option<usize> {
        let path = room_of(endpoint);
        let cut = path.bytes().rposition(|b| b == b'/').unwrap_or(0);
        let parent = path.get(..cut).unwrap_or_default();
        let find = |key: &str| self.rooms.iter().position(|(k, _)| k == key);
        find(&path).or_else(|| find(parent))
    }

    /// A broadcast: ignored when stale, held during a catch-up, else applied to every
    /// collection of the room; a gap starts a catch-up after it.
    fn broadcast(
        &mut self,
        room: String,
        (change, item): (Change, T),
        versioned: Option<(String, i64)>,
        out: &mut Vec<LiveAction<T>>,
    ) {
        let Some(r) = self.room(&room) else {
            return;
        };
        let heard = versioned
            .as_ref()
            .map_or(Heard::Next, |(id, v)| r.versions.broadcast(id, *v));
        if heard == Heard::Stale {
            return;
        }
        if let Some(held) = &mut r.held {
            held.push((change, item));
        } else {
            for &collection in &r.collections {
                out.push(LiveAction::Apply {
                    collection,
                    change,
                    item: item.clone(),
                });
            }
        }
        if let (Heard::Gap { from, to }, Some((id, _))) = (heard, &versioned) {
            // While the page's own requests are out, the gap may be theirs: wait for them.
            if r.asking == 0 || !r.versions.doubt(id, from, to) {
                Self::catch_up(&room, r, out);
            }
        }
    }

    fn room(&mut self, key: &str) -> Option<&mut Room<T>> {
        self.rooms
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r)
    }

    /// Reads every collection of the room again, holding its broadcasts until all answered;
    /// one catch-up at a time (a reconnection during one reads again after it).
    fn catch_up(key: &str, room: &mut Room<T>, out: &mut Vec<LiveAction<T>>) {
        room.versions.forget_doubts();
        if room.held.is_some() {
            room.again = true;
            return;
        }
        room.held = Some(Vec::new());
        room.reading = room.collections.len();
        for &collection in &room.collections {
            out.push(LiveAction::Read {
                room: key.to_owned(),
                collection,
            });
        }
    }
}

/// The tests of the decisions: rooms, catch-ups, refusals, and versions (stale and equal
/// ignored, gaps and `resync` caught up).
#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
