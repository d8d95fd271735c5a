//! Requests: every method in both reply modes, concurrency, errors, timeouts, Backbone's
//! contract details (missing url, the 'request' event, the returned promise) and re-entrancy.

use crate::sync::sync;
use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use super::support::*;

async fn every_method(replies: &str) {
    let _socket = open(replies, &[]).await;
    let todos = unique("/api/todos");

    let rec = recorder(&attrs(r#"{"title":"a","done":false}"#));
    let created = call("create", &todos, &get(&rec, "options"))
        .await
        .expect("create");
    let id = get(&created, "id").as_f64().expect("an id");
    assert_eq!(get(&created, "title").as_string().as_deref(), Some("a"));
    let recorded = calls(&rec);
    assert_eq!(recorded.length(), 1);
    assert_eq!(
        get(&recorded, "0.kind").as_string().as_deref(),
        Some("success")
    );
    assert_eq!(
        text(&get(&recorded, "0.args.0")),
        text(&created),
        "success gets the raw response"
    );
    assert_eq!(
        get(&recorded, "0.args.1").as_string().as_deref(),
        Some("success")
    );

    let one = format!("{todos}/{id}");
    let read = call("read", &one, &JsValue::UNDEFINED)
        .await
        .expect("read model");
    assert_eq!(text(&read), text(&created));

    let body = format!(r#"{{"id":{id},"title":"b","done":true}}"#);
    let updated = call("update", &one, &attrs(&body)).await.expect("update");
    assert_eq!(text(&updated), body);

    let patched = call("patch", &one, &attrs(r#"{"done":false}"#))
        .await
        .expect("patch");
    assert_eq!(
        get(&patched, "title").as_string().as_deref(),
        Some("b"),
        "patch merges"
    );
    assert_eq!(get(&patched, "done").as_bool(), Some(false));

    let filter = obj(&[("data", json(r#"{"title":"b"}"#))]);
    let list = call("read", &todos, &filter)
        .await
        .expect("read collection");
    assert_eq!(Array::from(&list).length(), 1);
    let filter = obj(&[("data", json(r#"{"title":"nope"}"#))]);
    let list = call("read", &todos, &filter).await.expect("read filtered");
    assert_eq!(Array::from(&list).length(), 0);

    let deleted = call("delete", &one, &obj(&[])).await.expect("delete");
    assert_eq!(text(&deleted), "{}");
    let missing = call("read", &one, &obj(&[]))
        .await
        .expect_err("read deleted");
    assert_eq!(get(&missing, "status").as_f64(), Some(404.0));
}

#[wasm_bindgen_test]
async fn every_method_in_ack_mode() {
    every_method("ack").await;
}

#[wasm_bindgen_test]
async fn every_method_in_event_mode() {
    every_method("event").await;
}

async fn hundred_concurrent_creates(replies: &str) {
    let _socket = open(replies, &[]).await;
    let todos = unique("/api/many");
    let model = obj(&[("url", todos.as_str().into())]);
    let xhrs = Array::new();
    for i in 0..100 {
        let options = attrs(&format!(r#"{{"n":{i}}}"#));
        xhrs.push(&sync("create", model.clone(), options).expect("sync"));
    }
    let all = JsFuture::from(Promise::all(&xhrs))
        .await
        .expect("all created");
    let all = Array::from(&all);
    let mut ids: Vec<u64> = Vec::new();
    for i in 0..100u32 {
        let result = all.get(i);
        assert_eq!(
            get(&result, "n").as_f64(),
            Some(f64::from(i)),
            "each request gets its own reply"
        );
        ids.push(get(&result, "id").as_f64().expect("id") as u64);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "100 distinct ids");
    let list = call("read", &todos, &obj(&[])).await.expect("read back");
    assert_eq!(Array::from(&list).length(), 100);
}

#[wasm_bindgen_test]
async fn hundred_concurrent_creates_in_ack_mode() {
    hundred_concurrent_creates("ack").await;
}

#[wasm_bindgen_test]
async fn hundred_concurrent_creates_in_event_mode() {
    hundred_concurrent_creates("event").await;
}

async fn error_replies(replies: &str) {
    let _socket = open(replies, &[]).await;
    let url = unique("/error/404/api/things");
    let rec = recorder(&JsValue::UNDEFINED);
    let options = get(&rec, "options");
    let xhr = sync(
        "read",
        obj(&[("url", url.as_str().into())]),
        options.clone(),
    )
    .expect("sync");
    let err = settle(xhr.clone())
        .await
        .expect_err("an error reply rejects");
    assert!(err == xhr, "rejects with the xhr-like object it returned");
    assert_eq!(get(&err, "status").as_f64(), Some(404.0));
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("test error 404")
    );
    assert_eq!(get(&err, "responseJSON.status").as_f64(), Some(404.0));
    assert!(get(&err, "responseText")
        .as_string()
        .unwrap_or_default()
        .contains("404"));
    assert_eq!(
        get(&options, "textStatus").as_string().as_deref(),
        Some("error")
    );
    assert_eq!(
        get(&options, "errorThrown").as_string().as_deref(),
        Some("test error 404")
    );
    let recorded = calls(&rec);
    assert_eq!(recorded.length(), 1);
    assert_eq!(
        get(&recorded, "0.kind").as_string().as_deref(),
        Some("error")
    );
    assert!(get(&recorded, "0.args.0") == xhr);
    assert_eq!(
        get(&recorded, "0.args.1").as_string().as_deref(),
        Some("error")
    );
    // The connection is fine afterwards.
    call("read", &unique("/api/after"), &obj(&[]))
        .await
        .expect("next request");
}

#[wasm_bindgen_test]
async fn error_replies_in_ack_mode() {
    error_replies("ack").await;
}

#[wasm_bindgen_test]
async fn error_replies_in_event_mode() {
    error_replies("event").await;
}

async fn timeout(replies: &str) {
    let _socket = open(replies, &[]).await;
    let url = unique("/timeout/api/slow");
    let options = obj(&[("timeout", 200.into())]);
    let err = call("read", &url, &options).await.expect_err("times out");
    assert_eq!(get(&err, "status").as_f64(), Some(0.0));
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("timeout")
    );
    assert_eq!(
        get(&options, "textStatus").as_string().as_deref(),
        Some("timeout")
    );
    // The default timeout comes from connect's options.
    let _socket = open(replies, &[("timeout", 150.into())]).await;
    let err = call("read", &unique("/timeout/api/slow"), &obj(&[]))
        .await
        .expect_err("times out");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("timeout")
    );
    if let Err(err) = call("read", &unique("/api/fine"), &obj(&[])).await {
        panic!("still connected: {:?}", get(&err, "statusText"));
    }
}

#[wasm_bindgen_test]
async fn timeout_in_ack_mode() {
    timeout("ack").await;
}

#[wasm_bindgen_test]
async fn timeout_in_event_mode() {
    timeout("event").await;
}

#[wasm_bindgen_test]
async fn missing_url_throws_backbones_error_synchronously() {
    let _socket = open("ack", &[]).await;
    let err = sync("read", obj(&[]), JsValue::UNDEFINED).expect_err("throws");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(
        get(&err, "message").as_string().as_deref(),
        Some("A \"url\" property or function must be specified")
    );
    let err = sync("read", JsValue::UNDEFINED, JsValue::UNDEFINED).expect_err("no model");
    assert!(err.is_instance_of::<js_sys::Error>());
    // `url` may be a function of the model (`_.result`), and options.url wins over it.
    let endpoint = unique("/api/fn");
    let url_fn = Function::new_no_args("return this.base;");
    let model = obj(&[("base", endpoint.as_str().into()), ("url", url_fn.into())]);
    let created = settle(sync("create", model.clone(), attrs(r#"{"a":1}"#)).unwrap()).await;
    assert_eq!(get(&created.expect("created"), "a").as_f64(), Some(1.0));
    let options = obj(&[("url", endpoint.as_str().into())]);
    let list = settle(sync("read", obj(&[]), options).unwrap())
        .await
        .expect("options.url");
    assert_eq!(Array::from(&list).length(), 1);
}

#[wasm_bindgen_test]
async fn request_event_and_the_returned_promise() {
    let _socket = open("ack", &[]).await;
    let model = recording_model(&unique("/api/req"));
    let options = attrs(r#"{"x":1}"#);
    let xhr = sync("create", model.clone(), options.clone()).expect("sync");
    assert!(xhr.is_instance_of::<Promise>(), "a real Promise");
    let triggered = get(&model, "triggered");
    assert_eq!(Array::from(&triggered).length(), 1);
    assert_eq!(
        get(&triggered, "0.0").as_string().as_deref(),
        Some("request")
    );
    assert!(get(&triggered, "0.1") == model);
    assert!(get(&triggered, "0.2") == xhr);
    assert!(get(&triggered, "0.3") == options);
    assert!(get(&options, "xhr") == xhr);

    let done = std::rc::Rc::new(std::cell::Cell::new(0));
    let (d1, d2) = (done.clone(), done.clone());
    let chained = invoke(
        &xhr,
        "done",
        &Array::of1(&func(move |_| d1.set(d1.get() + 1))),
    );
    assert!(chained == xhr, "done returns the same object");
    let chained = invoke(
        &xhr,
        "always",
        &Array::of1(&func(move |_| d2.set(d2.get() + 10))),
    );
    assert!(chained == xhr, "always returns the same object");
    let result = settle(xhr.clone())
        .await
        .expect("resolves with the response");
    assert_eq!(get(&result, "x").as_f64(), Some(1.0));
    sleep(0).await;
    assert_eq!(done.get(), 11, "done and always ran");
    assert_eq!(get(&xhr, "status").as_f64(), Some(200.0));
    assert_eq!(get(&xhr, "readyState").as_f64(), Some(4.0));
    assert_eq!(text(&get(&xhr, "responseJSON")), text(&result));

    // fail + abort.
    let failed = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = failed.clone();
    let rec = recorder(&JsValue::UNDEFINED);
    let xhr = sync(
        "read",
        obj(&[("url", unique("/timeout/api/x").into())]),
        get(&rec, "options"),
    )
    .unwrap();
    invoke(&xhr, "fail", &Array::of1(&func(move |_| f.set(true))));
    invoke(&xhr, "abort", &Array::new());
    let err = settle(xhr).await.expect_err("aborted");
    assert_eq!(
        get(&err, "statusText").as_string().as_deref(),
        Some("abort")
    );
    assert_eq!(
        get(&rec, "options.textStatus").as_string().as_deref(),
        Some("abort")
    );
    sleep(0).await;
    assert!(failed.get(), "fail ran");
}

#[wasm_bindgen_test]
async fn callbacks_may_call_sync_again() {
    let _socket = open("ack", &[]).await;
    let endpoint = unique("/api/reentrant");
    // success -> sync; error -> sync; the 'request' trigger -> sync.
    let nested = js_sys::Function::new_with_args(
        "sync, url",
        "return new Promise((resolve, reject) => {
           const model = { url, trigger(name) { if (name === 'request' && !this.once) { this.once = 1; sync('create', { url }, { attrs: { from: 'trigger' } }); } } };
           sync('create', model, { attrs: { from: 'outer' }, success() {
             sync('read', { url: url + '/missing_0' }, { error(xhr) {
               sync('read', { url }, { success: resolve, error: reject });
             } });
           } });
         });",
    );
    let promise = nested
        .call2(&JsValue::UNDEFINED, &sync_fn(), &endpoint.as_str().into())
        .unwrap();
    let list = JsFuture::from(promise.unchecked_into::<Promise>())
        .await
        .expect("nested chain");
    assert_eq!(
        Array::from(&list).length(),
        2,
        "outer + trigger creates: {}",
        text(&list)
    );
}

#[wasm_bindgen_test]
async fn unknown_methods_are_refused() {
    let _socket = open("ack", &[]).await;
    assert!(sync(
        "fetch",
        obj(&[("url", "/api/x".into())]),
        JsValue::UNDEFINED
    )
    .is_err());
}

#[wasm_bindgen_test]
async fn ctx_names_the_reply_in_event_mode() {
    let _socket = open("event", &[("timeout", 2000.into())]).await;
    let todos = unique("/api/ctx");
    let options = obj(&[("attrs", json(r#"{"c":1}"#)), ("ctx", "room-1".into())]);
    let created = call("create", &todos, &options)
        .await
        .expect("reply to create:<endPoint>:room-1");
    assert_eq!(get(&created, "c").as_f64(), Some(1.0));
    // model.ctx is used when options.ctx is not given.
    let model = obj(&[("url", todos.as_str().into()), ("ctx", "room-2".into())]);
    let list = settle(sync("read", model, JsValue::UNDEFINED).unwrap())
        .await
        .expect("read with model.ctx");
    assert_eq!(Array::from(&list).length(), 1);
}

#[wasm_bindgen_test]
async fn err_values_javascript_reads_as_falsy_are_successes() {
    use crate::session::Reply;
    use crate::xhr::{Call, Function2};
    use js_sys::{Function, JsString};
    // `if (err)` as the JS engine reads the parsed ACK: 0.0, -0.0, 0e0 and 1e-400 are 0.
    let falsy = ["0.0", "-0.0", "0e0", "1e-400", "false", "\"\"", "null"];
    let no_abort: Function2 = Function::new_no_args("").unchecked_into();
    for err in falsy {
        let rec = recorder(&JsValue::UNDEFINED);
        let call = Call::new(&get(&rec, "options"), 0, &no_abort);
        let xhr = call.xhr();
        let raw = format!(r#"[{err},{{"a":1}}]"#);
        call.settle(Ok(Reply::Ack(JsString::from(raw.as_str()))));
        let result = settle(xhr).await.unwrap_or_else(|_| panic!("{raw} failed"));
        assert_eq!(text(&result), r#"{"a":1}"#, "{raw}");
        assert_eq!(
            get(&calls(&rec), "0.kind").as_string().as_deref(),
            Some("success")
        );
    }
    for (err, status) in [
        ("1", 500.0),
        (r#"{"status":404}"#, 404.0),
        (r#""boom""#, 500.0),
        ("[]", 500.0),
    ] {
        let rec = recorder(&JsValue::UNDEFINED);
        let call = Call::new(&get(&rec, "options"), 0, &no_abort);
        let xhr = call.xhr();
        let raw = format!("[{err},1]");
        call.settle(Ok(Reply::Ack(JsString::from(raw.as_str()))));
        let failed = settle(xhr).await.expect_err(&raw);
        assert_eq!(get(&failed, "status").as_f64(), Some(status), "{raw}");
        assert_eq!(
            get(&calls(&rec), "0.kind").as_string().as_deref(),
            Some("error")
        );
    }
}

#[wasm_bindgen_test]
fn request_ids_made_in_js_are_the_ones_request_id_next_writes() {
    use crate::request_id::next;
    use crate::sync::{client_id, request_id};
    let prefix = client_id();
    let first = request_id().as_string().expect("a string");
    let digits = first
        .strip_prefix(&format!("{prefix}."))
        .expect("the prefix");
    let mut n = u64::from_str_radix(digits, 36).expect("base 36");
    assert_eq!(first, next(&prefix, n));
    // Past a few carries of the base-36 counter (other tests made some ids before).
    for _ in 0..1300 {
        n += 1;
        assert_eq!(request_id().as_string(), Some(next(&prefix, n)));
    }
}
