//! Live collections at the edge: `live(collection)` / `unlive(collection)`, and the Backbone
//! calls that perform the decisions of [`crate::live`].
//!
//! Broadcasts are applied with Backbone's own methods, so `add`, `change` and `remove` fire as
//! usual, with `{live: true}` in every options object:
//!
//! ```text
//! created            collection.add(item, {merge: true})
//! updated, patched   collection.get(item).set(item)   (add when missing)
//! deleted            model.trigger('destroy', model, collection, options)
//! ```
//!
//! A catch-up read sets the collection to the answer as `fetch()` does, except for the models
//! the page itself wrote (or added) while the read was out: the answer may predate those
//! writes, so they keep the state their own replies gave them. A create of the page's still
//! unanswered when the read already held it is not kept twice (see [`drop_twin`]).
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
use crate::live_twins::twins;
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
                    catch_up(room, c);
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

/// `{live: true}`.
fn live_options() -> JsValue {
    let options = Object::new();
    js::set(&options, "live", &JsValue::TRUE);
    options.into()
}

/// `target[method](...args)`, an exception reported as the page's error.
fn invoke(target: &JsValue, method: &str, args: &[&JsValue]) -> JsValue {
    let f = js::get(target, method);
    let Some(f) = f.dyn_ref::<Function>() else {
        return JsValue::UNDEFINED;
    };
    let args: Array = args.iter().map(|a| (*a).clone()).collect();
    f.apply(target, &args).unwrap_or(JsValue::UNDEFINED)
}

/// Applies one broadcast to a collection.
fn apply(collection: &JsValue, change: Change, item: &JsValue) {
    let options = live_options();
    let model = invoke(collection, "get", &[item]);
    match change {
        Change::Created => {
            let merge = live_options();
            js::set(&merge, "merge", &JsValue::TRUE);
            invoke(collection, "add", &[item, &merge]);
        }
        Change::Deleted => {
            if model.is_object() {
                let owner = js::get(&model, "collection");
                invoke(
                    &model,
                    "trigger",
                    &[&"destroy".into(), &model, &owner, &options],
                );
            }
        }
        Change::Updated if model.is_object() => {
            invoke(&model, "set", &[item, &options]);
        }
        Change::Updated => {
            invoke(collection, "add", &[item, &options]);
        }
    }
}

/// Reads `collection` from the server and sets it to the answer, except for the models the
/// page wrote (or added) while the read was out; then feeds [`LiveEvent::ReadDone`].
fn catch_up(room: String, collection: JsValue) {
    let touched: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let own = {
        let touched = touched.clone();
        let collection = collection.clone();
        Closure::<dyn Fn(JsValue, JsValue)>::new(move |name: JsValue, model: JsValue| {
            let name = name.as_string().unwrap_or_default();
            if model != collection && matches!(name.as_str(), "sync" | "destroy" | "add") {
                touched.borrow_mut().push(model);
            }
        })
        .into_js_value()
    };
    invoke(&collection, "on", &[&"all".into(), &own]);
    let finished = Rc::new(Cell::new(false));
    let finish = {
        let (collection, own, finished) = (collection.clone(), own.clone(), finished.clone());
        move || {
            if finished.replace(true) {
                return false;
            }
            invoke(&collection, "off", &[&"all".into(), &own]);
            true
        }
    };
    let options = live_options();
    let success = {
        let (collection, options, finish, room) = (
            collection.clone(),
            options.clone(),
            finish.clone(),
            room.clone(),
        );
        Closure::<dyn Fn(JsValue)>::new(move |resp: JsValue| {
            if !finish() {
                return;
            }
            let touched = touched.borrow().clone();
            let parsed = invoke(&collection, "parse", &[&resp, &options]);
            let models = Array::new();
            if let Some(parsed) = parsed.dyn_ref::<Array>() {
                for attrs in parsed.iter() {
                    let existing = invoke(&collection, "get", &[&attrs]);
                    if !existing.is_object() || !touched.contains(&existing) {
                        models.push(&attrs);
                    }
                }
            }
            for model in &touched {
                if invoke(&collection, "get", &[model]) == *model {
                    models.push(model);
                }
            }
            invoke(&collection, "set", &[&models, &options]);
            let sync: JsValue = "sync".into();
            invoke(
                &collection,
                "trigger",
                &[&sync, &collection, &resp, &options],
            );
            feed(LiveEvent::ReadDone { room: room.clone() });
        })
        .into_js_value()
    };
    let error = {
        let (finish, room) = (finish.clone(), room.clone());
        Closure::once_into_js(move || {
            if finish() {
                feed(LiveEvent::ReadDone { room });
            }
        })
    };
    js::set(&options, "success", &success);
    js::set(&options, "error", &error);
    let sync = js::get(&collection, "sync");
    let read = sync.dyn_ref::<Function>().map(|f| {
        f.apply(
            &collection,
            &Array::of3(&"read".into(), &collection, &options),
        )
    });
    if !matches!(read, Some(Ok(_))) && finish() {
        feed(LiveEvent::ReadDone { room });
    }
}

/// A create of this page still unanswered when a catch-up read (or a broadcast) already held
/// it puts that model in twice: the copy, then the page's own model once its reply gives it
/// the same id. The page's model is the one its code holds, so the copy goes (the plan is
/// [`twins`]'s, tested natively for both orders). The
/// collection's index already maps that id to the page's model (removing the twin by id would
/// remove the wrong one): the model steps out silently, the twin is removed, and the model is
/// put back in its place.
fn drop_twin(collection: &JsValue, model: &JsValue) {
    let id_attribute = js::get(model, "idAttribute");
    let id = js::get(model, "id");
    if !invoke(model, "hasChanged", &[&id_attribute]).is_truthy() || js::is_nullish(&id) {
        return;
    }
    let Ok(models) = js::get(collection, "models").dyn_into::<Array>() else {
        return;
    };
    let Ok(own) = usize::try_from(models.index_of(model, 0)) else {
        return;
    };
    let ids: Vec<Option<JsValue>> = models
        .iter()
        .map(|m| Some(js::get(&m, "id")).filter(|id| !js::is_nullish(id)))
        .collect();
    let Some((copies, at)) = twins(&ids, own) else {
        return;
    };
    let copies: Array = copies.iter().map(|&i| models.get(i as u32)).collect();
    let silent = Object::new();
    js::set(&silent, "silent", &JsValue::TRUE);
    invoke(collection, "remove", &[model, &silent]);
    invoke(collection, "remove", &[&copies, &live_options()]);
    js::set(&silent, "at", &(at as u32).into());
    invoke(collection, "add", &[model, &silent]);
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
