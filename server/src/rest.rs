//! The REST twin: `GET/POST/PUT/PATCH/DELETE` under the api prefix, on the same store with the
//! same JSON, so the original XHR `Backbone.sync` (`Backbone.ajaxSync`) works unchanged.
//!
//! Status codes: 200, 201 on create (with `Location`), 400, 401 (see [`crate::access`]), 403
//! (see [`crate::origin`]), 404, 405, 409, 412, 413, 415 (a POST, PUT or PATCH that is not
//! `Content-Type: application/json`), 500; error bodies are `{"status": …, "message": …}`.
//!
//! Versions: a model's `GET` and every successful write answer with `ETag: "<version>"`. A
//! `PUT`, `PATCH` or `DELETE` with `If-Match: "<version>"` (quotes optional, `W/` accepted) is
//! applied only if the model is at that version; else nothing is written and the answer is a
//! 412 with `{"status", "message", "current", "version"}` (the stored model and its version).
//! An
//! `X-Request-Id` header makes a write idempotent exactly as `signature.requestId` does over
//! the socket, and an `X-Client-Id` header gives the requests naming it the order of one
//! socket's (read-your-writes, see [`crate::order`]). Query-string values are filters: a
//! value that parses as a JSON number, boolean or null compares as that, otherwise as a string.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::api::{Api, Method, Request};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::order::Lanes;

/// Set on a collection read cut at the server's bound (`--max-read`, `--max-read-bytes`)
/// while more models matched: the number of models in the answer. Read the rest with
/// `_offset` (and `_limit`).
pub const TRUNCATED_HEADER: &str = "x-truncated-at";

#[derive(Clone)]
struct Rest {
    api: Api,
    max_body: usize,
    /// Longest a request's body may take to arrive, in all.
    body_timeout: Duration,
    lanes: Arc<Lanes>,
}

/// Routes `<prefix>` and everything under it to the store; request bodies over `max_body`
/// bytes get a 413 (at once when their `Content-Length` says so), and bodies that take longer
/// than `body_timeout` to arrive a 408, closing the connection.
pub fn router(api: Api, max_body: usize, body_timeout: Duration) -> Router {
    let prefix = api.prefix().to_owned();
    Router::new()
        .route(&prefix, any(handle))
        .route(&format!("{prefix}/{{*rest}}"), any(handle))
        .with_state(Rest {
            api,
            max_body,
            body_timeout,
            lanes: Arc::default(),
        })
}

async fn handle(
    State(rest): State<Rest>,
    http_method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    Extension(identity): Extension<Identity>,
    Query(query): Query<Vec<(String, String)>>,
    body: Body,
) -> Response {
    let body = read_body(&headers, body, rest.max_body, rest.body_timeout).await;
    let request = (http_method, &uri, &headers, query, identity);
    match respond(&rest, request, body).await {
        Ok(response) => response,
        Err(error) => error_response(error),
    }
}

/// The parts of an HTTP request that [`respond`] reads.
type Parts<'a> = (
    HttpMethod,
    &'a Uri,
    &'a HeaderMap,
    Vec<(String, String)>,
    Identity,
);

async fn respond(
    Rest { api, lanes, .. }: &Rest,
    (http_method, uri, headers, query, identity): Parts<'_>,
    body: Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let method = match http_method {
        HttpMethod::GET => Method::Read,
        HttpMethod::POST => Method::Create,
        HttpMethod::PUT => Method::Update,
        HttpMethod::PATCH => Method::Patch,
        HttpMethod::DELETE => Method::Delete,
        _ => return Err(ApiError::new(405, "method not allowed")),
    };
    if matches!(method, Method::Create | Method::Update | Method::Patch) && !is_json(headers) {
        return Err(ApiError::new(415, "Content-Type must be application/json"));
    }
    let body = body?;
    let item = match method {
        Method::Create | Method::Update | Method::Patch => Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("body is not valid JSON: {e}")))?,
        ),
        _ => None,
    };
    let data = (method == Method::Read && !query.is_empty()).then(|| {
        let map: Map<String, Value> = query
            .into_iter()
            .map(|(k, v)| (k, query_value(v)))
            .collect();
        Value::Object(map)
    });
    let if_version = match method {
        Method::Update | Method::Patch | Method::Delete => if_match(headers)?,
        _ => None,
    };
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned);
    let endpoint = uri.path().to_owned();
    // A lane per owner and client id: another user naming the same client id gets a lane of
    // their own, never a place in this one's queue.
    let lane = client_id(headers).map(|client| lanes.get(&format!("{}\n{client}", identity.owner)));
    let request = Request {
        method,
        endpoint: endpoint.clone(),
        item,
        data,
        request_id,
        if_version,
        identity,
    };
    let answer = crate::dispatch::execute(
        api,
        request,
        None::<&socketioxide::extract::SocketRef>,
        lane.as_ref(),
    )
    .await
    .map_err(precondition_failed)?;
    if let Some(read) = answer.collection {
        return read.respond(TRUNCATED_HEADER).await;
    }
    let value = answer.value;
    let etag = answer.version.map(|v| format!("\"{v}\""));
    if method == Method::Create {
        let location = value
            .get("id")
            .map(|id| {
                format!(
                    "{}/{}",
                    endpoint.trim_end_matches('/'),
                    id.as_str().map_or(id.to_string(), str::to_owned)
                )
            })
            .unwrap_or_default();
        let mut response = (
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(value),
        )
            .into_response();
        with_etag(&mut response, etag);
        return Ok(response);
    }
    let mut response = Json(value).into_response();
    with_etag(&mut response, etag);
    Ok(response)
}

/// Sets `ETag` when the answer names a model's version.
fn with_etag(response: &mut Response, etag: Option<String>) {
    if let Some(value) = etag.and_then(|etag| header::HeaderValue::from_str(&etag).ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// The version `If-Match` names: `"3"`, `3` or `W/"3"`; a value that names no single version
/// (`*`, a list, anything else) is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    match tag.parse::<i64>() {
        Ok(version) if version >= 0 => Ok(Some(version)),
        _ => Err(ApiError::bad_request(
            "If-Match must name one version, e.g. \"3\"",
        )),
    }
}

/// A version conflict over REST is a failed precondition (`If-Match`): a 412 with the same
/// body as the socket's 409.
fn precondition_failed(mut error: ApiError) -> ApiError {
    if error.conflict.is_some() {
        error.status = 412;
        error.message = "precondition failed: the model is not at the If-Match version".into();
    }
    error
}

/// Reads a request body of at most `limit` bytes within `timeout`, refusing a larger declared
/// length before reading anything. The timeout is for the whole body: hyper's header-read
/// timeout ends with the headers, and a client trickling a body a byte at a time would
/// otherwise hold its connection and this task for as long as it likes.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(413, format!("request body is larger than {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(ApiError::new(
            408,
            format!(
                "request body not received within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// True for `application/json` and `application/<anything>+json`, with any parameters: what
/// Backbone sends, and what no cross-site "simple" request can (it would need a preflight).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// `X-Client-Id`: requests naming the same client id see each other's writes in order, as
/// the requests of one socket do (see [`crate::order`]).
fn client_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(crate::access::CLIENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

fn query_value(raw: String) -> Value {
    match serde_json::from_str::<Value>(&raw) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => value,
        _ => Value::String(raw),
    }
}

fn error_response(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of a body that came too slowly is not waited for: the connection ends here.
        return (status, [(header::CONNECTION, "close")], Json(error)).into_response();
    }
    (status, Json(error)).into_response()
}
