//! Write load for the multi-node tests: one socket keeps [`WINDOW`] creates in flight, each
//! with its own request id, until told to stop; then what was acknowledged (with the model
//! each ack returned) and what was left unanswered (error replies, a closed connection), for
//! a client to re-send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{req_id, Client, WAIT};

/// Creates in flight on the socket at any time.
pub const WINDOW: usize = 16;
/// How long the load waits for its last answers once stopped (a node that was frozen may
/// have a batch to finish).
const DRAIN: Duration = Duration::from_secs(30);

/// A running load (see the module doc).
pub struct WriteLoad {
    /// Creates acknowledged so far, readable while the load runs.
    pub acked: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<LoadDone>,
}

/// What a load left once stopped.
#[derive(Debug, Default)]
pub struct LoadDone {
    /// Request id -> the model its ack returned.
    pub acked: HashMap<String, Value>,
    /// Request id and item of every create that got no successful answer.
    pub unanswered: Vec<(String, Value)>,
}

impl WriteLoad {
    /// Starts creating `{"r": "<tag>-<n>"}` in `collection` on the node at `port`, with request
    /// id `<tag>-<n>`.
    pub fn start(port: u16, collection: &str, tag: &str) -> Self {
        let acked = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let (collection, tag, counter) = (collection.to_owned(), tag.to_owned(), acked.clone());
        let task = tokio::spawn(async move {
            let ws = Client::connect(port).await.into_ws();
            run(ws, &collection, &tag, counter, stopped).await
        });
        Self { acked, stop, task }
    }

    /// Waits until at least `n` creates were acknowledged (failing after the usual wait).
    pub async fn wait_for_acks(&self, n: u64) {
        let deadline = Instant::now() + WAIT;
        while self.acked.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "{n} creates acknowledged in time"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops sending, waits for the answers still due and returns what the load left.
    pub async fn finish(self) -> LoadDone {
        let _ = self.stop.send(true);
        self.task.await.expect("the load's task")
    }
}

async fn run(
    ws: super::Ws,
    collection: &str,
    tag: &str,
    counter: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) -> LoadDone {
    let (mut tx, mut rx) = ws.split();
    let mut in_flight: HashMap<u64, (String, Value)> = HashMap::new();
    let mut done = LoadDone::default();
    let (mut next, mut drain_until) = (0u64, None);
    loop {
        while drain_until.is_none() && in_flight.len() < WINDOW {
            next += 1;
            let request_id = format!("{tag}-{next}");
            let item = json!({ "r": request_id });
            let arg = req_id(collection, Some(item.clone()), &request_id);
            let frame = format!("42{next}{}", json!(["create", arg]));
            in_flight.insert(next, (request_id, item));
            if tx.feed(Message::text(frame)).await.is_err() {
                break;
            }
        }
        let _ = tx.flush().await;
        if drain_until.is_some() && in_flight.is_empty() {
            break;
        }
        let far = Instant::now() + DRAIN;
        let message = tokio::select! {
            message = rx.next() => message,
            _ = stopped.changed(), if drain_until.is_none() => {
                drain_until = Some(Instant::now() + DRAIN);
                continue;
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() => None,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
            Some(Ok(_)) => continue,
            _ => break, // closed, or no answer in time: what is in flight is unanswered
        };
        if text == "2" {
            let _ = tx.send(Message::text("3")).await;
        } else if let Some((id, reply)) = parse_ack(&text) {
            let Some((request_id, item)) = in_flight.remove(&id) else {
                continue;
            };
            if reply[0].is_null() {
                done.acked.insert(request_id, reply[1].clone());
                counter.fetch_add(1, Ordering::Relaxed);
            } else {
                done.unanswered.push((request_id, item));
            }
        }
    }
    done.unanswered.extend(in_flight.into_values());
    done
}

/// `43<id>[...]` -> (id, the ack's arguments).
pub fn parse_ack(frame: &str) -> Option<(u64, Value)> {
    let rest = frame.strip_prefix("43")?;
    let split = rest.find('[')?;
    let id = rest[..split].parse().ok()?;
    Some((id, serde_json::from_str(&rest[split..]).ok()?))
}

/// Sends the create `arg` on `client` until it succeeds (a node may refuse it while the
/// database recovers from the other node's aborted transactions); the stored model.
pub async fn create_until_acked(client: &mut Client, arg: Value) -> Value {
    for _ in 0..50 {
        let reply = client.ack("create", arg.clone()).await;
        if reply[0].is_null() {
            return reply[1].clone();
        }
        eprintln!("create refused, retrying: {reply:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("create {arg} never succeeded");
}
