//! `--public-prefix`: collections every user may read and none may write, for shared
//! reference data while authentication is on.
//!
//! Their documents are the shared ones (owner `""`): what the server stores with
//! authentication off. So reference data is loaded with authentication off (or by any tool
//! writing the shared owner), and served read-only to every signed-in user once it is on.
//! With authentication off the prefix changes nothing: everything is shared and writable.

use crate::endpoint::validate_prefix;

/// The public collection prefixes, e.g. `/api/public`.
#[derive(Debug, Clone, Default)]
pub struct PublicPrefixes(Vec<String>);

impl PublicPrefixes {
    /// Checks each prefix: path segments under the api prefix (`/api/public`).
    pub fn new(prefixes: &[String], api_prefix: &str) -> Result<Self, String> {
        let mut checked = Vec::new();
        for prefix in prefixes {
            let prefix = prefix.trim_end_matches('/');
            validate_prefix(prefix).map_err(|e| format!("--public-prefix: {e}"))?;
            let under_api = prefix
                .strip_prefix(api_prefix)
                .is_some_and(|rest| rest.starts_with('/'));
            if !under_api {
                return Err(format!(
                    "--public-prefix {prefix:?} must be under the api prefix {api_prefix}/"
                ));
            }
            checked.push(prefix.to_owned());
        }
        Ok(Self(checked))
    }

    /// True when `collection` (a collection path) is `prefix` or under it.
    pub fn covers(&self, collection: &str) -> bool {
        self.0.iter().any(|prefix| {
            collection
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_their_collections_only() {
        let public = PublicPrefixes::new(&["/api/public/".into()], "/api").unwrap();
        assert!(public.covers("/api/public"));
        assert!(public.covers("/api/public/7/colors"));
        assert!(!public.covers("/api/publicity"));
        assert!(!public.covers("/api/todos"));
        assert!(PublicPrefixes::new(&["/other/x".into()], "/api").is_err());
        assert!(PublicPrefixes::new(&["/api".into()], "/api").is_err());
        assert!(PublicPrefixes::new(&["/api/../x".into()], "/api").is_err());
        assert!(!PublicPrefixes::default().covers("/api/public"));
    }
}
