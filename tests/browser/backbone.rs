//! Real Backbone 1.6 (loaded from the server) with `Backbone.sync` replaced by ours:
//! `model.save` (with `wait`, with `patch`), `fetch`, `destroy`, `collection.fetch`,
//! `collection.create`, and the model's `error` event — in both reply modes.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use super::support::*;

/// The scenario, in plain Backbone code; returns what it observed.
const SCENARIO: &str = r#"
  const seen = [];
  Backbone.sync = function (method, model, options) {
    seen.push([method, options.attrs === undefined ? null : options.attrs]);
    return sync(method, model, options);
  };
  const Todo = Backbone.Model.extend({ urlRoot: endpoint, defaults: { done: false } });
  const Todos = Backbone.Collection.extend({ url: endpoint, model: Todo });
  const out = { seen };

  const todo = new Todo({ title: 'a' });
  const events = [];
  todo.on('request', (m, xhr) => events.push(['request', xhr instanceof Promise]));
  todo.on('sync', () => events.push(['sync', todo.id]));
  const xhr = todo.save(null, { wait: true });
  out.saveReturnsPromise = xhr instanceof Promise && typeof xhr.done === 'function';
  out.idBeforeReply = todo.id === undefined;
  await xhr;
  out.id = todo.id;
  out.events = events.slice();

  await todo.save({ done: true }, { patch: true });
  const copy = new Todo({ id: todo.id });
  await copy.fetch();
  out.fetched = copy.toJSON();

  // save with wait: attributes change only when the server agrees.
  const pending = todo.save({ title: 'b' }, { wait: true });
  out.titleWhileWaiting = todo.get('title');
  await pending;
  out.titleAfter = todo.get('title');

  const todos = new Todos();
  await todos.fetch();
  out.fetchedLength = todos.length;
  const created = await new Promise((resolve, reject) =>
    todos.create({ title: 'c' }, { wait: true, success: resolve, error: (m, xhr) => reject(xhr) }));
  out.createdId = created.id;
  out.lengthAfterCreate = todos.length;

  await todos.get(todo.id).destroy({ wait: true });
  out.lengthAfterDestroy = todos.length;
  const again = new Todos();
  await again.fetch();
  out.serverLengthAfterDestroy = again.length;

  const missing = new Todo({ id: 987654321 });
  let error = null;
  missing.on('error', (m, xhr, options) => { error = { status: xhr.status, textStatus: options.textStatus }; });
  try { await missing.fetch(); out.missingResolved = true; } catch (xhr) { out.rejectedStatus = xhr.status; }
  out.error = error;
  return out;
"#;

async fn backbone_scenario(replies: &str) {
    let backbone = load_backbone().await;
    assert!(backbone.is_object(), "Backbone loaded");
    let _socket = open(replies, &[]).await;
    let endpoint = unique("/api/bb");
    let body = String::from("return (async () => {") + SCENARIO + "})();";
    let scenario = Function::new_with_args("Backbone, sync, endpoint", &body);
    let args = js_sys::Array::of3(&backbone, &sync_fn(), &endpoint.as_str().into());
    let promise = scenario
        .apply(&JsValue::UNDEFINED, &args)
        .expect("scenario starts");
    let out = JsFuture::from(promise.unchecked_into::<Promise>())
        .await
        .expect("scenario ran");
    let show = text(&out);

    assert_eq!(
        get(&out, "saveReturnsPromise").as_bool(),
        Some(true),
        "{show}"
    );
    assert_eq!(get(&out, "idBeforeReply").as_bool(), Some(true), "{show}");
    let id = get(&out, "id").as_f64().expect("save assigned an id");
    assert_eq!(
        text(&get(&out, "events")),
        format!(r#"[["request",true],["sync",{id}]]"#)
    );
    // patch sent only the changed attribute; the server merged it.
    assert_eq!(
        text(&get(&out, "seen.1")),
        r#"["patch",{"done":true}]"#,
        "{show}"
    );
    assert_eq!(get(&out, "fetched.id").as_f64(), Some(id), "{show}");
    assert_eq!(
        get(&out, "fetched.title").as_string().as_deref(),
        Some("a"),
        "{show}"
    );
    assert_eq!(get(&out, "fetched.done").as_bool(), Some(true), "{show}");
    assert_eq!(
        get(&out, "titleWhileWaiting").as_string().as_deref(),
        Some("a"),
        "{show}"
    );
    assert_eq!(
        get(&out, "titleAfter").as_string().as_deref(),
        Some("b"),
        "{show}"
    );
    assert_eq!(get(&out, "fetchedLength").as_f64(), Some(1.0), "{show}");
    assert!(
        get(&out, "createdId").as_f64().is_some_and(|c| c != id),
        "{show}"
    );
    assert_eq!(get(&out, "lengthAfterCreate").as_f64(), Some(2.0), "{show}");
    assert_eq!(
        get(&out, "lengthAfterDestroy").as_f64(),
        Some(1.0),
        "{show}"
    );
    assert_eq!(
        get(&out, "serverLengthAfterDestroy").as_f64(),
        Some(1.0),
        "{show}"
    );
    assert_eq!(get(&out, "rejectedStatus").as_f64(), Some(404.0), "{show}");
    assert_eq!(
        text(&get(&out, "error")),
        r#"{"status":404,"textStatus":"error"}"#,
        "{show}"
    );
}

#[wasm_bindgen_test]
async fn real_backbone_in_ack_mode() {
    backbone_scenario("ack").await;
}

#[wasm_bindgen_test]
async fn real_backbone_in_event_mode() {
    backbone_scenario("event").await;
}

/// 100 `collection.create` calls at once, through real Backbone.
const HUNDRED: &str = r#"
  Backbone.sync = sync;
  const Todos = Backbone.Collection.extend({ url: endpoint });
  const todos = new Todos();
  const created = await Promise.all(Array.from({ length: 100 }, (_, n) =>
    new Promise((resolve, reject) =>
      todos.create({ n }, { success: resolve, error: (m, xhr) => reject(xhr) }))));
  const check = new Todos();
  await check.fetch();
  return {
    ids: created.map((m) => m.id),
    ns: created.map((m) => m.get('n')),
    length: todos.length,
    serverLength: check.length,
  };
"#;

async fn hundred_collection_creates(replies: &str) {
    let backbone = load_backbone().await;
    let _socket = open(replies, &[]).await;
    let endpoint = unique("/api/bb100");
    let body = String::from("return (async () => {") + HUNDRED + "})();";
    let scenario = Function::new_with_args("Backbone, sync, endpoint", &body);
    let args = js_sys::Array::of3(&backbone, &sync_fn(), &endpoint.as_str().into());
    let promise = scenario.apply(&JsValue::UNDEFINED, &args).expect("starts");
    let out = JsFuture::from(promise.unchecked_into::<Promise>())
        .await
        .expect("all 100 created");
    let ids = js_sys::Array::from(&get(&out, "ids"));
    let mut distinct: Vec<u64> = ids
        .iter()
        .filter_map(|v| v.as_f64())
        .map(|f| f as u64)
        .collect();
    assert_eq!(distinct.len(), 100, "{}", text(&out));
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 100, "each its own id: {}", text(&out));
    let ns = js_sys::Array::from(&get(&out, "ns"));
    for (i, n) in ns.iter().enumerate() {
        assert_eq!(n.as_f64(), Some(i as f64), "each model got its own reply");
    }
    assert_eq!(get(&out, "length").as_f64(), Some(100.0));
    assert_eq!(get(&out, "serverLength").as_f64(), Some(100.0));
}

#[wasm_bindgen_test]
async fn hundred_backbone_collection_creates_in_ack_mode() {
    hundred_collection_creates("ack").await;
}

#[wasm_bindgen_test]
async fn hundred_backbone_collection_creates_in_event_mode() {
    hundred_collection_creates("event").await;
}
