//! Several nodes: socketioxide's Redis adapter (`socketioxide-redis`) links the nodes'
//! socket.io layers, over a pub/sub driver of our own on the `fred` client ([`BusDriver`]).
//! It carries the broadcasts of writes whose store feed is local to the node (SQLite, see
//! [`crate::store::Store::changes_are_local`]) or that has none: the PostgreSQL store's writes
//! are broadcast by every node from the database's own feed (see [`crate::store::change`]).
//!
//! Why not the crate's drivers as they are: its `redis` driver holds one connection and never
//! reconnects, so a Redis restart leaves a node deaf; its `fred` driver does not resubscribe
//! after a reconnection either, reads fred's message channel at its default capacity (32) and
//! drops what overflows with only a log line. This driver:
//! - reconnects forever (fred's reconnect policy) and resubscribes every channel on each
//!   reconnection;
//! - gives each subscription and fred's message channel room for bursts ([`INCOMING_BUFFER`])
//!   and counts what is dropped anyway ([`BusStats`], shown at `/_bss/stats`);
//! - fails a publish at once while Redis is away instead of queueing it for the reconnection,
//!   so that the caller can deliver to its own sockets without waiting (see [`crate::live`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{Config, Options, ReconnectPolicy};
use fred::types::RespVersion;
use serde_json::{json, Value};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::{broadcast, mpsc};

/// Messages from other nodes that may wait, per subscribed channel and in fred's own channel,
/// before more are dropped (socketioxide-redis's default is 1,024; one node's burst of writes
/// is more than that).
pub const INCOMING_BUFFER: usize = 65_536;
/// How long a publish may wait for Redis before it counts as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
/// Delay before the first reconnection attempt, and the most between two.
const RECONNECT_MIN_MS: u32 = 50;
const RECONNECT_MAX_MS: u32 = 2_000;

/// Counters of the bus since the process started.
#[derive(Debug, Default)]
pub struct BusStats {
    dropped: AtomicU64,
    publish_failures: AtomicU64,
    reconnections: AtomicU64,
}

impl BusStats {
    /// `{"dropped", "publishFailures", "reconnections"}`: messages from other nodes lost because
    /// a buffer was full, publishes that failed (their broadcast reached only this node's
    /// sockets), and reconnections to Redis.
    pub fn to_json(&self) -> Value {
        json!({
            "dropped": self.dropped.load(Ordering::Relaxed),
            "publishFailures": self.publish_failures.load(Ordering::Relaxed),
            "reconnections": self.reconnections.load(Ordering::Relaxed),
        })
    }

    /// Counts a publish that failed.
    pub fn publish_failed(&self) {
        self.publish_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// What can go wrong connecting to the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The url is not a Redis url fred understands.
    #[error("invalid adapter url {url}: {reason}")]
    Url {
        /// The url as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Redis did not answer.
    #[error("cannot reach redis at {url}: {reason}")]
    Unreachable {
        /// The url as given.
        url: String,
        /// Why.
        reason: String,
    },
}

/// `url` with `protocol=resp3`, which socketioxide-redis needs, added when missing.
pub fn with_resp3(url: &str) -> String {
    if url.contains("protocol=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// The pub/sub driver the Redis adapter runs on; see the module docs.
#[derive(Clone)]
pub struct BusDriver {
    client: SubscriberClient,
    handlers: Handlers,
    stats: Arc<BusStats>,
}

impl BusDriver {
    /// Connects to Redis at `url` (`redis://…`, `rediss://…`, `redis+unix:///path`), failing
    /// at once if it does not answer; later losses are reconnected forever.
    pub async fn connect(url: &str, stats: Arc<BusStats>) -> Result<Self, BusError> {
        let url_error = |e: fred::error::Error| BusError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let mut config = Config::from_url(&with_resp3(url)).map_err(url_error)?;
        // fred does not read the `protocol` parameter itself.
        config.version = RespVersion::RESP3;
        config.fail_fast = true;
        let client = fred::types::Builder::from_config(config)
            .with_performance_config(|perf| perf.broadcast_channel_capacity = INCOMING_BUFFER)
            .with_connection_config(|conn| conn.connection_timeout = PUBLISH_TIMEOUT)
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .build_subscriber_client()
            .map_err(url_error)?;
        let handlers = Handlers::default();
        tokio::spawn(dispatch(
            client.message_rx(),
            handlers.clone(),
            stats.clone(),
        ));
        client.init().await.map_err(|e| BusError::Unreachable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        // After every reconnection, subscribe again to every channel (Redis forgot them),
        // and only then count it: a reconnection counted in the stats is a node that hears
        // the others again. The task lives as long as the client (its handle is dropped).
        let (resubscriber, counted) = (client.clone(), stats.clone());
        drop(client.on_reconnect(move |server| {
            let (client, stats) = (resubscriber.clone(), counted.clone());
            async move {
                // Only sharded channels are used; fred's `resubscribe_all` would also send
                // SUBSCRIBE and PSUBSCRIBE with no arguments, which Redis refuses.
                let channels: Vec<String> = client
                    .tracked_shard_channels()
                    .into_iter()
                    .map(|c| c.to_string())
                    .collect();
                match client.ssubscribe(channels).await {
                    Ok(()) => {
                        stats.reconnections.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%server, "reconnected to redis; subscriptions restored");
                    }
                    Err(error) => tracing::error!(%error, "resubscribing after a reconnection"),
                }
                Ok(())
            }
        }));
        Ok(Self {
            client,
            handlers,
            stats,
        })
    }
}

/// Hands each message fred received to the stream subscribed to its channel, counting what
/// cannot be delivered because a buffer is full.
async fn dispatch(
    mut rx: broadcast::Receiver<fred::types::Message>,
    handlers: Handlers,
    stats: Arc<BusStats>,
) {
    loop {
        match rx.recv().await {
            Ok(message) => {
                let channel = message.channel.to_string();
                let Some(data) = message.value.into_owned_bytes() else {
                    continue;
                };
                let sender = handlers.read().expect("handlers").get(&channel).cloned();
                if let Some(sender) = sender {
                    if let Err(mpsc::error::TrySendError::Full(_)) =
                        sender.try_send((channel, data))
                    {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "bus: a message from another node was dropped (buffer full)"
                        );
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                stats.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(n, "bus: messages from other nodes were dropped (lagged)");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl Driver for BusDriver {
    type Error = fred::error::Error;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Self::Error> {
        let options = Options {
            fail_fast: true,
            timeout: Some(PUBLISH_TIMEOUT),
            ..Options::default()
        };
        // While reconnecting, fred would queue the command until Redis is back (or the
        // timeout): fail at once instead, so that the reply is not held up.
        if !self.client.is_connected() {
            self.stats.publish_failed();
            return Err(fred::error::Error::new(
                fred::error::ErrorKind::IO,
                "not connected to redis",
            ));
        }
        let published = self
            .client
            .with_options(&options)
            .spublish::<u64, _, _>(chan, val)
            .await;
        if published.is_err() {
            self.stats.publish_failed();
        }
        published.map(|_| ())
    }

    async fn subscribe(
        &self,
        chan: String,
        _size: usize,
    ) -> Result<MessageStream<ChanItem>, Self::Error> {
        let (tx, rx) = mpsc::channel(INCOMING_BUFFER);
        // Registered before subscribing, so that no message arrives with nowhere to go.
        self.handlers
            .write()
            .expect("handlers")
            .insert(chan.clone(), tx);
        if let Err(error) = self.client.ssubscribe(chan.as_str()).await {
            self.handlers.write().expect("handlers").remove(&chan);
            return Err(error);
        }
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Self::Error> {
        self.handlers.write().expect("handlers").remove(&chan);
        self.client.sunsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Self::Error> {
        let (_, count): (String, u16) = self.client.pubsub_shardnumsub(chan).await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp3_is_added_when_missing() {
        assert_eq!(
            with_resp3("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379?protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis+unix:///run/redis.sock?db=1"),
            "redis+unix:///run/redis.sock?db=1&protocol=resp3"
        );
        assert_eq!(
            with_resp3("redis://h?protocol=resp3"),
            "redis://h?protocol=resp3"
        );
    }
}
