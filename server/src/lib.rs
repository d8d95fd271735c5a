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
pub mod config;
pub mod conn;
pub mod endpoint;
pub mod error;
pub mod identity;
pub mod ids;
pub mod live;
pub mod namespaces;
pub mod order;
pub mod origin;
pub mod rest;
pub mod serve;
pub mod socket;
pub mod static_files;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socketioxide::{SocketIo, TransportType};

use crate::api::Api;
use crate::config::Config;
use crate::store::Store;

/// Packets one socket may have queued for sending: far more than a client pipelines (its
/// offline queue alone holds 1,000), so a burst of replies plus broadcasts fits.
const SEND_BUFFER_PACKETS: usize = 16_384;

/// Everything a running server is made of.
pub struct Server {
    /// The HTTP app: socket.io, REST twin and static files.
    pub router: Router,
    /// The socket.io handle (for broadcasts and closing).
    pub io: SocketIo,
    /// The store, to close on shutdown.
    pub store: Arc<dyn Store>,
}

/// Builds the app for `config` over `store`.
pub fn build(config: &Config, store: Arc<dyn Store>) -> Result<Server, String> {
    let prefix = config.prefix();
    endpoint::validate_prefix(&prefix)?;
    let origins = origin::OriginPolicy::new(&config.allowed_origins)?;
    let api = Api::new(store.clone(), prefix.clone())
        .with_read_bounds(config.max_read, config.max_read_bytes);
    let access = access::Access::from_config(config)?;
    let max_message = config.max_message_bytes();
    let (layer, io) = SocketIo::builder()
        .with_state(api.clone())
        .with_state(access.clone())
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
    let namespaces = namespaces::Namespaces::new(
        &config.namespaces,
        config.dynamic_namespaces,
        config.max_namespaces,
    )?;
    namespaces.declare(&io)?;
    api.live().set_namespaces(namespaces);
    let www = config.www.clone().unwrap_or_else(static_files::default_www);
    let rest = rest::router(api.clone(), max_message).layer(axum::middleware::from_fn_with_state(
        access,
        access::rest_identity,
    ));
    let router = rest
        .merge(live::stats_router(api))
        .merge(static_files::router(&www))
        .layer(layer);
    let router = origin::protect(router, origins, &prefix);
    Ok(Server { router, io, store })
}
