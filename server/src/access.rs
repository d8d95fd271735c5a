//! Who is asking, on both transports: turns a token (or, with authentication off, a declared
//! client id) into the [`Identity`] every request then runs under.
//!
//! - socket.io: the namespace CONNECT payload `{"token": "<jwt>", "clientId": "<id>"}`, read by
//!   [`authenticate`], a connect middleware: a refused socket gets CONNECT_ERROR
//!   `{"message":"unauthorized"}` and none of its handlers is ever registered. An accepted
//!   one keeps its identity in its extensions and is disconnected when its token expires.
//! - REST: `Authorization: Bearer <jwt>` and `X-Client-Id`, read by [`rest_identity`], a
//!   middleware in front of the REST routes: refused is a 401 `{status, message}` with
//!   `WWW-Authenticate: Bearer`.
//!
//! With authentication off every request is anonymous (see [`crate::identity`]); a client id
//! only scopes its request ids.

use std::sync::Arc;

use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::SocketIo;

use crate::auth::{until, Auth, Checks};
use crate::config::Config;
use crate::error::ApiError;
use crate::identity::{validate_client_id, Identity};

/// The message of every refused CONNECT and 401, whatever the reason (the log has it).
pub const UNAUTHORIZED: &str = "unauthorized";

/// Largest `--auth-leeway` accepted, in seconds.
pub const MAX_LEEWAY_SECS: u64 = 3600;

/// Header a REST client names its identity in (authentication off).
pub const CLIENT_ID_HEADER: &str = "x-client-id";

/// The access policy: authentication on (with its secret) or off.
#[derive(Clone, Default, Debug)]
pub struct Access {
    auth: Option<Arc<Auth>>,
}

/// Why a request or connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No valid token while authentication is on.
    Unauthorized,
    /// A malformed client id.
    BadRequest(ApiError),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::Unauthorized => f.write_str(UNAUTHORIZED),
            Denied::BadRequest(error) => f.write_str(&error.message),
        }
    }
}

impl Access {
    /// Authentication on with `auth`, or off with `None`.
    pub fn new(auth: Option<Auth>) -> Self {
        Self {
            auth: auth.map(Arc::new),
        }
    }

    /// The policy `config` asks for: a secret or key file turns authentication on;
    /// `--demo-tokens` alone does too, with a random secret for this process. `--demo-tokens`
    /// beside a secret or key file is refused: it would let anyone be any user of a real
    /// deployment.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let production = auth_from_config(config)?;
        if !config.demo_tokens {
            return Ok(Self::new(production));
        }
        if production.is_some() {
            return Err(
                "--demo-tokens mints a token for anyone who asks: it cannot be used \
                 with --auth-secret-file, --auth-public-key-file or --auth-jwks-file \
                 (drop --demo-tokens in production, or the key to try the demo)"
                    .into(),
            );
        }
        tracing::warn!(
            "--demo-tokens: tokens for anyone, signed with a random secret for this process"
        );
        let checks = checks(config)?;
        Ok(Self::new(Some(Auth::ephemeral().with_checks(checks))))
    }

    /// The token verifier, when authentication is on.
    pub fn auth(&self) -> Option<&Arc<Auth>> {
        self.auth.as_ref()
    }

    /// The identity for a token and a client id, and when the token stops being accepted
    /// (its `exp` plus the leeway); `token` is ignored with authentication off, `client_id`
    /// with it on. Both transports read tokens through this one function.
    pub fn identify(
        &self,
        token: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<(Identity, Option<u64>), Denied> {
        let Some(auth) = &self.auth else {
            let client_id = client_id
                .map(validate_client_id)
                .transpose()
                .map_err(Denied::BadRequest)?;
            return Ok((Identity::anonymous(client_id), None));
        };
        // Trimmed here, whichever transport it came by (a header's value or a CONNECT field).
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Unauthorized)?;
        match auth.verify(token) {
            Ok(claims) => Ok((
                Identity::user(&claims.sub),
                Some(auth.valid_until(claims.exp)),
            )),
            Err(reason) => {
                tracing::info!(%reason, "token refused");
                Err(Denied::Unauthorized)
            }
        }
    }
}

/// The verifier of the secret or key file `config` names (at most one of
/// `--auth-secret-file`, `--auth-public-key-file`, `--auth-jwks-file`), with its checks; `None`
/// without any. `--auth-audience` or `--auth-issuer` without one is refused: it would look
/// like authentication while there is none.
pub fn auth_from_config(config: &Config) -> Result<Option<Auth>, String> {
    let sources = [
        config.auth_secret_file.as_deref().map(Auth::load),
        config
            .auth_public_key_file
            .as_deref()
            .map(Auth::load_public_key),
        config.auth_jwks_file.as_deref().map(Auth::load_jwks),
    ];
    let mut given = sources.into_iter().flatten();
    let Some(auth) = given.next() else {
        if !config.auth_audience.is_empty() || !config.auth_issuer.is_empty() {
            return Err(
                "--auth-audience and --auth-issuer need --auth-secret-file, \
                 --auth-public-key-file or --auth-jwks-file"
                    .into(),
            );
        }
        return Ok(None);
    };
    if given.next().is_some() {
        return Err(
            "give one of --auth-secret-file, --auth-public-key-file and \
             --auth-jwks-file, not several"
                .into(),
        );
    }
    Ok(Some(auth?.with_checks(checks(config)?)))
}

/// The token checks of `config`: no empty audience or issuer, a leeway of at most
/// [`MAX_LEEWAY_SECS`] (jsonwebtoken subtracts it from the clock: a huge one would overflow).
fn checks(config: &Config) -> Result<Checks, String> {
    let empty = |values: &[String]| values.iter().any(|v| v.trim().is_empty());
    if empty(&config.auth_audience) || empty(&config.auth_issuer) {
        return Err("--auth-audience and --auth-issuer cannot be empty".into());
    }
    if config.auth_leeway > MAX_LEEWAY_SECS {
        return Err(format!(
            "--auth-leeway {} is more than {MAX_LEEWAY_SECS} seconds",
            config.auth_leeway
        ));
    }
    Ok(Checks {
        audience: config.auth_audience.clone(),
        issuer: config.auth_issuer.clone(),
        leeway: config.auth_leeway,
        max_ttl: config.auth_max_ttl.as_secs(),
    })
}

/// Socket.io connect middleware: reads `token` and `clientId` from the CONNECT payload, refuses
/// the socket or stores its [`Identity`], and schedules its disconnection when its token stops
/// being accepted.
pub async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    io: SocketIo<A>,
    State(access): State<Access>,
    TryData(payload): TryData<Value>,
) -> Result<(), Denied> {
    let payload = payload.unwrap_or(Value::Null);
    let token = match payload.get("token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(token.as_str()),
        Some(_) => return Err(Denied::Unauthorized),
    };
    let client_id = match payload.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.as_str()),
        Some(_) => {
            return Err(Denied::BadRequest(ApiError::bad_request(
                "clientId must be a string",
            )))
        }
    };
    let (identity, exp) = access.identify(token, client_id)?;
    tracing::debug!(sid = %socket.id, owner = %identity.owner, "socket identified");
    socket.extensions.insert(identity);
    if let Some(exp) = exp {
        disconnect_at(io, &socket, exp);
    }
    Ok(())
}

/// Aborts the expiry timer of a socket when the socket itself is dropped: it lives (in an
/// `Arc`, as extensions must be `Clone`) in the socket's extensions, so a socket that leaves
/// early leaves no sleeping task behind.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Disconnects `socket` (a socket.io DISCONNECT, `41`) when `exp` passes. The timer holds the
/// socket's id, not the socket, so it never keeps a closed socket alive.
fn disconnect_at<A: Adapter>(io: SocketIo<A>, socket: &SocketRef<A>, exp: u64) {
    let ns = socket.ns().to_owned();
    let sid = socket.id;
    let Some(left) = until(exp) else {
        return; // beyond the clock's range: never
    };
    let timer = tokio::spawn(async move {
        tokio::time::sleep(left).await;
        if let Some(socket) = io.of(&ns).and_then(|ops| ops.get_socket(sid)) {
            tracing::info!(%sid, ns, "token expired: disconnecting");
            let _ = socket.disconnect();
        }
    });
    socket
        .extensions
        .insert(Arc::new(AbortOnDrop(timer.abort_handle())));
}

/// REST middleware: reads `Authorization: Bearer` and `X-Client-Id`, answers 401 (or 400 for a
/// malformed client id) or passes the request on with its [`Identity`] as an extension.
pub async fn rest_identity(
    AxumState(access): AxumState<Access>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let token = bearer_token(headers);
    let client_id = headers
        .get(CLIENT_ID_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let presented = headers.contains_key(header::AUTHORIZATION);
    match access.identify(token, client_id) {
        Ok((identity, _)) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(Denied::BadRequest(error)) => error_response(error),
        Err(Denied::Unauthorized) => unauthorized(presented),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// 401 `{status, message}` with the RFC 6750 challenge (`error="invalid_token"` when a token
/// was presented).
fn unauthorized(presented: bool) -> Response {
    let challenge = if presented {
        HeaderValue::from_static("Bearer error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer")
    };
    let error = ApiError::new(401, UNAUTHORIZED);
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(error),
    )
        .into_response()
}

fn error_response(error: ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(error)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers), token, "{value}");
        }
    }

    #[test]
    fn identities() {
        let off = Access::new(None);
        let (anonymous, exp) = off.identify(Some("ignored"), Some("tab-1")).unwrap();
        assert_eq!((anonymous, exp), (Identity::anonymous(Some("tab-1")), None));
        assert!(matches!(
            off.identify(None, Some("a b")),
            Err(Denied::BadRequest(_))
        ));
        let auth = Auth::from_secret(&[7; 32]).unwrap();
        let (token, exp) = auth
            .mint("alice", std::time::Duration::from_secs(60))
            .unwrap();
        let until = auth.valid_until(exp);
        assert_eq!(until, exp + crate::auth::DEFAULT_LEEWAY_SECS);
        let on = Access::new(Some(auth));
        assert_eq!(
            on.identify(Some(&token), Some("ignored")).unwrap(),
            (Identity::user("alice"), Some(until))
        );
        assert_eq!(on.identify(None, None), Err(Denied::Unauthorized));
        assert_eq!(on.identify(Some("x.y.z"), None), Err(Denied::Unauthorized));
        // A CONNECT payload's token is read as REST reads a header's: white space around it
        // is not part of it (the socket refused it while REST trimmed it).
        assert_eq!(
            on.identify(Some(&format!(" {token}\n")), None).unwrap().0,
            Identity::user("alice")
        );
        assert_eq!(on.identify(Some("  "), None), Err(Denied::Unauthorized));
    }
}
