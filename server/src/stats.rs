//! `GET /_bss/stats`: this process's counters ([`Live::stats`]), the counts of every user
//! together. With authentication off anyone may read them (everything is shared then); with it
//! on, only the users named with `--stats-sub` (a 403 for any other signed-in user, a 401
//! without a token: see [`crate::access::rest_identity`], in front of this route).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

use crate::error::ApiError;
use crate::identity::Identity;
use crate::live::{Live, STATS_PATH};

/// Who may read the stats.
#[derive(Debug, Clone)]
pub enum Readers {
    /// Authentication off: everyone.
    Everyone,
    /// Authentication on: these `sub`s only.
    Only(Arc<[String]>),
}

impl Readers {
    /// Everyone with authentication off, else the `subs` of `--stats-sub`.
    pub fn new(auth_on: bool, subs: &[String]) -> Self {
        if auth_on {
            let subs = subs.iter().map(|s| s.trim()).filter(|s| !s.is_empty());
            Readers::Only(subs.map(str::to_owned).collect())
        } else {
            Readers::Everyone
        }
    }

    /// True when `identity` may read the stats.
    pub fn allows(&self, identity: &Identity) -> bool {
        match self {
            Readers::Everyone => true,
            Readers::Only(subs) => subs.contains(&identity.owner),
        }
    }
}

/// The stats route, for `readers`.
pub fn router(live: Live, readers: Readers) -> Router {
    Router::new().route(
        STATS_PATH,
        get(move |Extension(identity): Extension<Identity>| {
            let answer = if readers.allows(&identity) {
                Json(live.stats()).into_response()
            } else {
                refused()
            };
            async move { answer }
        }),
    )
}

fn refused() -> Response {
    let error = ApiError::new(403, "the stats are for --stats-sub users");
    (StatusCode::FORBIDDEN, Json(error)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_auth_on_only_the_named_subs_read() {
        let off = Readers::new(false, &[]);
        assert!(off.allows(&Identity::anonymous(None)));
        let on = Readers::new(true, &["ops".into()]);
        assert!(on.allows(&Identity::user("ops")));
        assert!(!on.allows(&Identity::user("alice")));
        assert!(!Readers::new(true, &[]).allows(&Identity::user("alice")));
    }
}
