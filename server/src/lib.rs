//! The reference server of backbone-socket-sync.
//!
//! It stores Backbone models in an embedded SQLite file ([`store::sqlite`]) behind the
//! [`store::Store`] trait and answers the same requests over socket.io ([`socket`]) and over
//! REST ([`rest`]), both through the transport-independent [`api::Api`]; it also serves the
//! demo app ([`static_files`]).
//!
//! Live broadcasts ([`live`]) go through socketioxide rooms, whose adapter can later be
//! swapped for one that spans several nodes.

#![warn(missing_docs)]

pub mod access;
pub mod api;
pub mod auth;
pub mod build_error;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod demo_token;
pub mod dispatch;
pub mod endpoint;
pub mod error;
pub mod identity;
pub mod ids;
pub mod live;
pub mod method;
pub mod namespaces;
pub mod order;
pub mod origin;
pub mod public;
pub mod reads;
pub mod rebinding;
pub mod rest;
pub mod serve;
pub mod socket;
pub mod static_files;
pub mod store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::adapter::Adapter;
use socketioxide::{SocketIo, TransportType};

use crate::api::Api;
pub use crate::build_error::BuildError;
use crate::config::Config;
use crate::store::Store;

/// Packets one socket may have queued for sending: far more than a client pipelines (its
/// offline queue alone holds 1,000), so a burst of replies plus broadcasts fits.
const SEND_BUFFER_PACKETS: usize = 16_384;

/// Everything a running server is made of.
pub struct Server {
    /// The HTTP app: socket.io, REST twin and static files.
    pub router: Router,
    /// The socket.io handle, whatever its adapter (for closing).
    pub io: IoHandle,
    /// The store, to close on shutdown.
    pub store: Arc<dyn Store>,
}

/// A socket.io handle of any adapter, kept to close its connections on shutdown.
pub struct IoHandle(Box<dyn CloseIo>);

trait CloseIo: Send + Sync {
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<A: Adapter> CloseIo for SocketIo<A> {
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(SocketIo::close(self))
    }
}

impl IoHandle {
    /// Disconnects every socket.io client gracefully.
    pub async fn close(&self) {
        self.0.close().await;
    }
}

/// Builds the app for `config` over `store`, one node on its own (socket.io's local adapter).
pub fn build(config: &Config, store: Arc<dyn Store>) -> Result<Server, BuildError> {
    let (api, access) = api_and_access(config, &store)?;
    let builder = SocketIo::builder()
        .with_state(api.clone())
        .with_state(access.clone());
    let (router, io) = assemble(config, api, access, builder)?;
    use socketioxide::handler::ConnectHandler as _;
    // Middlewares run last-added first: authenticate, then register the handlers.
    io.ns(
        "/",
        socket::on_connect
            .with(socket::register_handlers)
            .with(access::authenticate),
    );
    Ok(Server {
        router,
        io: IoHandle(Box::new(io)),
        store,
    })
}

/// Builds the app for `config` over `store` as one of several nodes: broadcasts cross nodes
/// through Redis at `adapter_url` (see [`cluster`]). socket.io is WebSocket-only, so a
/// connection never depends on reaching the same node twice (no sticky sessions needed).
pub async fn build_cluster(
    config: &Config,
    store: Arc<dyn Store>,
    adapter_url: &str,
) -> Result<Server, BuildError> {
    let (api, access) = api_and_access(config, &store)?;
    let stats = Arc::new(cluster::BusStats::default());
    let driver = cluster::BusDriver::connect(adapter_url, stats.clone()).await?;
    let adapter = socketioxide_redis::RedisAdapterCtr::new_with_driver(
        driver,
        socketioxide_redis::RedisAdapterConfig::new().with_stream_buffer(cluster::INCOMING_BUFFER),
    );
    api.live().attach_bus(stats);
    let builder = SocketIo::builder()
        .with_state(api.clone())
        .with_state(access.clone())
        .with_adapter::<socketioxide_redis::CustomRedisAdapter<_, cluster::BusDriver>>(adapter);
    let (router, io) = assemble(config, api, access, builder)?;
    use socketioxide::handler::ConnectHandler as _;
    // Awaited here: the node listens only once it hears the other nodes.
    io.ns(
        "/",
        socket::on_connect
            .with(socket::register_handlers)
            .with(access::authenticate),
    )
    .await
    .map_err(|e| BuildError::Subscribe {
        url: adapter_url.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(Server {
        router,
        io: IoHandle(Box::new(io)),
        store,
    })
}

fn api_and_access(
    config: &Config,
    store: &Arc<dyn Store>,
) -> Result<(Api, access::Access), BuildError> {
    let prefix = config.prefix();
    endpoint::validate_prefix(&prefix).map_err(BuildError::Prefix)?;
    let public = public::PublicPrefixes::new(&config.public_prefixes, &prefix)
        .map_err(BuildError::PublicPrefix)?;
    let api = Api::new(store.clone(), prefix)
        .with_public(public)
        .with_read_bounds(config.max_read, config.max_read_bytes);
    let access = access::Access::from_config(config).map_err(BuildError::Access)?;
    Ok((api, access))
}

/// The app around `builder` (which already holds `api` and `access` as its state): socket.io
/// with the handlers in every dynamic namespace, the REST twin, stats and static files. The
/// caller registers `/`, whose adapter initialisation differs (Redis: subscriptions to await).
fn assemble<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
    config: &Config,
    api: Api,
    access: access::Access,
    builder: socketioxide::SocketIoBuilder<A>,
) -> Result<(Router, SocketIo<A>), BuildError> {
    let prefix = api.prefix().to_owned();
    let origins = origin::OriginPolicy::new(&config.allowed_origins).map_err(BuildError::Origin)?;
    let max_message = config.max_message_bytes();
    let (layer, io) = builder
        // socketioxide's default of 128 queued packets per socket is less than one client's
        // pipelined burst (the client queues up to 1,000 requests): replies past it were lost.
        .max_buffer_size(SEND_BUFFER_PACKETS)
        .max_payload(max_message as u64)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message)
        .ping_interval(Duration::from_millis(config.ping_interval_ms))
        .ping_timeout(Duration::from_millis(config.ping_timeout_ms))
        // Our client only speaks WebSocket; polling sessions cost memory and buy nothing.
        .transports([TransportType::Websocket])
        .build_layer();
    api.live().attach(io.clone());
    if let Some(feed) = api.store().changes() {
        api.live().follow(feed, api.store().changes_are_local());
    }
    let namespaces = namespaces::Namespaces::new(
        &config.namespaces,
        config.dynamic_namespaces,
        config.max_namespaces,
    )
    .map_err(BuildError::Namespaces)?;
    namespaces.declare(&io).map_err(BuildError::Namespaces)?;
    api.live().set_namespaces(namespaces);
    let www = config.www.clone().unwrap_or_else(static_files::default_www);
    let mut rest = rest::router(
        api.clone(),
        max_message,
        Duration::from_millis(config.body_read_timeout_ms),
    )
    .layer(axum::middleware::from_fn_with_state(
        access.clone(),
        access::rest_identity,
    ));
    if let (true, Some(auth)) = (config.demo_tokens, access.auth()) {
        rest = rest.merge(demo_token::router(auth.clone()));
    }
    let router =
        rest
            // With authentication on, the server's counts are for signed-in users only.
            .merge(live::stats_router(api.live().clone()).layer(
                axum::middleware::from_fn_with_state(access.clone(), access::rest_identity),
            ))
            .merge(static_files::router(&www))
            .layer(layer);
    let hosts = rebinding::HostPolicy::from_config(config, access.auth().is_some())
        .map_err(BuildError::Host)?;
    let router = origin::protect(router, origins, hosts, &prefix);
    Ok((router, io))
}
