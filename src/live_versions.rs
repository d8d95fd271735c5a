//! The versions a live collection's room holds, decided purely: [`crate::live`] keeps one
//! [`Versions`] per room and asks it about every broadcast and every reply of the page's own
//! that carries a version.
//!
//! The server gives every document a version (1 when created, +1 on each write) and sends it
//! with every reply and broadcast. A room keeps, per model id, the highest version it heard
//! (not in the model's attributes). What is not newer than that is stale: applying it would
//! step the page back to an older state (a reply that overtook a broadcast, or a broadcast
//! that overtook a reply). A broadcast more than one past the held version means the room
//! missed a change: a gap, answered with a catch-up read. A page's own replies never count as
//! gaps: the broadcasts of the writes between may still be on their way.

use std::collections::HashMap;

/// What a version heard means for the model's held version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Not newer than the held version: ignore it.
    Stale,
    /// Newer, with nothing missed between (or the first version heard of this model): apply it.
    Next,
    /// Newer, but versions between were never heard: apply it, then read the collection again.
    Gap,
}

/// One room's versions, by model id (the id as text, as `String(id)` writes it).
#[derive(Debug, Default)]
pub struct Versions {
    held: HashMap<String, i64>,
}

impl Versions {
    /// No versions held.
    pub fn new() -> Self {
        Versions::default()
    }

    /// The version held for `id`, if any.
    pub fn held(&self, id: &str) -> Option<i64> {
        self.held.get(id).copied()
    }

    /// A broadcast of `id` at `version`: stale, next or a gap; a newer one is held from now
    /// on (a deletion's too, so that a late update cannot bring the model back).
    pub fn broadcast(&mut self, id: &str, version: i64) -> Heard {
        match self.held(id) {
            Some(held) if version <= held => Heard::Stale,
            held => {
                self.held.insert(id.to_owned(), version);
                if held.is_some_and(|h| version > h.saturating_add(1)) {
                    Heard::Gap
                } else {
                    Heard::Next
                }
            }
        }
    }

    /// A reply to the page's own request for `id` at `version`: `false` when it is stale (not
    /// newer than what the room holds), else `true`, and the version is held from now on.
    pub fn reply(&mut self, id: &str, version: i64) -> bool {
        if self.held(id).is_some_and(|held| version <= held) {
            return false;
        }
        self.held.insert(id.to_owned(), version);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_version_is_next_then_only_newer_ones_count() {
        let mut v = Versions::new();
        assert_eq!(
            v.broadcast("1", 4),
            Heard::Next,
            "first heard: no gap known"
        );
        assert_eq!(v.broadcast("1", 4), Heard::Stale, "equal");
        assert_eq!(v.broadcast("1", 3), Heard::Stale, "older");
        assert_eq!(v.broadcast("1", 5), Heard::Next);
        assert_eq!(v.held("1"), Some(5));
        assert_eq!(v.broadcast("2", 1), Heard::Next, "per model");
    }

    #[test]
    fn a_broadcast_past_the_next_version_is_a_gap_and_is_held() {
        let mut v = Versions::new();
        v.broadcast("1", 2);
        assert_eq!(v.broadcast("1", 4), Heard::Gap);
        assert_eq!(v.held("1"), Some(4));
        assert_eq!(v.broadcast("1", 3), Heard::Stale, "the missed one, late");
        assert_eq!(v.broadcast("1", 5), Heard::Next);
        assert_eq!(v.broadcast("1", i64::MAX), Heard::Gap, "no overflow");
    }

    #[test]
    fn replies_and_broadcasts_share_the_held_version_in_either_order() {
        // A reply that overtook a broadcast: the broadcast is stale.
        let mut v = Versions::new();
        v.broadcast("1", 1);
        assert!(v.reply("1", 3));
        assert_eq!(v.broadcast("1", 2), Heard::Stale);
        assert_eq!(
            v.broadcast("1", 4),
            Heard::Next,
            "the page's own write counts"
        );
        // A broadcast that overtook a reply: the reply is stale, equal included.
        assert!(!v.reply("1", 3));
        assert!(!v.reply("1", 4));
        // A reply past the next version is no gap: it is applied and held.
        assert!(v.reply("1", 9));
        assert_eq!(v.held("1"), Some(9));
    }
}
