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
//!
//! The page's own writes are not broadcast to it: while one is unanswered, a broadcast that
//! overtook its reply looks like a gap. So the room may *doubt* a gap instead: it lists the
//! versions missed ([`Versions::doubt`]), strikes each one it hears late (a reply, a late
//! broadcast), and whatever is left once the page's requests are answered was really missed.

/// At most this many versions missed are waited for; a wider gap is caught up at once.
pub const MAX_DOUBTED: i64 = 64;

/// What a version heard means for the model's held version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Not newer than the held version: ignore it.
    Stale,
    /// Newer, with nothing missed between (or the first version heard of this model): apply it.
    Next,
    /// Newer, but the versions `from..to` were never heard: apply it, then read the collection
    /// again (or [`Versions::doubt`] it).
    Gap {
        /// The first version missed.
        from: i64,
        /// The version heard (the last missed is the one before it).
        to: i64,
    },
}

/// One room's versions, by model id (the id as text, as `String(id)` writes it).
#[derive(Debug, Default)]
pub struct Versions {
    /// A list, not a map: a room holds the versions of the models it heard of, a handful to
    /// some thousands, and a scan of them costs microseconds per broadcast, where a
    /// `HashMap<String, _>` cost the wasm 0.5 KB gzip (measured).
    held: Vec<(String, i64)>,
    /// Versions missed in doubted gaps and not heard since, by model id.
    doubted: Vec<(String, i64)>,
}

impl Versions {
    /// No versions held.
    pub fn new() -> Self {
        Versions::default()
    }

    /// The version held for `id`, if any.
    pub fn held(&self, id: &str) -> Option<i64> {
        self.held.iter().find(|(i, _)| i == id).map(|(_, v)| *v)
    }

    /// A broadcast of `id` at `version`: stale, next or a gap; a newer one is held from now
    /// on (a deletion's too, so that a late update cannot bring the model back).
    pub fn broadcast(&mut self, id: &str, version: i64) -> Heard {
        match self.held(id) {
            Some(held) if version <= held => {
                self.strike(id, version);
                Heard::Stale
            }
            held => {
                self.hold(id, version);
                match held {
                    Some(h) if version > h.saturating_add(1) => Heard::Gap {
                        from: h + 1,
                        to: version,
                    },
                    _ => Heard::Next,
                }
            }
        }
    }

    /// Waits for the versions `from..to` of `id` instead of reading again at once: `false`
    /// (nothing recorded) when there are more than [`MAX_DOUBTED`] in all.
    pub fn doubt(&mut self, id: &str, from: i64, to: i64) -> bool {
        let wide = to.saturating_sub(from);
        if wide > MAX_DOUBTED - self.doubted.len() as i64 {
            return false;
        }
        self.doubted.extend((from..to).map(|v| (id.to_owned(), v)));
        true
    }

    /// Whether a doubted version was never heard.
    pub fn missed(&self) -> bool {
        !self.doubted.is_empty()
    }

    /// Forgets the doubted versions (a catch-up read covers them).
    pub fn forget_doubts(&mut self) {
        self.doubted.clear();
    }

    /// Holds `version` for `id`.
    fn hold(&mut self, id: &str, version: i64) {
        match self.held.iter_mut().find(|(i, _)| i == id) {
            Some(slot) => slot.1 = version,
            None => self.held.push((id.to_owned(), version)),
        }
    }

    /// `version` of `id` was heard after all.
    fn strike(&mut self, id: &str, version: i64) {
        self.doubted.retain(|(i, v)| !(i == id && *v == version));
    }

    /// A reply to the page's own request for `id` at `version`: `false` when it is stale (not
    /// newer than what the room holds), else `true`, and the version is held from now on.
    pub fn reply(&mut self, id: &str, version: i64) -> bool {
        if self.held(id).is_some_and(|held| version <= held) {
            self.strike(id, version);
            return false;
        }
        self.hold(id, version);
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
        assert_eq!(v.broadcast("1", 4), Heard::Gap { from: 3, to: 4 });
        assert_eq!(v.held("1"), Some(4));
        assert_eq!(v.broadcast("1", 3), Heard::Stale, "the missed one, late");
        assert_eq!(v.broadcast("1", 5), Heard::Next);
        let gap = v.broadcast("1", i64::MAX);
        assert_eq!(
            gap,
            Heard::Gap {
                from: 6,
                to: i64::MAX
            },
            "no overflow"
        );
        assert!(!v.doubt("1", 6, i64::MAX), "too wide to wait for");
        assert!(!v.missed());
    }

    #[test]
    fn doubted_versions_are_struck_when_heard_late() {
        let mut v = Versions::new();
        v.broadcast("1", 1);
        let Heard::Gap { from, to } = v.broadcast("1", 4) else {
            panic!("a gap");
        };
        assert!(v.doubt("1", from, to));
        assert!(v.missed());
        assert!(!v.reply("1", 2), "the page's own write, answered late");
        assert!(v.missed(), "3 still missing");
        assert_eq!(
            v.broadcast("2", 3),
            Heard::Next,
            "another model's 3 is not it"
        );
        assert!(v.missed());
        assert_eq!(v.broadcast("1", 3), Heard::Stale, "a late broadcast");
        assert!(!v.missed());
        v.broadcast("1", 9);
        assert!(v.doubt("1", 5, 9));
        v.forget_doubts();
        assert!(!v.missed());
        assert!(!v.doubt("1", 0, MAX_DOUBTED + 1));
        assert!(v.doubt("1", 0, MAX_DOUBTED));
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
