//! Endpoint paths: validation and the collection / model distinction.
//!
//! A Backbone url such as `/api/todos` names a collection (an odd number of segments) and
//! `/api/todos/5` a model in it (an even number; the last segment is the id). Nested
//! collections work the same way: `/api/users/7/todos` and `/api/users/7/todos/3`.

use crate::error::ApiError;

/// Longest endpoint accepted, in bytes.
pub const MAX_ENDPOINT_LEN: usize = 1024;

/// A validated endpoint, relative to nothing: `collection` keeps the whole path (prefix included),
/// so the same store can serve several prefixes without collisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A collection path such as `/api/todos`.
    Collection(String),
    /// A model: its collection path and its id segment.
    Model {
        /// The collection path, e.g. `/api/todos`.
        collection: String,
        /// The id segment, e.g. `5`.
        id: String,
    },
}

impl Endpoint {
    /// Parses `path` (a query string or fragment is not allowed) under `prefix` (e.g. `/api`).
    ///
    /// The prefix must be the first segment(s); the segments after it alternate collection
    /// name / id. Segments are `[A-Za-z0-9_.~-]+` and never `.` or `..`.
    pub fn parse(path: &str, prefix: &str) -> Result<Self, ApiError> {
        if path.len() > MAX_ENDPOINT_LEN {
            return Err(ApiError::bad_request("endPoint is too long"));
        }
        let rest = path
            .strip_prefix(prefix)
            .filter(|rest| rest.starts_with('/'))
            .ok_or_else(|| ApiError::bad_request(format!("endPoint must start with {prefix}/")))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let Some(rest) = rest.strip_prefix('/') else {
            return Err(ApiError::bad_request("endPoint names no collection"));
        };
        let segments: Vec<&str> = rest.split('/').collect();
        for segment in &segments {
            validate_segment(segment)?;
        }
        let prefix = prefix.trim_end_matches('/');
        Ok(if segments.len() % 2 == 1 {
            Endpoint::Collection(format!("{prefix}/{}", segments.join("/")))
        } else {
            let (id, collection) = segments.split_last().expect("even, non-zero length");
            Endpoint::Model {
                collection: format!("{prefix}/{}", collection.join("/")),
                id: (*id).to_owned(),
            }
        })
    }

    /// The whole path, normalised (no trailing slash).
    pub fn path(&self) -> String {
        match self {
            Endpoint::Collection(path) => path.clone(),
            Endpoint::Model { collection, id } => format!("{collection}/{id}"),
        }
    }

    /// The collection this endpoint is or belongs to.
    pub fn collection(&self) -> &str {
        match self {
            Endpoint::Collection(path) => path,
            Endpoint::Model { collection, .. } => collection,
        }
    }
}

/// Checks a user-supplied api prefix (`/api`, `/v1/data`) once at start-up.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    let inner = prefix
        .strip_prefix('/')
        .ok_or_else(|| format!("api prefix {prefix:?} must start with '/'"))?;
    for segment in inner.split('/') {
        validate_segment(segment).map_err(|e| format!("api prefix {prefix:?}: {}", e.message))?;
    }
    Ok(())
}

fn validate_segment(segment: &str) -> Result<(), ApiError> {
    if segment.is_empty() {
        return Err(ApiError::bad_request("endPoint has an empty segment"));
    }
    if segment == "." || segment == ".." {
        return Err(ApiError::bad_request(
            "endPoint may not contain '.' or '..' segments",
        ));
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '~' | '-');
    if !segment.chars().all(safe) {
        return Err(ApiError::bad_request(
            "endPoint segments may only contain A-Z a-z 0-9 _ . ~ -",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_and_models() {
        assert_eq!(
            Endpoint::parse("/api/todos", "/api").unwrap(),
            Endpoint::Collection("/api/todos".into())
        );
        assert_eq!(
            Endpoint::parse("/api/todos/5/", "/api").unwrap(),
            Endpoint::Model {
                collection: "/api/todos".into(),
                id: "5".into()
            }
        );
        assert_eq!(
            Endpoint::parse("/api/users/7/todos", "/api").unwrap(),
            Endpoint::Collection("/api/users/7/todos".into())
        );
        assert_eq!(
            Endpoint::parse("/v1/x/users/a-b_c.d~e", "/v1/x")
                .unwrap()
                .path(),
            "/v1/x/users/a-b_c.d~e"
        );
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in [
            "",
            "/",
            "/api",
            "/api/",
            "/apix/todos",
            "todos",
            "/other/todos",
            "/api//todos",
            "/api/todos/..",
            "/api/../etc",
            "/api/./todos",
            "/api/to dos",
            "/api/todos?x=1",
            "/api/todos%2F",
            "/api/tödos",
        ] {
            let err = Endpoint::parse(bad, "/api").unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
        }
        let long = format!("/api/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(Endpoint::parse(&long, "/api").unwrap_err().status, 400);
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("/api").is_ok());
        assert!(validate_prefix("/v1/data").is_ok());
        assert!(validate_prefix("api").is_err());
        assert!(validate_prefix("/").is_err());
        assert!(validate_prefix("/a/../b").is_err());
    }
}
