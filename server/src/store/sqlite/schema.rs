//! The SQLite schema, and the upgrades of databases written by earlier releases.
//!
//! Version 2 (`PRAGMA user_version = 2`) keys documents and id sequences by owner, and request
//! records by (scope, request id) with the request's fingerprint; each document has a
//! `version` (see [`crate::store::decide`]) and each request record the version it answered
//! and whether that answer was a conflict.
//!
//! - A version-0 database (the first release: no owner column) is upgraded in one
//!   transaction: its documents and sequences go to the owner `""` (what authentication off
//!   reads and writes) in their original order; its request records are dropped, since they
//!   hold no fingerprint to check a retry against.
//! - A version-1 database (no versions) gets the missing columns: its documents are at
//!   version 1 (they exist, and 0 means "no such model"), its request records answer version
//!   0 as they did, and none was a conflict. Version 2 is written so that a server from
//!   before versions refuses the database rather than writing documents it cannot version.

use rusqlite::Connection;

use super::internal;
use crate::store::StoreError;

const VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
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
    version INTEGER NOT NULL DEFAULT 0,
    conflict INTEGER NOT NULL DEFAULT 0,
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
    add_missing_columns(&tx)?;
    tx.pragma_update(None, "user_version", VERSION)
        .map_err(internal)?;
    tx.commit().map_err(internal)
}

/// Columns added after version 1, with what rows written before them hold.
const ADDED_COLUMNS: [(&str, &str, &str); 3] = [
    ("documents", "version", "INTEGER NOT NULL DEFAULT 1"),
    ("requests", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("requests", "conflict", "INTEGER NOT NULL DEFAULT 0"),
];

/// Adds the [`ADDED_COLUMNS`] a version-1 database lacks (`CREATE TABLE IF NOT EXISTS` left
/// its tables as they were).
fn add_missing_columns(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    for (table, column, definition) in ADDED_COLUMNS {
        let missing: bool = tx
            .query_row(
                "SELECT count(*) = 0 FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |row| row.get(0),
            )
            .map_err(internal)?;
        if missing {
            tracing::info!(table, column, "upgrading the database: adding a column");
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))
            .map_err(internal)?;
        }
    }
    Ok(())
}
