//! The PostgreSQL store's tables, created (or brought up to date) by the first node that
//! starts, under an advisory lock so that nodes starting together do not race.
//!
//! - `bss_documents.version`: 1 at create, +1 per write; documents from before versions
//!   existed count as version 1.
//! - `bss_requests` keeps each request's outcome: the reply's text (or a conflict's current
//!   document), its version and whether it was a conflict; `created_at` is the database's
//!   clock, indexed for the sweep of expired records.
//! - `bss_outbox` rows carry the id of the transaction that wrote them (`xid`), so the change
//!   feed can read them in transaction order up to the oldest one still running, and a
//!   `created_at` from the database's clock for the sweep.

use deadpool_postgres::Pool;

use super::{pg_error, pool_error, REQUEST_TTL};
use crate::store::StoreError;

/// Key of the advisory lock held while the schema is created (any constant shared by nodes).
const SCHEMA_LOCK: i64 = 0x6273_735f_7363_6865; // "bss_sche"

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS bss_documents (
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    pos BIGINT GENERATED ALWAYS AS IDENTITY,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (owner, collection, id)
);
ALTER TABLE bss_documents ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX IF NOT EXISTS bss_documents_order ON bss_documents (owner, collection, pos);
CREATE TABLE IF NOT EXISTS bss_sequences (
    owner TEXT NOT NULL,
    collection TEXT NOT NULL,
    last_id BIGINT NOT NULL,
    PRIMARY KEY (owner, collection)
);
CREATE TABLE IF NOT EXISTS bss_requests (
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT,
    version BIGINT NOT NULL DEFAULT 0,
    conflict BOOLEAN NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);
ALTER TABLE bss_requests ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bss_requests ADD COLUMN IF NOT EXISTS conflict BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE IF NOT EXISTS bss_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    payload TEXT NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE bss_outbox ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
DO $$
BEGIN
    -- Before versions, both tables kept created_at as the writing node's epoch seconds.
    IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
            AND table_name = 'bss_requests' AND column_name = 'created_at') = 'bigint' THEN
        ALTER TABLE bss_requests ALTER COLUMN created_at DROP DEFAULT,
            ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at),
            ALTER COLUMN created_at SET DEFAULT now();
    END IF;
    IF (SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema()
            AND table_name = 'bss_outbox' AND column_name = 'created_at') = 'bigint' THEN
        ALTER TABLE bss_outbox ALTER COLUMN created_at DROP DEFAULT,
            ALTER COLUMN created_at TYPE timestamptz USING to_timestamp(created_at),
            ALTER COLUMN created_at SET DEFAULT now();
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS bss_requests_created ON bss_requests (created_at);
CREATE INDEX IF NOT EXISTS bss_outbox_xid ON bss_outbox (xid, seq);
CREATE INDEX IF NOT EXISTS bss_outbox_created ON bss_outbox (created_at);
";

/// Creates or upgrades the tables and forgets request records older than [`REQUEST_TTL`]
/// by the database's clock.
pub(super) async fn create(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(SCHEMA).await.map_err(pg_error)?;
    let ttl = REQUEST_TTL.as_secs_f64();
    tx.execute(
        "DELETE FROM bss_requests WHERE created_at < now() - make_interval(secs => $1)",
        &[&ttl],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}
