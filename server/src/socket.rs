//! The socket.io side: one handler for the five Backbone methods, answering through the ack
//! when the client asked for one (`42<id>[...]` -> `43<id>[null, result]` / `43<id>[{status, message}]`)
//! and otherwise by emitting `<method>:<endPoint>[:<ctx>]` to the requesting socket
//! (errors as `{"error": {status, message}}`).
//!
//! A write, or a read of one model, also answers the model's version: a third ack argument
//! (`[null, model, {"version": v}]`, which `(err, result)` callbacks ignore), or a second
//! argument of the reply event (`(model, {"version": v})`). A write may carry
//! `signature.ifVersion` (an integer ≥ 0): it is applied only if the model is at that version
//! (0: only if absent), else answered with a 409 `{status, message, current, version}`.
//!
//! Events that are not Backbone methods get a 400 the same way; when a reply event name cannot
//! be formed (no `signature.endPoint`), the error is emitted as an `error` event.
//!
//! `subscribe`/`unsubscribe` (live collections, see [`crate::live`]) are answered like the
//! Backbone methods: through the ack (`[null, {"endPoint": "/api/todos"}]`) or, without an ack
//! id, by emitting `subscribe:<endPoint>` (`unsubscribe:<endPoint>`) back, errors as
//! `{"error": {…}}`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Value};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, Extension, SocketRef, State};
use socketioxide::handler::{FromMessageParts, Value as RawValue};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError};

use crate::api::{Api, Method, Request};
use crate::conn::Conn;
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::live::room;
use crate::order::Lane;
use crate::reads::Payload;

/// Event name used for errors that cannot be tied to a `<method>:<endPoint>` reply.
pub const ERROR_EVENT: &str = "error";

/// The ack id of the message being handled: `None` in event reply mode.
pub struct AckId(pub Option<i64>);

impl<A: Adapter> FromMessageParts<A> for AckId {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        _: &mut RawValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        Ok(AckId(*ack_id))
    }
}

/// The event's arguments (everything after its name), parsed from the packet's own JSON text
/// so that one argument that is itself an array stays distinguishable from several arguments;
/// `None` when the payload is not a JSON array of text. Then the length of that text.
pub struct Args(pub Option<Vec<Value>>, pub usize);

impl<A: Adapter> FromMessageParts<A> for Args {
    type Error = Infallible;
    fn from_message_parts(
        _: &Arc<Socket<A>>,
        v: &mut RawValue,
        _: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let text = v.as_str();
        let bytes = text.map_or(0, |text| text.len());
        let parsed = text.and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok());
        let args = parsed.map(|mut args| {
            if !args.is_empty() {
                args.remove(0); // the event name
            }
            args
        });
        Ok(Args(args, bytes))
    }
}

/// Connect middleware for every namespace: registers the method handlers and the fallback
/// (it runs after [`crate::access::authenticate`], which stored the socket's identity).
///
/// A middleware, not the connect handler, because socketioxide sends the CONNECT reply before
/// it spawns the handler: an event sent right after `40{"sid":…}` could otherwise arrive
/// before its handler exists and be dropped. Middlewares run before the reply.
pub async fn register_handlers<A: Adapter>(socket: SocketRef<A>) -> Result<(), Infallible> {
    let conn = connection(&socket);
    // A read's reply may be large: after its turn in the lane, it waits for room in the
    // connection's reply queue (see `crate::conn`).
    let lane = Lane::with_admission(conn.clone());
    for method in Method::ALL {
        let lane = lane.clone();
        let conn = conn.clone();
        socket.on(
            method.name(),
            move |socket: SocketRef<A>,
                  AckId(ack_id): AckId,
                  ack: AckSender<A>,
                  State(api): State<Api>,
                  Extension(identity): Extension<Identity>,
                  Args(args, bytes): Args| {
                // Runs as the packet is read, in the socket's order: the request takes its
                // place in the lane now (read-your-writes, see `crate::order`) and counts
                // against the connection's in-flight bound until its reply is queued.
                let in_flight = conn.as_ref().map(|conn| conn.begin_request(bytes));
                let started = start_request(&api, method, args, identity, &socket, &lane);
                async move {
                    let (reply_event, result) = match started {
                        Ok((reply_event, running)) => (Some(reply_event), running.await),
                        Err((reply_event, error)) => (reply_event, Err(error)),
                    };
                    let (result, version) = match result {
                        Ok((payload, version)) => (Ok(payload), version),
                        Err(error) => (Err(error), None),
                    };
                    let event = reply_event.as_deref();
                    reply(&socket, ack_id, ack, event, result, version);
                    drop(in_flight);
                }
            },
        );
    }
    register_subscriptions(&socket);
    socket.on_fallback(on_unknown::<A>);
    Ok(())
}

/// Connect handler: everything was set up by [`register_handlers`].
pub async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    tracing::debug!(sid = %socket.id, ns = socket.ns(), "connected");
}

/// A request's answer to come: the reply and the model's version, if it names one.
type Running = Pin<Box<dyn Future<Output = Result<(Payload, Option<i64>), ApiError>> + Send>>;

/// Parses a request and starts it in `lane`; returns its reply event name and its result to
/// come, or the error to answer at once.
fn start_request<A: Adapter>(
    api: &Api,
    method: Method,
    args: Option<Vec<Value>>,
    identity: Identity,
    socket: &SocketRef<A>,
    lane: &Arc<Lane>,
) -> Result<(String, Running), (Option<String>, ApiError)> {
    let (request, reply_event) = parse_request(method, args, identity)?;
    let running = crate::dispatch::execute(api, request, Some(socket), Some(lane));
    Ok((
        reply_event,
        Box::pin(async move {
            let answer = running.await?;
            match answer.collection {
                // One packet: the page's text as read, never parsed (see `crate::reads`).
                Some(read) => Ok((Payload::Raw(read.json().await?.0), None)),
                None => Ok((Payload::Value(answer.value), answer.version)),
            }
        }),
    ))
}

async fn on_unknown<A: Adapter>(
    socket: SocketRef<A>,
    Event(event): Event,
    AckId(ack_id): AckId,
    ack: AckSender<A>,
) {
    let error = ApiError::bad_request(format!("unknown event {event:?}"));
    reply(&socket, ack_id, ack, None, Err::<Value, _>(error), None);
}

/// Answers a request the way it was asked: through its ack when it carried an ack id, else by
/// emitting `reply_event` (or [`ERROR_EVENT`] when there is none) to the requesting socket;
/// a success with a `version` adds `{"version": v}` after the result.
/// The reply's bytes count against its connection's queued-bytes bound until written.
///
/// A reply that cannot be queued (the socket's send buffer is full, or it is closing) is never
/// dropped silently: the write it reports is already committed, so the connection is closed
/// under the session (not with a DISCONNECT, which clients take as final), and its client
/// reconnects and re-sends with the same `requestId`, which the store answers with the
/// committed result instead of applying it again. That is logged once per connection.
pub(crate) fn reply<A: Adapter>(
    socket: &SocketRef<A>,
    ack_id: Option<i64>,
    ack: AckSender<A>,
    reply_event: Option<&str>,
    result: Result<impl Into<Payload>, ApiError>,
    version: Option<i64>,
) {
    let conn = connection(socket);
    let result = result.map(Into::into);
    let version = version
        .filter(|_| result.is_ok())
        .map(|v| json!({ "version": v }));
    let sent = if ack_id.is_some() {
        match (result, version) {
            (Ok(value), Some(version)) => {
                count_queued(conn.as_deref(), &value);
                ack.send(&(Value::Null, value, version))
            }
            (Ok(value), None) => {
                count_queued(conn.as_deref(), &value);
                ack.send(&(Value::Null, value))
            }
            (Err(error), _) => ack.send(&(error,)),
        }
    } else {
        let payload = result.unwrap_or_else(|error| Payload::Value(json!({ "error": error })));
        count_queued(conn.as_deref(), &payload);
        let event = reply_event.unwrap_or(ERROR_EVENT);
        match version {
            Some(version) => socket.emit(event, &(payload, version)),
            None => socket.emit(event, &payload),
        }
    };
    match sent {
        // The send buffer is full: closed under the session, not with a DISCONNECT packet,
        // which is final for a socket.io client (it would never re-send this request).
        Err(SendError::Socket(SocketError::InternalChannelFull)) => match conn {
            Some(conn) => conn.close("a reply could not be queued"),
            None => {
                let _ = socket.clone().disconnect();
            }
        },
        // The socket is closing or gone (its namespace left, its token expired): nobody waits
        // for this answer on it, and its connection may still carry the client's next session.
        Err(error) => {
            tracing::debug!(%error, sid = %socket.id, "reply to a closed socket not sent")
        }
        Ok(()) => {}
    }
}

/// The connection a socket came on, when it was accepted by [`crate::serve`].
fn connection<A: Adapter>(socket: &SocketRef<A>) -> Option<Arc<Conn>> {
    socket.req_parts().extensions.get::<Arc<Conn>>().cloned()
}

/// Counts a reply against its connection's queued bytes: at most its JSON length (strings
/// unescaped, numbers one byte), so the count never runs ahead of the bytes written for it,
/// and without serialising it a second time.
fn count_queued(conn: Option<&Conn>, payload: &Payload) {
    if let Some(conn) = conn {
        conn.queue_reply(match payload {
            Payload::Value(value) => json_len_at_least(value),
            Payload::Raw(text) => text.get().len(),
        });
    }
}

fn json_len_at_least(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 1,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => {
            1 + items
                .iter()
                .map(|item| json_len_at_least(item) + 1)
                .sum::<usize>()
        }
        Value::Object(map) => {
            1 + map
                .iter()
                .map(|(key, item)| key.len() + 4 + json_len_at_least(item))
                .sum::<usize>()
        }
    }
}

/// Reads the single `{signature, item, data}` argument. On failure, returns the reply event
/// name when the endPoint was readable, so event-mode clients still get their answer.
fn parse_request(
    method: Method,
    args: Option<Vec<Value>>,
    identity: Identity,
) -> Result<(Request, String), (Option<String>, ApiError)> {
    let args = args.ok_or((None, ApiError::bad_request("malformed arguments")))?;
    let Some(Value::Object(mut arg)) = args.into_iter().next() else {
        return Err((
            None,
            ApiError::bad_request("the argument must be a JSON object"),
        ));
    };
    let Some(Value::Object(signature)) = arg.remove("signature") else {
        return Err((None, ApiError::bad_request("signature is missing")));
    };
    let Some(Value::String(endpoint)) = signature.get("endPoint").cloned() else {
        return Err((
            None,
            ApiError::bad_request("signature.endPoint must be a string"),
        ));
    };
    let mut reply_event = format!("{}:{endpoint}", method.name());
    match signature.get("ctx") {
        None | Some(Value::Null) => {}
        Some(Value::String(ctx)) => reply_event = format!("{reply_event}:{ctx}"),
        Some(ctx) => reply_event = format!("{reply_event}:{ctx}"),
    }
    let request_id = match signature.get("requestId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() && id.len() <= 256 => Some(id.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            let error =
                ApiError::bad_request("signature.requestId must be a string of 1 to 256 bytes");
            return Err((Some(reply_event), error));
        }
    };
    let if_version = match signature.get("ifVersion") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v >= 0) => n.as_i64(),
        Some(_) => {
            let error =
                ApiError::bad_request("signature.ifVersion must be an integer of 0 or more");
            return Err((Some(reply_event), error));
        }
    };
    let request = Request {
        method,
        endpoint,
        item: arg.remove("item"),
        data: arg.remove("data"),
        request_id,
        if_version,
        identity,
    };
    Ok((request, reply_event))
}

/// Registers `subscribe` and `unsubscribe` (live collections, see [`crate::live`]) on a
/// connecting socket.
pub fn register_subscriptions<A: Adapter>(socket: &SocketRef<A>) {
    socket.on("subscribe", on_subscription::<A>);
    socket.on("unsubscribe", on_subscription::<A>);
}

async fn on_subscription<A: Adapter>(
    socket: SocketRef<A>,
    Event(event): Event,
    AckId(ack_id): AckId,
    ack: AckSender<A>,
    State(api): State<Api>,
    Extension(identity): Extension<Identity>,
    Args(args, _): Args,
) {
    let (reply_event, result) = match subscription_endpoint(args) {
        Ok(endpoint) => {
            let reply_event = format!("{event}:{endpoint}");
            let result = match Endpoint::parse(&endpoint, api.prefix()) {
                Ok(Endpoint::Collection(collection)) => {
                    let room = room(api.owner_in(&identity.owner, &collection), &collection);
                    if event == "subscribe" {
                        api.live().joined(&socket, &room);
                        socket.join(room);
                    } else {
                        socket.leave(room);
                    }
                    Ok(json!({ "endPoint": collection }))
                }
                Ok(Endpoint::Model { .. }) => Err(ApiError::bad_request(format!(
                    "{event} needs a collection endPoint"
                ))),
                Err(error) => Err(error),
            };
            (Some(reply_event), result)
        }
        Err(error) => (None, Err(error)),
    };
    reply(&socket, ack_id, ack, reply_event.as_deref(), result, None);
}

/// `signature.endPoint` of the single `{signature}` argument.
fn subscription_endpoint(args: Option<Vec<Value>>) -> Result<String, ApiError> {
    let arg = args.and_then(|args| args.into_iter().next());
    match arg.as_ref().and_then(|a| a.pointer("/signature/endPoint")) {
        Some(Value::String(endpoint)) => Ok(endpoint.clone()),
        _ => Err(ApiError::bad_request(
            "expected {\"signature\":{\"endPoint\":\"<collection>\"}}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_need_a_signature_endpoint() {
        let ok = subscription_endpoint(Some(vec![json!({"signature": {"endPoint": "/api/x"}})]));
        assert_eq!(ok.unwrap(), "/api/x");
        for bad in [
            None,
            Some(vec![]),
            Some(vec![json!("x")]),
            Some(vec![json!({"signature": {"endPoint": 5}})]),
        ] {
            assert_eq!(subscription_endpoint(bad).unwrap_err().status, 400);
        }
    }
}
