//! The Backbone calls that change a live collection (the edge of [`crate::live`], for
//! `src/live_backbone.rs`): a broadcast applied, a catch-up read, a twin dropped.
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

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js;
use crate::live::Change;
use crate::live_twins::twins;

/// `{live: true}`.
pub(crate) fn live_options() -> JsValue {
    let options = Object::new();
    js::set(&options, "live", &JsValue::TRUE);
    options.into()
}

/// `target[method](...args)`, an exception reported as the page's error.
pub(crate) fn invoke(target: &JsValue, method: &str, args: &[&JsValue]) -> JsValue {
    let f = js::get(target, method);
    let Some(f) = f.dyn_ref::<Function>() else {
        return JsValue::UNDEFINED;
    };
    let args: Array = args.iter().map(|a| (*a).clone()).collect();
    f.apply(target, &args).unwrap_or(JsValue::UNDEFINED)
}

/// Applies one broadcast to a collection.
pub(crate) fn apply(collection: &JsValue, change: Change, item: &JsValue) {
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
/// page wrote (or added) while the read was out; then calls `done` (once, either way).
pub(crate) fn catch_up(collection: JsValue, done: Rc<dyn Fn()>) {
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
        let (collection, options, finish, done) = (
            collection.clone(),
            options.clone(),
            finish.clone(),
            done.clone(),
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
            done();
        })
        .into_js_value()
    };
    let error = {
        let (finish, done) = (finish.clone(), done.clone());
        Closure::once_into_js(move || {
            if finish() {
                done();
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
        done();
    }
}

/// A create of this page still unanswered when a catch-up read (or a broadcast) already held
/// it puts that model in twice: the copy, then the page's own model once its reply gives it
/// the same id. The page's model is the one its code holds, so the copy goes (the plan is
/// [`twins`]'s, tested natively for both orders). The
/// collection's index already maps that id to the page's model (removing the twin by id would
/// remove the wrong one): the model steps out silently, the twin is removed, and the model is
/// put back in its place.
pub(crate) fn drop_twin(collection: &JsValue, model: &JsValue) {
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
