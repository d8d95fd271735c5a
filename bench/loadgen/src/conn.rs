//! One socket.io connection of the load generator: the handshake, then a loop of requests,
//! one in flight at a time, alternating `create` on the collection and `read` of the model it
//! created last.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::frame::{self, Incoming};

/// An open socket.io session over one WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What every connection does once the run starts.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Collection endpoint, e.g. `/api/loadgen`.
    pub endpoint: String,
    /// Extra bytes of padding in each created item.
    pub pad: String,
    /// Time between two requests of this connection (rate mode), or `None` to go flat out.
    pub interval: Option<Duration>,
    /// Longest wait for one reply before the connection counts as failed.
    pub timeout: Duration,
    /// Unique to this run: request ids must not repeat across runs against one server, or
    /// the server's idempotency log would replay old results.
    pub run_id: String,
    /// Only creates, no reads in between (the write path's throughput alone).
    pub creates_only: bool,
}

/// What one connection measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of every completed create, microseconds.
    pub create_us: Vec<u32>,
    /// Latency of every completed read, microseconds.
    pub read_us: Vec<u32>,
    /// Completed creates.
    pub creates: u64,
    /// Completed reads.
    pub reads: u64,
    /// Error replies (`43<id>[{...}]`) and failures.
    pub errors: u64,
    /// Why the connection stopped early, if it did.
    pub failure: Option<String>,
    /// When each successful request was answered (for a timeline of the rate).
    pub done_at: Vec<Instant>,
}

impl Outcome {
    /// Records one successful request that took `since.elapsed()`.
    pub fn record(&mut self, create: bool, since: Instant) {
        let now = Instant::now();
        self.done_at.push(now);
        let us = (now - since).as_micros().min(u32::MAX as u128) as u32;
        if create {
            self.creates += 1;
            self.create_us.push(us);
        } else {
            self.reads += 1;
            self.read_us.push(us);
        }
    }
}

/// Opens the WebSocket and completes the Engine.IO open + namespace CONNECT handshake.
pub async fn open(url: &str, timeout: Duration) -> Result<Ws, String> {
    let deadline = Instant::now() + timeout;
    let connect = tokio_tungstenite::connect_async_with_config(url, None, true);
    let (mut ws, _) = timeout_at(deadline, connect)
        .await
        .map_err(|_| "connect timeout".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut opened = false;
    loop {
        match next_text(&mut ws, deadline).await? {
            Incoming::Open if !opened => {
                opened = true;
                ws.send(Message::text("40"))
                    .await
                    .map_err(|e| format!("send: {e}"))?;
            }
            Incoming::Connected if opened => return Ok(ws),
            Incoming::ConnectError(why) => return Err(format!("connect_error {why}")),
            Incoming::Ping => ws
                .send(Message::text("3"))
                .await
                .map_err(|e| format!("send: {e}"))?,
            Incoming::Close => return Err("closed during handshake".into()),
            _ => {}
        }
    }
}

/// Issues requests from `first` until `end`, then returns what it measured.
pub async fn run(ws: &mut Ws, conn: usize, plan: &Plan, first: Instant, end: Instant) -> Outcome {
    let mut out = Outcome::default();
    let mut ack = 0u64;
    let mut last_id: Option<i64> = None;
    let mut next = first;
    loop {
        match plan.interval {
            Some(interval) => {
                if next >= end {
                    break;
                }
                sleep_until(next).await;
                next += interval;
            }
            None if Instant::now() >= end => break,
            None => {}
        }
        // In rate mode latency counts from the scheduled time, so a slow server cannot hide
        // its queueing by slowing the generator down (coordinated omission).
        let t0 = match plan.interval {
            Some(interval) => (next - interval).min(Instant::now()),
            None => Instant::now(),
        };
        ack += 1;
        let (text, create) = next_request(plan, conn, ack, last_id);
        if let Err(e) = ws.send(Message::text(text)).await {
            out.failure = Some(format!("send: {e}"));
            out.errors += 1;
            break;
        }
        match await_ack(ws, ack, Instant::now() + plan.timeout).await {
            Ok((true, id)) => {
                out.record(create, t0);
                if create {
                    last_id = id.or(last_id);
                }
            }
            Ok((false, _)) => {
                out.errors += 1;
                if out.failure.is_none() {
                    out.failure = Some(format!(
                        "error reply to {}",
                        if create { "create" } else { "read" }
                    ));
                }
            }
            Err(e) => {
                out.failure = Some(e);
                out.errors += 1;
                break;
            }
        }
    }
    out
}

/// The frame of request number `ack` of connection `conn`: a `create`, or every other time
/// (once an id is known, unless the plan is creates only) a `read` of the model created last.
/// Returns it and whether it creates.
pub fn next_request(plan: &Plan, conn: usize, ack: u64, last_id: Option<i64>) -> (String, bool) {
    let request_id = format!("lg-{}-{conn}-{ack}", plan.run_id);
    match last_id {
        Some(id) if ack.is_multiple_of(2) && !plan.creates_only => {
            let endpoint = format!("{}/{id}", plan.endpoint);
            (
                frame::request(ack, "read", &endpoint, &request_id, None),
                false,
            )
        }
        _ => {
            let item = format!(
                r#"{{"title":"load {conn}-{ack}","done":false,"pad":"{}"}}"#,
                plan.pad
            );
            (
                frame::request(ack, "create", &plan.endpoint, &request_id, Some(&item)),
                true,
            )
        }
    }
}

async fn await_ack(
    ws: &mut Ws,
    want: u64,
    deadline: Instant,
) -> Result<(bool, Option<i64>), String> {
    loop {
        match next_text(ws, deadline).await? {
            Incoming::Ack { ack, ok, id } if ack == want => return Ok((ok, id)),
            Incoming::Ping => ws
                .send(Message::text("3"))
                .await
                .map_err(|e| format!("send: {e}"))?,
            Incoming::Close => return Err("server closed the session".into()),
            _ => {}
        }
    }
}

pub(crate) async fn next_text(ws: &mut Ws, deadline: Instant) -> Result<Incoming, String> {
    loop {
        let message = timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "reply timeout".to_owned())?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(frame::parse(text.as_str())),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("receive: {e}")),
        }
    }
}
