//! Live collections at the edge: `live(collection)` / `unlive(collection)`, the socket's
//! broadcasts and the page's requests fed to [`crate::live`], and its decisions performed
//! (the Backbone calls that change a collection are in `live_apply.rs`).
//!
//! Versions (see [`crate::live_versions`]): a broadcast's `version` and the version beside a
//! reply to the page's own request are handed to the core with the model's id (the
//! collection's `modelId`, the model's `idAttribute`). A stale broadcast is not applied; a
//! stale reply still succeeds, but `options.success` gets the model's current attributes,
//! with `options.parse` off, so the model keeps its newer state (`xhr.responseJSON` and the
//! promise keep the server's reply). A gap or a `resync` event starts a catch-up read.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, JSON};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::live::{room_of, Change, CollectionId, Live, LiveAction, LiveEvent};
use crate::live_apply::{apply, catch_up, drop_twin, invoke, live_options};
use crate::socket;
use crate::xhr::{self, Watched};

/// One live collection and its `change` listener (which removes twins).
struct Entry {
    id: CollectionId,
    /// Its room (see [`room_of`]).
    room: String,
    collection: JsValue,
    on_change: JsValue,
}

thread_local! {
    static LIVE: RefCell<Live<JsValue>> = const { RefCell::new(Live::new()) };
    static ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static NEXT: Cell<CollectionId> = const { Cell::new(0) };
}

/// `{signature: {endPoint}}`, the argument of `subscribe` / `unsubscribe`.
#[derive(Serialize)]
struct RoomRequest<'a> {
    signature: RoomSignature<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoomSignature<'a> {
    end_point: &'a str,
}

/// Makes `collection` apply the changes other clients make to its endpoint, from now on and
/// after every reconnection. Throws, as `Backbone.sync` would, when it has no url. Returns
/// the collection.
#[wasm_bindgen]
pub fn live(collection: JsValue) -> Result<JsValue, JsValue> {
    let endpoint = url_of(&collection)?;
    socket::hook(hear);
    xhr::watch_requests(watch);
    let known = ENTRIES.with(|e| {
        e.borrow()
            .iter()
            .find(|x| x.collection == collection)
            .map(|x| x.id)
    });
    let id = match known {
        Some(id) => id,
        None => {
            let id = NEXT.with(|n| {
                n.set(n.get() + 1);
                n.get()
            });
            let target = collection.clone();
            let on_change = Closure::<dyn Fn(JsValue)>::new(move |model: JsValue| {
                drop_twin(&target, &model);
            })
            .into_js_value();
            invoke(&collection, "on", &[&"change".into(), &on_change]);
            ENTRIES.with(|e| {
                e.borrow_mut().push(Entry {
                    id,
                    room: room_of(&endpoint),
                    collection: collection.clone(),
                    on_change,
                })
            });
            id
        }
    };
    feed(LiveEvent::Live {
        collection: id,
        endpoint,
    });
    Ok(collection)
}

/// Stops applying broadcasts to `collection`; the socket leaves the room once no live
/// collection uses that endpoint. Returns the collection.
#[wasm_bindgen]
pub fn unlive(collection: JsValue) -> JsValue {
    let entry = ENTRIES.with(|e| {
        let mut entries = e.borrow_mut();
        let i = entries.iter().position(|x| x.collection == collection)?;
        Some(entries.remove(i))
    });
    if let Some(entry) = entry {
        invoke(&collection, "off", &[&"change".into(), &entry.on_change]);
        feed(LiveEvent::Unlive {
            collection: entry.id,
        });
    }
    collection
}

/// The socket's events, for the live collections.
fn hear(name: &str, args: &Array) {
    let change = match name {
        "connect" => return feed(LiveEvent::Connected),
        "disconnect" => return feed(LiveEvent::Disconnected),
        "resync" => return resync(&args.get(0)),
        "created" => Change::Created,
        "updated" | "patched" => Change::Updated,
        "deleted" => Change::Deleted,
        _ => return,
    };
    let body = args.get(0);
    let item = js::get(&body, "item");
    let path = js::get(&body, "collection");
    let Some(path) = path.as_string().filter(|_| item.is_object()) else {
        return;
    };
    let room = room_of(&path);
    let version = js::whole_number(&js::get(&body, "version"));
    let id = version.and_then(|_| broadcast_id(&room, &item));
    feed(LiveEvent::Broadcast {
        room,
        change,
        item,
        id,
        version,
    });
}

/// The server's `resync` event `{endPoint, collection}`: the room catches up.
fn resync(body: &JsValue) {
    let path = js::get(body, "collection");
    let path = if path.is_string() {
        path
    } else {
        js::get(body, "endPoint")
    };
    if let Some(path) = path.as_string() {
        feed(LiveEvent::Resync {
            room: room_of(&path),
        });
    }
}

/// A broadcast item's id as text, as the room's first live collection reads ids
/// (`modelId(attrs)`, Backbone ≥ 1.4), else its `id`.
fn broadcast_id(room: &str, item: &JsValue) -> Option<String> {
    let collection = ENTRIES.with(|e| {
        e.borrow()
            .iter()
            .find(|x| x.room == room)
            .map(|x| x.collection.clone())
    });
    let id = match collection {
        Some(c) if js::get(&c, "modelId").is_function() => invoke(&c, "modelId", &[item]),
        _ => js::get(item, "id"),
    };
    (!js::is_nullish(&id)).then(|| js::text_of(&id))
}

/// The [`xhr::Watcher`] of the live collections: counts the page's requests per room and
/// hands the core each reply's version; a reply not newer than the version its room holds
/// leaves the model as it is (see the module docs).
fn watch(watched: &Watched) -> Option<JsValue> {
    let (model, endpoint, options, reply) = match *watched {
        Watched::Sent { endpoint } => {
            LIVE.with(|l| l.borrow_mut().sent(endpoint));
            return None;
        }
        Watched::Settled {
            model,
            endpoint,
            options,
            reply,
        } => (model, endpoint, options, reply),
    };
    let id = reply.and_then(|(result, _)| reply_id(model, result));
    let versioned = id.as_deref().zip(reply.map(|(_, v)| v));
    let (apply, actions) = LIVE.with(|l| l.borrow_mut().settled(endpoint, versioned));
    perform(actions, &JsValue::NULL);
    if apply {
        return None;
    }
    let current = Object::new();
    let attributes = js::get(model, "attributes");
    if attributes.is_object() {
        Object::<JsValue>::assign(&current, attributes.unchecked_ref());
    }
    js::set(options, "parse", &JsValue::FALSE);
    Some(current.into())
}

/// The id of a reply's model as text: the result's `idAttribute`, else the model's id.
fn reply_id(model: &JsValue, result: &JsValue) -> Option<String> {
    let key = js::get(model, "idAttribute").as_string();
    let mut id = js::get(result, key.as_deref().unwrap_or("id"));
    if js::is_nullish(&id) {
        id = js::get(model, "id");
    }
    (!js::is_nullish(&id)).then(|| js::text_of(&id))
}

/// Feeds one event to the state machine (no borrow held after) and performs its actions.
fn feed(event: LiveEvent<JsValue>) {
    let actions = LIVE.with(|l| l.borrow_mut().on(event));
    perform(actions, &JsValue::NULL);
}

/// Performs actions; `refusal` is the server's error for [`LiveAction::Refused`].
fn perform(actions: Vec<LiveAction<JsValue>>, refusal: &JsValue) {
    for action in actions {
        match action {
            LiveAction::Connect => {
                let _ = socket::ensure_connection();
            }
            LiveAction::Subscribe { room, endpoint } => {
                request("subscribe", &endpoint, Some(room));
            }
            LiveAction::Unsubscribe { endpoint } => request("unsubscribe", &endpoint, None),
            LiveAction::Read { room, collection } => {
                if let Some(c) = collection_of(collection) {
                    catch_up(
                        c,
                        Rc::new(move || feed(LiveEvent::ReadDone { room: room.clone() })),
                    );
                }
            }
            LiveAction::Apply {
                collection,
                change,
                item,
            } => {
                if let Some(c) = collection_of(collection) {
                    apply(&c, change, &item);
                }
            }
            LiveAction::Refused { collection } => {
                if let Some(c) = collection_of(collection) {
                    let args = [&"error".into(), &c, refusal, &live_options()];
                    invoke(&c, "trigger", &args);
                }
            }
        }
    }
}

fn collection_of(id: CollectionId) -> Option<JsValue> {
    ENTRIES.with(|e| {
        e.borrow()
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.collection.clone())
    })
}

/// Sends `subscribe` / `unsubscribe` for `endpoint`; with `room`, feeds the answer back.
fn request(event: &str, endpoint: &str, room: Option<String>) {
    let arg = RoomRequest {
        signature: RoomSignature {
            end_point: endpoint,
        },
    };
    let Ok(arg) = serde_wasm_bindgen::to_value(&arg) else {
        return;
    };
    let Ok(data) = JSON::stringify(&Array::of2(&event.into(), &arg)) else {
        return;
    };
    // The callbacks here are called once, but are `dyn Fn(JsValue)` like the crate's other
    // one-argument callbacks: `once_into_js` would add a closure type of its own to the wasm
    // and its glue (measured: 0.45 KB gzip for the three of them).
    let answer = room.map(|room| {
        Closure::<dyn Fn(JsValue)>::new(move |error: JsValue| {
            let refused = !js::is_nullish(&error) && error.is_truthy();
            let room = room.clone();
            let actions = LIVE.with(|l| {
                l.borrow_mut()
                    .on(LiveEvent::Subscribed { room, ok: !refused })
            });
            perform(actions, &error);
        })
        .into_js_value()
        .unchecked_into::<Function>()
    });
    if socket::reply_mode() == "event" {
        // The answer is the event `<event>:<endPoint>`: `{error}` when refused.
        if let Some(answer) = answer {
            let f = Closure::<dyn Fn(JsValue)>::new(move |reply: JsValue| {
                let error = if reply.is_object() {
                    js::get(&reply, "error")
                } else {
                    JsValue::NULL
                };
                let _ = answer.call1(&JsValue::UNDEFINED, &error);
            })
            .into_js_value();
            socket::listen_once(format!("{event}:{endpoint}"), f.unchecked_into());
        }
        let _ = socket::emit_data(data, None);
    } else {
        let _ = socket::emit_data(data, answer.map(|f| (f, None)));
    }
}

/// The endpoint a collection syncs with, as `Backbone.sync` resolves it.
fn url_of(collection: &JsValue) -> Result<String, JsValue> {
    let mut url = js::get(collection, "url");
    if let Some(f) = url.dyn_ref::<Function>() {
        url = f.call0(collection)?;
    }
    if url.is_truthy() {
        Ok(url
            .as_string()
            .unwrap_or_else(|| Array::of1(&url).join("").into()))
    } else {
        Err(js::error(
            "live(collection): A \"url\" property or function must be specified",
        ))
    }
}
