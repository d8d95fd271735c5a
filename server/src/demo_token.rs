//! `--demo-tokens`: a token for anyone who asks, so the demo can be tried as several users
//! side by side. Never for production: it lets any visitor be any user.
//!
//! `GET /_bss/demo-token` answers 200 (the demo page shows its "sign in as" box then);
//! `POST /_bss/demo-token` with `{"sub": "alice"}` (JSON) answers `{"token", "sub", "exp"}`, a
//! token valid for [`DEMO_TOKEN_TTL`]. Without the flag neither route exists (404).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;

/// Where the demo page asks for its token.
pub const DEMO_TOKEN_PATH: &str = "/_bss/demo-token";
/// How long a demo token is valid.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Longest demo user name, in characters.
const MAX_NAME_CHARS: usize = 64;

/// The demo-token routes, minting with `auth`.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route(DEMO_TOKEN_PATH, get(available).post(mint))
        .with_state(auth)
}

async fn available() -> Json<Value> {
    Json(json!({ "demoTokens": true, "ttl": DEMO_TOKEN_TTL.as_secs() }))
}

async fn mint(State(auth): State<Arc<Auth>>, Json(body): Json<Value>) -> Response {
    let sub = body.get("sub").and_then(Value::as_str).map(str::trim);
    let Some(sub) = sub.filter(|s| !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS) else {
        let error = ApiError::bad_request(format!(
            "expected {{\"sub\": \"<name of 1 to {MAX_NAME_CHARS} characters>\"}}"
        ));
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    };
    match auth.mint(sub, DEMO_TOKEN_TTL) {
        Ok((token, exp)) => Json(json!({ "token": token, "sub": sub, "exp": exp })).into_response(),
        Err(message) => {
            tracing::error!(%message, "minting a demo token");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(ApiError::internal()),
            )
                .into_response()
        }
    }
}
