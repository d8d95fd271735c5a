//! The error every request can end with, as the client sees it: `{status, message}`.

use serde::Serialize;

/// A request's failure: an HTTP-like status (400 bad input, 404 missing, 409 requestId reused,
/// 413 too large, 500 internal, 503 database unavailable) and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// HTTP-like status code.
    pub status: u16,
    /// What went wrong, for a developer.
    pub message: String,
}

impl ApiError {
    /// A 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// A 404: the model does not exist.
    pub fn not_found() -> Self {
        Self {
            status: 404,
            message: "not found".into(),
        }
    }

    /// A 413: the item is over the configured size bound.
    pub fn too_large(limit: usize) -> Self {
        Self {
            status: 413,
            message: format!("item is larger than {limit} bytes"),
        }
    }

    /// A 500: the store failed; details go to the log, not to the client.
    pub fn internal() -> Self {
        Self {
            status: 500,
            message: "internal error".into(),
        }
    }
}

impl ApiError {
    /// A 503: the database cannot be reached right now; the request may be retried.
    pub fn unavailable() -> Self {
        Self {
            status: 503,
            message: "database unavailable".into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
