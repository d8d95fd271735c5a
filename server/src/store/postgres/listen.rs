//! The change feed of the PostgreSQL store: one connection per node that LISTENs to the
//! changes every node's writer NOTIFYs inside its write transactions (see [`super::write`]).
//!
//! - A NOTIFY is delivered at COMMIT, to every listening session, whether or not the node
//!   that committed still runs: a write's broadcast shares its fate.
//! - Each change is also kept in `bss_outbox` under `(xid, seq)`, its transaction's id and its
//!   sequence number ([`note`]). A record too large for a NOTIFY payload is sent
//!   as its place alone and read from there.
//! - Nodes commit at the same time with no lock between them, so a change with a lower `seq`
//!   can commit after a higher one. The feed never skips it: where it stands is a
//!   [`cursor::Cursor`], moved only up to the database's xmin (below which every transaction
//!   has ended), and the notified rows above it deduplicate what the outbox read finds.
//! - Every [`POLL_EVERY`] the listener reads the outbox up to the xmin: it is the health
//!   check of the connection (no answer within [`HEALTH_TIMEOUT`] and it connects again; the
//!   socket also has TCP keepalive), and it finds what no notification brought (committed
//!   before LISTEN took effect, or while the connection was lost).
//! - Rows older than the outbox's retention are swept ([`super::sweep`]), which raises a
//!   watermark; a listener behind it lost changes and says so ([`FeedItem::Resync`]).

mod cursor;
mod note;

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, IsolationLevel, NoTls, Row};

use super::pg_error;
use crate::store::change::{Change, FeedItem, Origin};
use crate::store::StoreError;
use cursor::Cursor;
pub(crate) use cursor::Pos;
pub use note::keep_and_notify;
use note::CHANNEL;

/// How often the listener reads the outbox up to the xmin (also its health check).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a query of the listener may take before its connection is taken for dead.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive of the listener's connection: first probe after this much silence...
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// ...then one every second, and the link is dead after three unanswered.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
const KEEPALIVE_RETRIES: u32 = 3;
/// The listener's `application_name` (operators and tests find its backend by it).
pub const APPLICATION_NAME: &str = "bss-server-feed";
/// Rows read per query when the outbox holds rows no notification brought.
const PAGE_ROWS: i64 = 1_000;
/// Delay before listening again after a lost connection, doubled up to the second bound.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Where the outbox stands, and how many rows lie between `$1/$2` (a [`Pos`]) and it: the
/// xmin, the sweep's watermark, the count.
const POLL: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
        w.xid::text::bigint, w.seq,
        (SELECT count(*) FROM bss_outbox
          WHERE (xid, seq) > ($1::bigint::text::xid8, $2::bigint)
            AND xid < pg_snapshot_xmin(pg_current_snapshot()))
     FROM bss_outbox_swept w";
/// The rows after `$1/$2` below transaction `$3`, in order, a page at a time.
const PAGE: &str = "SELECT xid::text::bigint, seq, payload FROM bss_outbox
     WHERE (xid, seq) > ($1::bigint::text::xid8, $2::bigint) AND xid < $3::bigint::text::xid8
     ORDER BY xid, seq LIMIT $4";
/// One row's record (a notification that carried only the row's place).
const PAYLOAD: &str = "SELECT payload FROM bss_outbox WHERE seq = $1";

/// Where a feed that starts now starts: after every transaction that has ended.
pub(super) async fn start(client: &Client) -> Result<Pos, StoreError> {
    let row = client
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            &[],
        )
        .await
        .map_err(pg_error)?;
    Ok(Pos::before_xid(row.get(0)))
}

/// A change as the writer records it (`node` is the writing process's id).
#[derive(Debug, Deserialize)]
struct Record {
    node: String,
    origin: Option<Origin>,
    owner: String,
    method: String,
    collection: String,
    id: String,
    item: Value,
    /// The document's version after the write (absent from records of older writers).
    #[serde(default)]
    version: i64,
}

/// The JSON record of a change, written by node `node`. `item` is the stored document's JSON
/// text, embedded as is (it is not parsed and serialised again).
pub(super) fn record(
    node: &str,
    origin: Option<&Origin>,
    owner: &str,
    method: &str,
    collection: &str,
    id: &str,
    item: &str,
) -> String {
    let text = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let origin = match origin {
        Some(o) => format!("{{\"ns\":{},\"sid\":{}}}", text(&o.ns), text(&o.sid)),
        None => "null".into(),
    };
    format!(
        "{{\"node\":{},\"origin\":{origin},\"owner\":{},\"method\":{},\"collection\":{},\"id\":{},\"item\":{item}}}",
        text(node),
        text(owner),
        text(method),
        text(collection),
        text(id),
    )
}

/// Listens until `feed` is dropped, reconnecting after every loss; the feed starts after
/// `start`.
pub(super) async fn run(
    mut config: tokio_postgres::Config,
    node: String,
    start: Pos,
    feed: mpsc::UnboundedSender<FeedItem>,
) {
    config
        .application_name(APPLICATION_NAME)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
    let mut listener = Listener {
        node,
        feed,
        cursor: Cursor::new(start),
    };
    let mut delay = RETRY_MIN;
    loop {
        let listened = listener.session(&config).await;
        if listener.feed.is_closed() {
            return;
        }
        match listened {
            // It listened before it was lost: retry soon.
            Ok(error) => {
                tracing::warn!(%error, "change feed: connection lost; listening again");
                delay = RETRY_MIN;
            }
            Err(error) => tracing::warn!(%error, "change feed: cannot listen yet"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
    }
}

struct Listener {
    /// This process's id: changes it wrote carry their origin socket.
    node: String,
    feed: mpsc::UnboundedSender<FeedItem>,
    cursor: Cursor,
}

impl Listener {
    /// One connection: LISTEN, read the outbox, then hand on notifications and read the
    /// outbox every [`POLL_EVERY`] until the connection ends or stops answering (`Ok` with
    /// why) or fails before it listened (`Err`).
    async fn session(&mut self, config: &tokio_postgres::Config) -> Result<StoreError, StoreError> {
        let (mut client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        // The connection must be polled for the client to work; its notifications come out
        // of the same poll.
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(note))) => {
                        if notes_tx.send(note.payload().to_owned()).is_err() {
                            return None;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Some(pg_error(error)),
                    None => return None,
                }
            }
        });
        let _abort = AbortOnDrop(driver.abort_handle());
        timed(client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
        // Notifications flow from here on (they wait in `notes`). What was committed before
        // is read first, so that it is not handed on after later changes it preceded.
        if let Err(error) = self.poll(&mut client).await {
            return Ok(error);
        }
        let start = tokio::time::Instant::now() + POLL_EVERY;
        let mut poll = tokio::time::interval_at(start, POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let done = tokio::select! {
                note = notes.recv() => match note {
                    Some(payload) => self.on_note(&client, &payload).await,
                    None => break,
                },
                _ = poll.tick() => self.poll(&mut client).await,
            };
            if let Err(error) = done {
                return Ok(error);
            }
        }
        Ok(driver
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| StoreError::Unavailable("connection closed".into())))
    }

    /// Reads the outbox up to the xmin: usually only counts the rows there, which the
    /// notifications handed on already; else reads them ([`Listener::read_outbox`]).
    async fn poll(&mut self, client: &mut Client) -> Result<(), StoreError> {
        let at = self.cursor.at();
        let row = timed(client.query_one(POLL, &[&at.xid, &at.seq])).await?;
        let (xmin, count) = self.outbox_state(&row);
        if count == self.cursor.notified_below(xmin) {
            self.cursor.read_to(xmin);
            return Ok(());
        }
        self.read_outbox(client).await
    }

    /// The xmin and count of a [`POLL`] row, after noting its watermark.
    fn outbox_state(&mut self, row: &Row) -> (i64, usize) {
        let watermark = Pos {
            xid: row.get(1),
            seq: row.get(2),
        };
        if self.cursor.swept_to(watermark) {
            tracing::warn!(
                ?watermark,
                "change feed: changes were swept before this node read them; resync"
            );
            let _ = self.feed.send(FeedItem::Resync);
        }
        let count: i64 = row.get(3);
        (row.get(0), count.max(0) as usize)
    }

    /// Hands on the rows up to the xmin that no notification brought, in `(xid, seq)` order,
    /// in one snapshot (so that the sweep cannot delete rows between two pages unnoticed).
    async fn read_outbox(&mut self, client: &mut Client) -> Result<(), StoreError> {
        let tx = timed(
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )
        .await?;
        let at = self.cursor.at();
        let row = timed(tx.query_one(POLL, &[&at.xid, &at.seq])).await?;
        let (xmin, _) = self.outbox_state(&row);
        let mut handed = 0;
        loop {
            let at = self.cursor.at();
            let rows = timed(tx.query(PAGE, &[&at.xid, &at.seq, &xmin, &PAGE_ROWS])).await?;
            for row in &rows {
                let pos = Pos {
                    xid: row.get(0),
                    seq: row.get(1),
                };
                if self.cursor.read(pos) {
                    self.hand_on(pos, row.get(2));
                    handed += 1;
                }
            }
            if (rows.len() as i64) < PAGE_ROWS {
                break;
            }
        }
        self.cursor.read_to(xmin);
        timed(tx.commit()).await?;
        if handed > 0 {
            tracing::info!(count = handed, "change feed: caught up from the outbox");
        }
        Ok(())
    }

    /// A notification: `<xid> <seq> <record>`, or `<xid> <seq>` for a record kept in the
    /// outbox only.
    async fn on_note(&mut self, client: &Client, payload: &str) -> Result<(), StoreError> {
        let Some((pos, inline)) = note::parse(payload) else {
            tracing::error!(payload, "change feed: malformed notification");
            return Ok(());
        };
        if !self.cursor.notified(pos) {
            return Ok(()); // handed on already (read from the outbox)
        }
        match inline {
            Some(record) => self.hand_on(pos, record),
            None => match timed(client.query_opt(PAYLOAD, &[&pos.seq])).await? {
                Some(row) => self.hand_on(pos, row.get(0)),
                None => {
                    tracing::warn!(?pos, "change feed: record swept before it was read; resync");
                    let _ = self.feed.send(FeedItem::Resync);
                }
            },
        }
        Ok(())
    }

    /// Hands the change at `pos` on.
    fn hand_on(&mut self, pos: Pos, record: &str) {
        let record: Record = match serde_json::from_str(record) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(?pos, %error, "change feed: malformed record");
                return;
            }
        };
        let origin = record.origin.filter(|_| record.node == self.node);
        let _ = self.feed.send(FeedItem::Change(Change {
            seq: pos.seq,
            origin,
            owner: record.owner,
            method: record.method,
            collection: record.collection,
            id: record.id,
            item: record.item,
            version: record.version,
        }));
    }
}

/// `query`, or [`StoreError::Unavailable`] when the database does not answer within
/// [`HEALTH_TIMEOUT`] (a half-open connection never would).
async fn timed<T>(
    query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(HEALTH_TIMEOUT, query).await {
        Ok(result) => result.map_err(pg_error),
        Err(_) => Err(StoreError::Unavailable(format!(
            "the change feed's connection did not answer within {HEALTH_TIMEOUT:?}"
        ))),
    }
}

/// Stops the connection's driver task when the session ends.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_embed_the_document_and_read_back() {
        let origin = Origin {
            ns: "/".into(),
            sid: "s\"1".into(),
        };
        let text = record(
            "n1",
            Some(&origin),
            "alice",
            "create",
            "/api/todos",
            "7",
            "{\"id\":7,\"t\":\"x\"}",
        );
        let parsed: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.origin, Some(origin));
        assert_eq!(
            (
                parsed.node.as_str(),
                parsed.owner.as_str(),
                parsed.id.as_str()
            ),
            ("n1", "alice", "7")
        );
        assert_eq!(parsed.item, serde_json::json!({"id": 7, "t": "x"}));
        let rest = record("n", None, "", "delete", "/c", "a", "{}");
        assert!(serde_json::from_str::<Record>(&rest)
            .unwrap()
            .origin
            .is_none());
    }
}
