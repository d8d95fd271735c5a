//! The REST twin: `GET/POST/PUT/PATCH/DELETE` under the api prefix, on the same store with the
//! same JSON, so the original XHR `Backbone.sync` (`Backbone.ajaxSync`) works unchanged.
//!
//! Status codes: 200, 201 on create (with `Location`), 400, 404, 405, 409, 413, 500; error
//! bodies are `{"status": …, "message": …}`. An `X-Request-Id` header makes a write idempotent
//! exactly as `signature.requestId` does over the socket. Query-string values are filters: a
//! value that parses as a JSON number, boolean or null compares as that, otherwise as a string.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::api::{Api, Method, Request};
use crate::error::ApiError;

/// Routes `<prefix>` and everything under it to the store.
pub fn router(api: Api) -> Router {
    let prefix = api.prefix().to_owned();
    Router::new()
        .route(&prefix, any(handle))
        .route(&format!("{prefix}/{{*rest}}"), any(handle))
        .with_state(api)
}

async fn handle(
    State(api): State<Api>,
    http_method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match respond(&api, http_method, &uri, &headers, query, body).await {
        Ok(response) => response,
        Err(error) => error_response(error),
    }
}

async fn respond(
    api: &Api,
    http_method: HttpMethod,
    uri: &Uri,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let method = match http_method {
        HttpMethod::GET => Method::Read,
        HttpMethod::POST => Method::Create,
        HttpMethod::PUT => Method::Update,
        HttpMethod::PATCH => Method::Patch,
        HttpMethod::DELETE => Method::Delete,
        _ => {
            return Err(ApiError {
                status: 405,
                message: "method not allowed".into(),
            })
        }
    };
    let body = body.map_err(|rejection| ApiError {
        status: rejection.status().as_u16(),
        message: rejection.body_text(),
    })?;
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
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned);
    let endpoint = uri.path().to_owned();
    let request = Request {
        method,
        endpoint: endpoint.clone(),
        item,
        data,
        request_id,
    };
    let value = api.handle(request).await?;
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
        return Ok((
            StatusCode::CREATED,
            [(header::LOCATION, location)],
            Json(value),
        )
            .into_response());
    }
    Ok(Json(value).into_response())
}

fn query_value(raw: String) -> Value {
    match serde_json::from_str::<Value>(&raw) {
        Ok(value @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => value,
        _ => Value::String(raw),
    }
}

fn error_response(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(error)).into_response()
}
