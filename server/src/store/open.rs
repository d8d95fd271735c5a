//! Choosing the store from `--db`: a `postgres://` or `postgresql://` url is a PostgreSQL
//! database shared by several nodes, anything else a path to the embedded SQLite file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{Store, StoreError};

/// True when `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &Path) -> bool {
    db.to_str()
        .is_some_and(|s| s.starts_with("postgres://") || s.starts_with("postgresql://"))
}

/// Opens the store `db` names; documents are limited to `max_doc_bytes` of JSON text, request
/// records kept for `request_retention` (see [`super::expiry`]).
pub async fn open(
    db: &Path,
    max_doc_bytes: usize,
    request_retention: Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    match db.to_str() {
        Some(url) if is_postgres_url(db) => Ok(Arc::new(
            PostgresStore::connect(url, max_doc_bytes, request_retention).await?,
        )),
        _ => Ok(Arc::new(SqliteStore::open(
            db,
            max_doc_bytes,
            request_retention,
        )?)),
    }
}

/// `db` as it may be printed: a url's password replaced by `***`.
pub fn redacted(db: &Path) -> String {
    let text = db.display().to_string();
    if !is_postgres_url(db) {
        return text;
    }
    // scheme://user:password@host… -> scheme://user:***@host…
    let Some((scheme, rest)) = text.split_once("://") else {
        return text;
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        assert!(is_postgres_url(Path::new("postgres://h/db")));
        assert!(is_postgres_url(Path::new("postgresql://u@%2Ftmp%2Fx/db")));
        assert!(!is_postgres_url(Path::new("./data/postgres.sqlite3")));
        assert!(!is_postgres_url(Path::new("postgres")));
        assert_eq!(
            redacted(Path::new("postgres://bss:secret@db:5432/bss")),
            "postgres://bss:***@db:5432/bss"
        );
        assert_eq!(
            redacted(Path::new("postgres://db/bss")),
            "postgres://db/bss"
        );
        assert_eq!(redacted(Path::new("a/b.sqlite3")), "a/b.sqlite3");
    }
}
