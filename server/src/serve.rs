//! The accept loop: one hyper HTTP/1 connection per accepted TCP stream, each wrapped in a
//! [`GatedIo`] with its own [`Conn`] (the per-connection bounds, see [`crate::conn`]).
//!
//! Why not `axum::serve`: it offers no header-read timeout and no way to reach the stream of
//! an upgraded WebSocket. Here:
//!
//! - A request's headers must arrive within the header-read timeout (10 s by default). hyper
//!   runs the same timer while a kept-alive connection waits for its next request, so an HTTP
//!   connection that never upgrades is closed after that long idle, and one that trickles a
//!   header byte at a time after that long in all.
//! - WebSocket upgrades to socket.io beyond `--max-connections` get a 503 (with
//!   `Retry-After`), and that limit is lowered to leave file descriptors in reserve for REST,
//!   static files, the database and new clients.
//! - An accept that fails because the process is out of file descriptors waits a little and
//!   goes on, logging once per second at most, instead of spinning or stopping.
//! - On shutdown, accepting stops, idle connections close and requests in progress finish.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::Service as _;

use crate::config::Config;
use crate::conn::{Bounds, Conn, Counters, GatedIo};

/// File descriptors kept for everything but WebSockets (at most a quarter of the limit).
const RESERVED_FDS: u64 = 1024;
/// Pause after an accept failed for want of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How [`serve`] treats connections.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Bounds of every connection.
    pub bounds: Bounds,
    /// Most socket.io WebSockets open at once.
    pub max_websockets: usize,
    /// Longest wait for a request's headers, and for the next request on an idle connection.
    pub header_read_timeout: Duration,
    /// The socket.io path (`/socket.io`).
    pub socketio_path: String,
}

impl ServeConfig {
    /// The settings `config` asks for, with the WebSocket limit fitted to `fd_limit`.
    pub fn from_config(config: &Config, fd_limit: Option<u64>) -> Self {
        let max_websockets = websocket_limit(config.max_connections, fd_limit);
        if max_websockets < config.max_connections {
            tracing::warn!(
                max_websockets,
                fd_limit,
                "--max-connections lowered to keep file descriptors in reserve"
            );
        }
        Self {
            bounds: Bounds {
                max_in_flight: config.max_in_flight.max(1),
                max_queued_bytes: config.max_queued_bytes.max(1),
                stall_timeout: Duration::from_millis(config.ping_timeout_ms),
            },
            max_websockets,
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            socketio_path: "/socket.io".into(),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let counters = Arc::new(Counters::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let config = Arc::new(config);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut last_fd_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    on_accept_error(&error, &mut last_fd_warning).await;
                    continue;
                }
            },
        };
        let conn = Conn::new(config.bounds.clone(), counters.clone());
        let io = TokioIo::new(GatedIo::new(stream, conn.clone()));
        let service = {
            let router = router.clone();
            let config = config.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                respond(router.clone(), &config, conn.clone(), request)
            })
        };
        let http = http.clone();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let connection = http.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Routes one request, refusing a socket.io WebSocket upgrade beyond the limit.
fn respond(
    mut router: Router,
    config: &ServeConfig,
    conn: Arc<Conn>,
    mut request: Request<Incoming>,
) -> impl Future<Output = Result<Response<Body>, Infallible>> {
    let refused = is_socketio_upgrade(&request, &config.socketio_path)
        && !conn.try_upgrade(config.max_websockets);
    request.extensions_mut().insert(conn);
    let routed = (!refused).then(|| router.call(request));
    async move {
        match routed {
            Some(routed) => routed.await,
            None => Ok(Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::RETRY_AFTER, "5")
                .body(Body::from("too many connections"))
                .expect("static response")),
        }
    }
}

fn is_socketio_upgrade<B>(request: &Request<B>, path: &str) -> bool {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    upgrade && request.uri().path().starts_with(path)
}

async fn on_accept_error(error: &io::Error, last_warning: &mut Option<Instant>) {
    let out_of_fds = matches!(
        error.raw_os_error(),
        Some(code) if code == EMFILE || code == ENFILE
    );
    if !out_of_fds {
        // Errors of one connection (reset before accept) concern only that connection.
        tracing::debug!(%error, "accept failed");
        return;
    }
    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
        tracing::warn!(%error, "accept failed: out of file descriptors; retrying");
        *last_warning = Some(Instant::now());
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The most WebSockets to allow with `fd_limit` file descriptors: `wanted`, lowered to keep
/// [`RESERVED_FDS`] (or a quarter of the limit, if smaller) for everything else.
pub fn websocket_limit(wanted: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return wanted;
    };
    let reserve = RESERVED_FDS.min(limit / 4);
    let available = usize::try_from(limit - reserve).unwrap_or(usize::MAX);
    wanted.min(available)
}

/// Raises the soft limit on open files to the hard limit; returns the soft limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websockets_leave_file_descriptors_in_reserve() {
        assert_eq!(websocket_limit(10_000, Some(20_000)), 10_000);
        assert_eq!(websocket_limit(10_000, Some(10_000)), 8_976);
        assert_eq!(websocket_limit(10_000, Some(1_024)), 768);
        assert_eq!(websocket_limit(10_000, None), 10_000);
    }
}
