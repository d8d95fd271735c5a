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
//!   `created_at` from the database's clock for the sweep; `bss_outbox_swept` is the sweep's
//!   watermark, one row (see [`super::sweep`]).

use deadpool_postgres::Pool;

use super::{pg_error, pool_error};
use crate::store::StoreError;

/// Key of the advisory lock held while the schema is created (any constant shared by nodes).
const SCHEMA_LOCK: i64 = 0x6273_735f_7363_6865; // "bss_sche"

/// The tables as this version creates them.
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
CREATE TABLE IF NOT EXISTS bss_outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    payload TEXT NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bss_outbox_swept (
    one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
    xid xid8 NOT NULL,
    seq BIGINT NOT NULL
);
INSERT INTO bss_outbox_swept (xid, seq) VALUES ('0', 0) ON CONFLICT DO NOTHING;
";

/// Brings the tables of an older server up to date. Each ALTER runs only when needed: an
/// ALTER locks its table out, also when it changes nothing, at every node's start.
/// - Before versions: no `bss_documents.version` (its documents count as version 1), no
///   `bss_requests.version`/`conflict`.
/// - Before the lock-free change feed: no `bss_outbox.xid`, and both tables kept `created_at`
///   as the writing node's epoch seconds.
const UPGRADE: &str = "
DO $$
DECLARE
    missing text[] := ARRAY(
        SELECT t || '.' || c FROM (VALUES ('bss_documents', 'version'),
            ('bss_requests', 'version'), ('bss_requests', 'conflict'), ('bss_outbox', 'xid'))
            AS wanted(t, c)
        WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns
            WHERE table_schema = current_schema() AND table_name = t AND column_name = c));
BEGIN
    IF 'bss_documents.version' = ANY(missing) THEN
        ALTER TABLE bss_documents ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
    END IF;
    IF 'bss_requests.version' = ANY(missing) THEN
        ALTER TABLE bss_requests ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
    END IF;
    IF 'bss_requests.conflict' = ANY(missing) THEN
        ALTER TABLE bss_requests ADD COLUMN conflict BOOLEAN NOT NULL DEFAULT false;
    END IF;
    IF 'bss_outbox.xid' = ANY(missing) THEN
        ALTER TABLE bss_outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
    END IF;
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

/// Creates the tables or brings them up to date (request records expire on the sweeper's
/// schedule, see [`super::sweep`]).
pub(super) async fn create(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(SCHEMA).await.map_err(pg_error)?;
    tx.batch_execute(UPGRADE).await.map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)
}
