//! Why a server could not be built from its configuration ([`crate::build`],
//! [`crate::build_cluster`]): one variant per part that refused it, each printing the part's
//! own message (`bss-server: <message>`).

use crate::cluster::BusError;

/// What can go wrong building a server.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `--api-prefix` is not a valid path prefix.
    #[error("{0}")]
    Prefix(String),
    /// A `--public-prefix` is invalid (not under the api prefix, malformed).
    #[error("{0}")]
    PublicPrefix(String),
    /// Authentication could not be set up (secret file unreadable or too short).
    #[error("{0}")]
    Access(String),
    /// An `--allowed-origin` is not an origin.
    #[error("{0}")]
    Origin(String),
    /// An `--allowed-host` is not a host name.
    #[error("{0}")]
    Host(String),
    /// A `--namespace` is malformed, or the dynamic namespace pattern was refused.
    #[error("{0}")]
    Namespaces(String),
    /// The Redis adapter's url is invalid or Redis does not answer.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Redis answered but refused the adapter's subscriptions.
    #[error("subscribing to redis at {url}: {reason}")]
    Subscribe {
        /// The adapter url as given.
        url: String,
        /// Why.
        reason: String,
    },
}
