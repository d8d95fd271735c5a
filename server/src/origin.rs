//! Which web pages may talk to this server: an `Origin` check in front of socket.io, the REST
//! api and `/_bss/`, and CORS headers for the origins allowed with `--allowed-origin`.
//!
//! A request that carries an `Origin` header (every browser WebSocket, every cross-site
//! fetch) is let through when that origin is the server's own (its host and port equal the
//! `Host` header), is listed with `--allowed-origin`, or `*` was given; any other gets a 403
//! `{status, message}` before socket.io sees it (so a refused WebSocket upgrade never reaches
//! the handshake). Requests without an `Origin` (non-browser clients, same-origin GETs) are let
//! through: they are not what a hostile page can send. Static files are not checked.
//!
//! CORS headers (tower-http's `CorsLayer`) are sent for the listed origins only: the server's
//! own pages need none. REST writes must also be `application/json` (see [`crate::rest`]),
//! which no cross-site form or "simple" request can send without a preflight.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::rebinding::HostPolicy;

/// The origins allowed besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    listed: Vec<String>,
}

impl OriginPolicy {
    /// The policy of `--allowed-origin` values: `*`, or `scheme://host[:port]` origins.
    pub fn new(allowed: &[String]) -> Result<Self, String> {
        let mut policy = Self::default();
        for origin in allowed {
            let origin = origin.trim().trim_end_matches('/');
            if origin == "*" {
                policy.any = true;
                continue;
            }
            let valid = origin.split_once("://").is_some_and(|(scheme, authority)| {
                !scheme.is_empty()
                    && !authority.is_empty()
                    && !authority.contains(['/', '?', '#', ' '])
            });
            if !valid || HeaderValue::from_str(origin).is_err() {
                return Err(format!(
                    "--allowed-origin {origin:?}: expected scheme://host[:port] or *"
                ));
            }
            policy.listed.push(origin.to_ascii_lowercase());
        }
        Ok(policy)
    }

    /// True when a request with `origin` to a server reached as `host` may proceed.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let origin = origin.to_ascii_lowercase();
        let own = origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host));
        own || self.listed.contains(&origin)
    }

    /// The CORS layer for the listed origins, or none when only the server's own is allowed.
    fn cors(&self) -> Option<CorsLayer> {
        let origins = if self.any {
            AllowOrigin::any()
        } else if self.listed.is_empty() {
            return None;
        } else {
            AllowOrigin::list(
                self.listed
                    .iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok()),
            )
        };
        Some(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-request-id"),
                    HeaderName::from_static(crate::access::CLIENT_ID_HEADER),
                ])
                .expose_headers([header::LOCATION])
                .max_age(Duration::from_secs(600)),
        )
    }
}

#[derive(Clone)]
struct Guard {
    policy: Arc<OriginPolicy>,
    hosts: Arc<HostPolicy>,
    /// Path prefixes checked: socket.io's, the api prefix, `/_bss/`.
    guarded: Arc<Vec<String>>,
}

/// Wraps `router` (socket.io layer included) in the Host check (see [`crate::rebinding`]), the
/// Origin check and, for listed origins, CORS.
pub fn protect(
    router: Router,
    policy: OriginPolicy,
    hosts: HostPolicy,
    api_prefix: &str,
) -> Router {
    let cors = policy.cors();
    let guard = Guard {
        policy: Arc::new(policy),
        hosts: Arc::new(hosts),
        guarded: Arc::new(vec![
            "/socket.io".into(),
            api_prefix.trim_end_matches('/').to_owned(),
            "/_bss".into(),
        ]),
    };
    let router = router.layer(axum::middleware::from_fn_with_state(guard, check_origin));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

async fn check_origin(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let guarded = guard.guarded.iter().any(|prefix| {
        path.strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    let headers = request.headers();
    // An unreadable Host is no allowed name.
    let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or(""));
    if guarded && !guard.hosts.allows(host) {
        tracing::info!(?host, path, "host refused");
        let error = ApiError::new(403, "host not allowed (see --allowed-host)");
        return (StatusCode::FORBIDDEN, Json(error)).into_response();
    }
    if let (true, Some(origin)) = (guarded, headers.get(header::ORIGIN)) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| guard.policy.allows(origin, host));
        if !allowed {
            tracing::info!(?origin, path, "origin refused");
            let error = ApiError::new(403, "origin not allowed");
            return (StatusCode::FORBIDDEN, Json(error)).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str]) -> OriginPolicy {
        OriginPolicy::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn own_listed_and_any() {
        let own = policy(&[]);
        assert!(own.allows("http://127.0.0.1:3000", Some("127.0.0.1:3000")));
        assert!(own.allows("https://Example.com", Some("example.com")));
        assert!(!own.allows("http://127.0.0.1:3001", Some("127.0.0.1:3000")));
        assert!(!own.allows("http://evil.example", Some("127.0.0.1:3000")));
        assert!(!own.allows("null", Some("127.0.0.1:3000")));
        assert!(!own.allows("http://127.0.0.1:3000", None));
        let listed = policy(&["https://app.example.com/"]);
        assert!(listed.allows("https://app.example.com", Some("api.example.com")));
        assert!(!listed.allows("http://app.example.com", Some("api.example.com")));
        assert!(policy(&["*"]).allows("null", None));
    }

    #[test]
    fn malformed_origins_are_refused_at_start() {
        for bad in ["example.com", "http://", "http://a/b", "://a"] {
            assert!(OriginPolicy::new(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
