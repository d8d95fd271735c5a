//! `bss-server`: parses the flags, opens the store, listens, and prints
//! `listening on http://HOST:PORT` once ready; SIGINT/SIGTERM shut it down gracefully
//! (socket.io clients disconnected, pending writes committed).

use std::io::Write as _;
use std::process::ExitCode;

use backbone_socket_sync_server::access;
use backbone_socket_sync_server::auth::parse_ttl;
use backbone_socket_sync_server::config::{Command, Config};
use backbone_socket_sync_server::serve::{raise_fd_limit, serve, ServeConfig};
use backbone_socket_sync_server::store::open::{open, redacted};
use backbone_socket_sync_server::{build, build_cluster, Server};
use clap::Parser;

/// Bytes glibc may keep free at the top of a heap before it returns them to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_THRESHOLD: libc::c_int = 64 << 20;

#[tokio::main]
async fn main() -> ExitCode {
    keep_freed_memory();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::parse();
    if let Some(Command::Token { sub, ttl }) = &config.command {
        return match token(&config, sub, ttl) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("bss-server token: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bss-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let fd_limit = raise_fd_limit();
    let store = open(&config.db, config.max_item_bytes, config.request_retention)
        .await
        .map_err(|e| format!("cannot open {}: {e}", redacted(&config.db)))?;
    let Server { router, io, store } = match config.adapter.as_str() {
        "local" => build(&config, store),
        url => build_cluster(&config, store, url).await,
    }
    .map_err(|e| e.to_string())?;
    // Hooked before "listening" is printed: a SIGTERM sent as soon as the server is ready
    // (a test, a supervisor) must shut it down gracefully, not kill it.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot hook signals: {e}"))?;
    let listener = listen(&config)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let host = match addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    println!("listening on http://{host}:{}", addr.port());
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let serve_config = ServeConfig::from_config(&config, fd_limit);
    serve(listener, router, serve_config, async move {
        shutdown.await;
        tracing::info!("shutting down");
        io.close().await;
    })
    .await
    .map_err(|e| e.to_string())?;
    store
        .close()
        .await
        .map_err(|e| format!("closing the store: {e}"))?;
    Ok(())
}

/// The listening socket, with SO_REUSEPORT when `--reuse-port` asks for it.
fn listen(config: &Config) -> std::io::Result<tokio::net::TcpListener> {
    let addr = std::net::SocketAddr::new(config.host, config.port);
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if config.reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// `bss-server token --sub NAME [--ttl 1h]`: a token signed with the configured secret.
fn token(config: &Config, sub: &str, ttl: &str) -> Result<String, String> {
    if config.auth_secret_file.is_none() {
        return Err("needs --auth-secret-file PATH (or AUTH_SECRET_FILE)".into());
    }
    let auth = access::auth_from_config(config)?.ok_or("no --auth-secret-file")?;
    let (token, _) = auth.mint(sub, parse_ttl(ttl)?)?;
    Ok(token)
}

/// Hooks SIGINT and SIGTERM now; the future finishes when either arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Raises glibc's trim threshold from 128 KiB. Each committed batch frees the writer thread's
/// buffers, and glibc then handed that memory back with `madvise`, whose TLB shoot-down
/// interrupts every core: ~4% of the server's CPU at 10,000 ops/s. Kept instead, it is reused
/// by the next batch (RSS unchanged in the load runs).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD);
    }
}
