//! Pipelined requests on one connection: up to `window` requests in flight at once, each new
//! one sent as soon as a reply frees a slot — the native analogue of a page issuing many
//! `collection.create` calls at once over its single socket.

use std::collections::HashMap;

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{next_request, next_text, Outcome, Plan, Ws};
use crate::frame::Incoming;

/// Keeps `window` requests in flight from `first` until `end`, then waits for the rest.
pub async fn run(ws: &mut Ws, conn: usize, plan: &Plan, window: usize, end: Instant) -> Outcome {
    let mut out = Outcome::default();
    let mut in_flight: HashMap<u64, (Instant, bool)> = HashMap::with_capacity(window);
    let mut ack = 0u64;
    let mut last_id = None;
    loop {
        while in_flight.len() < window && Instant::now() < end {
            ack += 1;
            let (text, create) = next_request(plan, conn, ack, last_id);
            in_flight.insert(ack, (Instant::now(), create));
            if let Err(e) = ws.feed(Message::text(text)).await {
                out.failure = Some(format!("send: {e}"));
                out.errors += in_flight.len() as u64;
                return out;
            }
        }
        if let Err(e) = ws.flush().await {
            out.failure = Some(format!("send: {e}"));
            out.errors += in_flight.len() as u64;
            return out;
        }
        if in_flight.is_empty() {
            return out;
        }
        match next_text(ws, Instant::now() + plan.timeout).await {
            Ok(Incoming::Ack { ack, ok, id }) => {
                let Some((t0, create)) = in_flight.remove(&ack) else {
                    continue;
                };
                if !ok {
                    out.errors += 1;
                    out.failure.get_or_insert_with(|| "error reply".into());
                    continue;
                }
                out.record(create, t0);
                if create {
                    last_id = id.or(last_id);
                }
            }
            Ok(Incoming::Ping) => {
                if let Err(e) = ws.send(Message::text("3")).await {
                    out.failure = Some(format!("send: {e}"));
                    return out;
                }
            }
            Ok(Incoming::Close) => {
                out.failure = Some("server closed the session".into());
                out.errors += in_flight.len() as u64;
                return out;
            }
            Ok(_) => {}
            Err(e) => {
                out.failure = Some(format!("{e} with {} requests in flight", in_flight.len()));
                out.errors += in_flight.len() as u64;
                return out;
            }
        }
    }
}
