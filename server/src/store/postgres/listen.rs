//! The change feed of the PostgreSQL store: one connection per node that LISTENs to the
//! changes every node's writer NOTIFYs inside its write transactions (see [`super::write`]).
//!
//! - A NOTIFY is delivered at COMMIT, to every listening session, in commit order, whether or
//!   not the node that committed still runs: a write's broadcast shares its fate.
//! - Each change is also kept in `bss_outbox` under its `seq` (allocated under the nodes'
//!   shared write lock, so `seq` order is commit order). A record too large for a NOTIFY
//!   payload is sent as its `seq` alone and read from there; a listener that lost its
//!   connection reads there what was committed meanwhile once it listens again.
//! - `seq` deduplicates: a change is handed on only when its `seq` is above the last one
//!   handed on, so a change both caught up and notified is delivered once.
//! - Outbox rows older than [`OUTBOX_TTL`] are swept by every node's listener.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::pg_error;
use crate::store::change::{Change, Origin};
use crate::store::StoreError;

/// The NOTIFY channel of changes.
pub(super) const CHANNEL: &str = "bss_changes";
/// Largest record sent inline in a NOTIFY payload (PostgreSQL refuses 8,000 bytes or more);
/// a larger one is read from `bss_outbox`.
pub(super) const INLINE_MAX: usize = 7_000;
/// How long a change stays in `bss_outbox` for listeners that catch up after a lost connection.
const OUTBOX_TTL: Duration = Duration::from_secs(600);
/// How often each listener sweeps expired outbox rows.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Delay before listening again after a lost connection, doubled up to the second bound.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

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
    /// The model's version after the write (0 in records written before versions).
    #[serde(default)]
    version: i64,
}

/// The JSON record of a change, written by node `node`. `item` is the stored document's JSON
/// text, embedded as is (it is not parsed and serialised again); `version` the model's version
/// after the write.
#[allow(clippy::too_many_arguments)] // the record's fields, each a plain value
pub(super) fn record(
    node: &str,
    origin: Option<&Origin>,
    owner: &str,
    method: &str,
    collection: &str,
    id: &str,
    item: &str,
    version: i64,
) -> String {
    let text = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let origin = match origin {
        Some(o) => format!("{{\"ns\":{},\"sid\":{}}}", text(&o.ns), text(&o.sid)),
        None => "null".into(),
    };
    format!(
        "{{\"node\":{},\"origin\":{origin},\"owner\":{},\"method\":{},\"collection\":{},\"id\":{},\"item\":{item},\"version\":{version}}}",
        text(node),
        text(owner),
        text(method),
        text(collection),
        text(id),
    )
}

/// Listens until `feed` is dropped, reconnecting after every loss.
pub(super) async fn run(
    config: tokio_postgres::Config,
    node: String,
    after: i64,
    feed: mpsc::UnboundedSender<Change>,
) {
    let mut listener = Listener {
        node,
        feed,
        last: after,
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
    feed: mpsc::UnboundedSender<Change>,
    /// The last `seq` handed on (at first, the last one committed before the store
    /// connected: the feed starts after it).
    last: i64,
}

impl Listener {
    /// One connection: LISTEN, catch up from the outbox, then hand on notifications until the
    /// connection ends (`Ok` with why) or fails before it listened (`Err`).
    async fn session(&mut self, config: &tokio_postgres::Config) -> Result<StoreError, StoreError> {
        let (client, mut connection) = config.connect(NoTls).await.map_err(pg_error)?;
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
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(pg_error)?;
        // Everything committed before LISTEN took effect and after the last change handed on.
        let missed = client
            .query(
                "SELECT seq, payload FROM bss_outbox WHERE seq > $1 ORDER BY seq",
                &[&self.last],
            )
            .await
            .map_err(pg_error)?;
        if !missed.is_empty() {
            tracing::info!(
                count = missed.len(),
                "change feed: caught up from the outbox"
            );
        }
        for row in missed {
            self.hand_on(row.get(0), row.get(1));
        }
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Some(payload) => {
                        if let Err(error) = self.on_note(&client, &payload).await {
                            return Ok(error);
                        }
                    }
                    None => break,
                },
                _ = sweep.tick() => {
                    // The database's clock: created_at is a timestamptz (see the schema).
                    let ttl = OUTBOX_TTL.as_secs_f64();
                    if let Err(error) = client
                        .execute(
                            "DELETE FROM bss_outbox
                             WHERE created_at < now() - make_interval(secs => $1)",
                            &[&ttl],
                        )
                        .await
                    {
                        return Ok(pg_error(error));
                    }
                }
            }
        }
        Ok(driver
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| StoreError::Unavailable("connection closed".into())))
    }

    /// A notification: `<seq> <record>`, or `<seq>` alone for a record kept in the outbox.
    async fn on_note(&mut self, client: &Client, payload: &str) -> Result<(), StoreError> {
        let (seq, inline) = match payload.split_once(' ') {
            Some((seq, record)) => (seq, Some(record)),
            None => (payload, None),
        };
        let Ok(seq) = seq.parse::<i64>() else {
            tracing::error!(payload, "change feed: malformed notification");
            return Ok(());
        };
        if seq <= self.last {
            return Ok(()); // already handed on (caught up)
        }
        match inline {
            Some(record) => self.hand_on(seq, record),
            None => {
                let row = client
                    .query_opt("SELECT payload FROM bss_outbox WHERE seq = $1", &[&seq])
                    .await
                    .map_err(pg_error)?;
                match row {
                    Some(row) => self.hand_on(seq, row.get(0)),
                    None => tracing::error!(seq, "change feed: record already swept"),
                }
            }
        }
        Ok(())
    }

    /// Hands change `seq` on, unless it was already.
    fn hand_on(&mut self, seq: i64, record: &str) {
        if seq <= self.last {
            return;
        }
        self.last = seq;
        let record: Record = match serde_json::from_str(record) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(seq, %error, "change feed: malformed record");
                return;
            }
        };
        let origin = record.origin.filter(|_| record.node == self.node);
        let _ = self.feed.send(Change {
            seq,
            origin,
            owner: record.owner,
            method: record.method,
            collection: record.collection,
            id: record.id,
            item: record.item,
            version: record.version,
        });
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
            3,
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
        assert_eq!(parsed.version, 3);
        let rest = record("n", None, "", "delete", "/c", "a", "{}", 2);
        assert!(serde_json::from_str::<Record>(&rest)
            .unwrap()
            .origin
            .is_none());
    }

    #[test]
    fn each_change_is_handed_on_once_and_only_this_nodes_keep_their_origin() {
        let (feed, mut changes) = mpsc::unbounded_channel();
        let mut listener = Listener {
            node: "me".into(),
            feed,
            last: 1,
        };
        let origin = Origin {
            ns: "/".into(),
            sid: "s".into(),
        };
        let mine = record("me", Some(&origin), "", "create", "/c", "2", "{}", 1);
        let theirs = record("other", Some(&origin), "", "create", "/c", "3", "{}", 1);
        // 1 was committed before the store connected; 2 arrives notified and caught up.
        for (seq, text) in [(1, &mine), (2, &mine), (2, &mine), (3, &theirs), (2, &mine)] {
            listener.hand_on(seq, text);
        }
        let first = changes.try_recv().unwrap();
        assert_eq!((first.seq, first.origin), (2, Some(origin)));
        let second = changes.try_recv().unwrap();
        assert_eq!((second.seq, second.origin), (3, None));
        assert!(changes.try_recv().is_err(), "nothing twice");
    }
}
