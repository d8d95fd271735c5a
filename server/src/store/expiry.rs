//! When request records expire and how often the stores look for expired ones: decided once
//! for both backends (each runs the sweep its own way: SQLite on a thread of its own,
//! PostgreSQL by the database's clock on every node).
//!
//! A request record lets a client re-send a write with its requestId and get the first
//! answer instead of a second write, so it must outlive the longest time a client may stay
//! offline with writes queued: 7 days by default (`--request-retention`), a phone offline
//! over a long weekend.

use std::time::Duration;

/// How long request records are kept unless `--request-retention` says otherwise.
pub const DEFAULT_REQUEST_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often records kept for `retention` are swept: a tenth of it, at least every second and
/// at most every hour, so a record is forgotten at most 10% (or an hour) after its time.
pub fn sweep_every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_come_often_enough_and_never_in_a_busy_loop() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(sweep_every(DEFAULT_REQUEST_RETENTION), secs(3600));
        assert_eq!(sweep_every(secs(600)), secs(60));
        assert_eq!(sweep_every(secs(2)), secs(1));
        assert_eq!(sweep_every(Duration::ZERO), secs(1));
    }
}
