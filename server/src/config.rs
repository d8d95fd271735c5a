//! Command-line flags, each also readable from an environment variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Default of `--max-namespaces` (here, not in [`crate::namespaces`], which reaches this
/// module through `access`: no import cycle).
pub const DEFAULT_MAX_DYNAMIC: usize = 1000;

/// The reference server for backbone-socket-sync: socket.io and REST over an embedded SQLite store.
#[derive(Debug, Clone, Parser)]
#[command(name = "bss-server", version, about)]
pub struct Config {
    /// TCP port to listen on; 0 picks a free one (the chosen port is printed).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Path of the SQLite database file (its directories are created), or a
    /// `postgres://…`/`postgresql://…` url of a PostgreSQL database shared by several nodes.
    #[arg(
        long,
        env = "DB",
        default_value = "./data/backbone-socket-sync.sqlite3"
    )]
    pub db: PathBuf,

    /// Folder served as static files at `/` [default: ./www if it has an index.html, else the repository's www/].
    #[arg(long, env = "WWW")]
    pub www: Option<PathBuf>,

    /// Path prefix of every endpoint, for socket.io requests and the REST twin.
    #[arg(long, env = "API_PREFIX", default_value = "/api")]
    pub api_prefix: String,

    /// Largest stored model, in bytes of JSON.
    #[arg(long, env = "MAX_ITEM_BYTES", default_value_t = 1 << 20)]
    pub max_item_bytes: usize,

    /// Engine.IO heartbeat: milliseconds between the server's pings.
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// Engine.IO heartbeat: milliseconds to wait for a pong before closing the connection.
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Broadcasts between nodes: `local` (one node) or a Redis url (`redis://…`,
    /// `redis+unix:///path/to/redis.sock`) shared by several nodes on one PostgreSQL `--db`;
    /// then socket.io is WebSocket-only.
    #[arg(long, env = "ADAPTER", default_value = "local")]
    pub adapter: String,

    /// Listen with SO_REUSEPORT, so that several nodes on this machine share one port (the
    /// kernel spreads connections between them).
    #[arg(long, env = "REUSE_PORT")]
    pub reuse_port: bool,

    /// Most socket.io WebSocket connections open at once; upgrades beyond get a 503. Lowered
    /// at start to keep file descriptors in reserve when the `nofile` limit is too small.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Requests one connection may have in flight; beyond, the server stops reading it until
    /// replies go out (TCP backpressure, nothing refused).
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// Bytes of replies one connection may have queued unread; beyond, the server stops
    /// reading it. A connection that reads nothing for the ping timeout is closed.
    #[arg(long, env = "MAX_QUEUED_BYTES", default_value_t = 8 << 20)]
    pub max_queued_bytes: usize,

    /// Milliseconds a socket.io connection may take to complete its first namespace CONNECT
    /// (token checked); one that has not is closed and gives its `--max-connections` place back.
    #[arg(long, env = "CONNECT_TIMEOUT_MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,

    /// Milliseconds a client may take to send a request's headers, and an HTTP connection
    /// that never upgraded may stay idle between requests.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Milliseconds a REST client may take to send a request's body, in all; slower gets a
    /// 408 and the connection is closed (a body trickled a byte at a time holds nothing).
    #[arg(long, env = "BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,

    /// Most models one collection read returns, also when `_limit` asks for more; a REST
    /// answer cut there carries `X-Truncated-At` (page on with `_offset`).
    #[arg(long, env = "MAX_READ", default_value_t = crate::api::DEFAULT_MAX_READ)]
    pub max_read: u64,

    /// Most bytes of models (JSON text) one collection read returns.
    #[arg(long, env = "MAX_READ_BYTES", default_value_t = crate::api::DEFAULT_MAX_READ_BYTES)]
    pub max_read_bytes: usize,

    /// How long a write's request record is kept, so that re-sending it with its requestId
    /// answers the first result rather than writing again: seconds, or 90s, 15m, 1h, 7d.
    /// Expired records are swept while the server runs.
    #[arg(long, env = "REQUEST_RETENTION", default_value = "7d", value_parser = crate::auth::parse_ttl)]
    pub request_retention: Duration,

    /// A socket.io namespace clients may connect to (`/`, `/admin`); repeatable.
    #[arg(
        long = "namespace",
        env = "NAMESPACES",
        value_delimiter = ',',
        default_value = "/"
    )]
    pub namespaces: Vec<String>,

    /// Also accept any other namespace, created on first connection and removed when its last
    /// socket leaves, at most --max-namespaces at once.
    #[arg(long, env = "DYNAMIC_NAMESPACES")]
    pub dynamic_namespaces: bool,

    /// Most dynamic namespaces open at once (with --dynamic-namespaces).
    #[arg(long, env = "MAX_NAMESPACES", default_value_t = DEFAULT_MAX_DYNAMIC)]
    pub max_namespaces: usize,

    /// File holding the HS256 secret (at least 32 bytes) of access tokens. Given (or one of
    /// --auth-public-key-file, --auth-jwks-file), every socket.io connection and REST call
    /// needs a valid token, and each user has their own collections; absent, authentication
    /// is off.
    #[arg(long, env = "AUTH_SECRET_FILE", global = true)]
    pub auth_secret_file: Option<PathBuf>,

    /// PEM file of an identity provider's public key: RSA (tokens signed RS256) or EC P-256
    /// (ES256). Turns authentication on, as --auth-secret-file does.
    #[arg(long, env = "AUTH_PUBLIC_KEY_FILE", global = true)]
    pub auth_public_key_file: Option<PathBuf>,

    /// JWKS file of an identity provider (its `jwks_uri` document, saved): tokens are verified
    /// with the RS256 or ES256 key their `kid` names; an unknown `kid` reads the file again
    /// (at most every 30 s), so a re-saved file needs no restart. Turns authentication on.
    #[arg(long, env = "AUTH_JWKS_FILE", global = true)]
    pub auth_jwks_file: Option<PathBuf>,

    /// An accepted token audience: tokens must carry it (or another one given) in `aud`;
    /// repeatable. Unset, `aud` is not checked.
    #[arg(
        long = "auth-audience",
        env = "AUTH_AUDIENCE",
        value_delimiter = ',',
        global = true
    )]
    pub auth_audience: Vec<String>,

    /// An accepted token issuer: tokens must carry it (or another one given) in `iss`;
    /// repeatable. Unset, `iss` is not checked.
    #[arg(
        long = "auth-issuer",
        env = "AUTH_ISSUER",
        value_delimiter = ',',
        global = true
    )]
    pub auth_issuer: Vec<String>,

    /// Seconds a token is still accepted after its `exp` and already before its `nbf` (the
    /// clocks of the identity provider and this server differ); a socket is disconnected at
    /// `exp` plus this.
    #[arg(long, env = "AUTH_LEEWAY", default_value_t = crate::auth::DEFAULT_LEEWAY_SECS, global = true)]
    pub auth_leeway: u64,

    /// Longest token lifetime accepted (seconds, or `90s`, `15m`, `1h`, `7d`): a token whose
    /// `exp` is further ahead than this (plus the leeway) is refused, and `bss-server token`
    /// mints none longer.
    #[arg(long, env = "AUTH_MAX_TTL", default_value = "24h", value_parser = crate::auth::parse_ttl, global = true)]
    pub auth_max_ttl: std::time::Duration,

    /// An origin (`https://app.example.com`) whose pages may open WebSockets to this server and
    /// call its REST api (CORS), besides the server's own origin; repeatable; `*` allows all.
    #[arg(
        long = "allowed-origin",
        env = "ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// A dotted host name (`app.example.com`) requests may call this server by while
    /// authentication is off, besides IP addresses, single-label names (`localhost`),
    /// `*.localhost` and the hosts of --allowed-origin (a guard against DNS rebinding);
    /// repeatable; `*` allows all.
    #[arg(long = "allowed-host", env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// A collection prefix under the api prefix (`/api/public`) whose shared documents (those
    /// stored with authentication off) every user may read and none may write; repeatable.
    #[arg(long = "public-prefix", env = "PUBLIC_PREFIXES", value_delimiter = ',')]
    pub public_prefixes: Vec<String>,

    /// A user (token `sub`) who may read `/_bss/stats`, the counts of every user together,
    /// while authentication is on; repeatable. Other users get a 403 there.
    #[arg(long = "stats-sub", env = "STATS_SUBS", value_delimiter = ',')]
    pub stats_subs: Vec<String>,

    /// Mint tokens for anyone who asks at `POST /_bss/demo-token {"sub": …}` (for trying the
    /// demo as several users; never in production). Turns authentication on, with a random
    /// secret for this process; refused with a secret or key file.
    #[arg(long)]
    pub demo_tokens: bool,

    /// A task instead of serving (none: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `bss-server <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Prints an access token signed with --auth-secret-file (with the first --auth-audience
    /// and --auth-issuer, if given).
    Token {
        /// The user the token names (its `sub` claim).
        #[arg(long)]
        sub: String,
        /// How long it is valid: seconds, or with a unit: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

impl Config {
    /// The api prefix without a trailing slash (`/api/` -> `/api`).
    pub fn prefix(&self) -> String {
        let trimmed = self.api_prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.into()
        }
    }

    /// Largest message accepted on a connection: an item at its bound plus room for the
    /// envelope, so an item just over the bound gets a 413 reply rather than a closed socket.
    pub fn max_message_bytes(&self) -> usize {
        self.max_item_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }
}
