//! A request's whole path: run it through the [`Api`], then report its committed write to
//! the broadcaster ([`crate::live`]), which broadcasts it only for a store without a change
//! feed (a store with one broadcasts its writes in commit order, see
//! [`crate::live::Live::follow`]). Both transports (socket.io and REST) go through here, so
//! the api and the broadcaster never need each other's callers.

use std::future::Future;
use std::sync::Arc;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::api::{Answer, Api, Request};
use crate::endpoint::Endpoint;
use crate::error::ApiError;
use crate::method::Method;
use crate::order::Lane;
use crate::store::change::Origin;

/// Runs `request` through `api` and, when it committed a new write, counts it and (for a store
/// without a change feed) broadcasts the change to the collection's room (without `origin`,
/// the socket that sent it, if any). A write replayed
/// from its request id is counted and logged, never broadcast twice.
///
/// The request is started at once, in `lane`'s order (see [`crate::order`]); the future
/// finishes it.
pub fn execute<A: Adapter>(
    api: &Api,
    request: Request,
    origin: Option<&SocketRef<A>>,
    lane: Option<&Arc<Lane>>,
) -> impl Future<Output = Result<Answer, ApiError>> + Send + 'static {
    let method = request.method;
    let owner = request.identity.owner.clone();
    let endpoint = request.endpoint.clone();
    let request_id = request.request_id.clone();
    let origin = origin.map(|socket| Origin {
        ns: socket.ns().to_owned(),
        sid: socket.id.to_string(),
    });
    let started = api.start(request, lane, origin.clone());
    let api = api.clone();
    async move {
        let applied = started.await?;
        if method == Method::Read {
            return Ok(applied);
        }
        if applied.replayed {
            api.live().replayed();
            tracing::info!(request_id = request_id.as_deref(), %endpoint, "dedupe hit: write replayed");
            return Ok(applied);
        }
        // `api.start` accepted the endpoint, so it parses.
        if let Ok(parsed) = Endpoint::parse(&endpoint, api.prefix()) {
            api.live()
                .committed(
                    origin.as_ref(),
                    &owner,
                    method,
                    &parsed,
                    (&applied.value, applied.version.unwrap_or(0)),
                )
                .await;
        }
        Ok(applied)
    }
}
