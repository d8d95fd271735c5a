//! The error every request can end with, as the client sees it: `{status, message}`, and for
//! a conditional write that lost, `{status: 409, message, current, version}`.

use serde::Serialize;
use serde_json::Value;

/// A request's failure: an HTTP-like status (400 bad input, 404 missing, 409 requestId reused
/// or version conflict, 413 too large, 500 internal, 503 database unavailable) and a
/// human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP-like status code.
    pub status: u16,
    /// What went wrong, for a developer.
    pub message: String,
    /// For a version conflict: what is stored now (see [`Conflict`]).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
}

/// The stored state a conditional write was refused against: the client resolves from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The stored document (`null` when there is none).
    pub current: Value,
    /// Its version (0 when there is none).
    pub version: i64,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            conflict: None,
        }
    }

    /// A 409: the write's `ifVersion` (or REST `If-Match`) is not the stored version.
    pub fn conflict(current: Value, version: i64) -> Self {
        Self {
            conflict: Some(Conflict { current, version }),
            ..Self::new(
                409,
                "version conflict: the model changed since the version given",
            )
        }
    }

    /// A 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// A 404: the model does not exist.
    pub fn not_found() -> Self {
        Self::new(404, "not found")
    }

    /// A 413: the item is over the configured size bound.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, format!("item is larger than {limit} bytes"))
    }

    /// A 500: the store failed; details go to the log, not to the client.
    pub fn internal() -> Self {
        Self::new(500, "internal error")
    }

    /// A 503: the database cannot be reached right now; the request may be retried.
    pub fn unavailable() -> Self {
        Self::new(503, "database unavailable")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
