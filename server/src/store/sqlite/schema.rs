//! The SQLite schema, and the upgrade of a database written before documents had owners.
//!
//! Version 1 (`PRAGMA user_version = 1`) keys documents and id sequences by owner, and request
//! records by (scope, request id) with the request's fingerprint. A version-0 database (the
//! first release: no owner column) is upgraded in one transaction: its documents and sequences
//! go to the owner `""` (what authentication off reads and writes) in their original order;
//! its request records are dropped, since they hold no fingerprint to check a retry against.

use rusqlite::Connection;

use super::internal;
use crate::store::StoreError;

const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (owner, collection, id)
);
CREATE TABLE IF NOT EXISTS sequences (
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (owner, collection)
);
CREATE TABLE IF NOT EXISTS requests (
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, request_id)
);
";

/// `INSERT … SELECT … ORDER BY rowid` keeps collection order (reads go by rowid).
const UPGRADE_FROM_0: &str = "
ALTER TABLE documents RENAME TO documents_v0;
ALTER TABLE sequences RENAME TO sequences_v0;
DROP TABLE IF EXISTS requests;
";
const COPY_FROM_0: &str = "
INSERT INTO documents (owner, collection, id, doc)
    SELECT '', collection, id, doc FROM documents_v0 ORDER BY rowid;
INSERT INTO sequences (owner, collection, last_id)
    SELECT '', collection, last_id FROM sequences_v0;
DROP TABLE documents_v0;
DROP TABLE sequences_v0;
";

/// Creates the tables, or upgrades an older database to them.
pub(super) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(internal)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(internal)?;
    if version > VERSION {
        return Err(StoreError::Internal(format!(
            "database schema version {version} is newer than this server's ({VERSION})"
        )));
    }
    let unowned: bool = tx
        .query_row(
            "SELECT count(*) = 0 FROM pragma_table_info('documents') WHERE name = 'owner'",
            [],
            |row| row.get(0),
        )
        .map_err(internal)?;
    let has_documents: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'documents'",
            [],
            |row| row.get(0),
        )
        .map_err(internal)?;
    let upgrade = has_documents && unowned;
    if upgrade {
        tracing::info!("upgrading the database: documents get an owner column");
        tx.execute_batch(UPGRADE_FROM_0).map_err(internal)?;
    }
    tx.execute_batch(SCHEMA).map_err(internal)?;
    if upgrade {
        tx.execute_batch(COPY_FROM_0).map_err(internal)?;
    }
    tx.pragma_update(None, "user_version", VERSION)
        .map_err(internal)?;
    tx.commit().map_err(internal)
}
