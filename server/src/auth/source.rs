//! Where the keys come from: fixed (a secret, a PEM key), or a JWKS file that is read again
//! when a token names a `kid` it does not hold.
//!
//! Identity providers rotate their keys: the new key is published in the JWKS before tokens
//! are signed with it. Whoever re-saves the file (a cron job fetching the `jwks_uri`, a config
//! management tool) need not restart the server: the first token signed with the new key makes
//! it read the file again, at most once every [`REREAD_INTERVAL`] so that tokens with made-up
//! `kid`s cost nothing. A file that no longer parses keeps the keys already read (logged).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::keys::KeySet;
use super::{read_text, Refused};

/// Least time between two readings of a JWKS file prompted by unknown `kid`s.
pub const REREAD_INTERVAL: Duration = Duration::from_secs(30);

/// The current keys, and the JWKS file they were read from, if any.
pub struct KeySource {
    current: RwLock<Arc<KeySet>>,
    file: Option<JwksFile>,
}

struct JwksFile {
    path: PathBuf,
    /// When the file was last read for an unknown `kid` (`None`: not yet).
    last_read: Mutex<Option<Instant>>,
}

impl KeySource {
    /// Keys that never change.
    pub fn fixed(keys: KeySet) -> Self {
        Self {
            current: RwLock::new(Arc::new(keys)),
            file: None,
        }
    }

    /// The keys of the JWKS file at `path`, read now and again for unknown `kid`s.
    pub fn jwks_file(path: PathBuf) -> Result<Self, String> {
        let keys = read_jwks(&path)?;
        Ok(Self {
            current: RwLock::new(Arc::new(keys)),
            file: Some(JwksFile {
                path,
                last_read: Mutex::new(None),
            }),
        })
    }

    /// The keys now.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A key set holding the key for `kid` (see [`KeySet::pick`]): the current one, or the
    /// file's keys read again when the current set has no key of that `kid`.
    pub fn for_kid(&self, kid: Option<&str>) -> Result<Arc<KeySet>, Refused> {
        let current = self.current();
        let refused = match current.pick(kid) {
            Ok(_) => return Ok(current),
            Err(refused) => refused,
        };
        let (Some(file), Some(_)) = (&self.file, kid) else {
            return Err(refused);
        };
        let fresh = self.reread(file).ok_or(refused)?;
        fresh.pick(kid)?;
        Ok(fresh)
    }

    /// Reads the file again unless it was read for this less than [`REREAD_INTERVAL`] ago;
    /// the new keys, now current.
    fn reread(&self, file: &JwksFile) -> Option<Arc<KeySet>> {
        let mut last_read = file
            .last_read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last_read.is_some_and(|at| at.elapsed() < REREAD_INTERVAL) {
            return None;
        }
        *last_read = Some(Instant::now());
        match read_jwks(&file.path) {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys.clone();
                tracing::info!(path = %file.path.display(), "JWKS read again for an unknown kid");
                Some(keys)
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS not read again: keeping the keys read before");
                None
            }
        }
    }

    /// Lets the next unknown `kid` read the file again at once.
    #[cfg(test)]
    fn forget_last_read(&self) {
        if let Some(file) = &self.file {
            *file.last_read.lock().unwrap() = None;
        }
    }
}

fn read_jwks(path: &std::path::Path) -> Result<KeySet, String> {
    KeySet::jwks(&read_text(path, "JWKS")?).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    fn jwk(kid: &str) -> serde_json::Value {
        let point = [7u8; 32];
        json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point), "y": URL_SAFE_NO_PAD.encode(point)})
    }

    #[test]
    fn an_unknown_kid_reads_the_file_again_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let write = |kids: &[&str]| {
            let keys: Vec<_> = kids.iter().map(|kid| jwk(kid)).collect();
            std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
        };
        write(&["old"]);
        let source = KeySource::jwks_file(path.clone()).unwrap();
        assert!(source.for_kid(Some("old")).is_ok());
        // The provider publishes a new key: the first token naming it reads the file.
        write(&["old", "new"]);
        assert!(source.for_kid(Some("new")).is_ok());
        assert!(source.current().pick(Some("new")).is_ok(), "kept");
        // Another one within the interval: not read again.
        write(&["new", "newer"]);
        assert!(source.for_kid(Some("newer")).is_err());
        source.forget_last_read();
        assert!(source.for_kid(Some("newer")).is_ok());
        assert!(
            source.for_kid(Some("old")).is_err(),
            "a key removed is gone"
        );
        // A broken file keeps the keys read before.
        std::fs::write(&path, "{").unwrap();
        source.forget_last_read();
        assert!(source.for_kid(Some("other")).is_err());
        assert!(source.for_kid(Some("newer")).is_ok());
        // Fixed keys are never read again.
        let fixed = KeySource::fixed(KeySet::secret(b"s"));
        assert!(fixed.for_kid(Some("any")).is_ok());
    }
}
