//! Where a node's change feed stands in the outbox, and which rows it handed on already: the
//! pure decisions of the listener ([`super`]), natively tested.
//!
//! Outbox rows are ordered by `(xid, seq)`: the writing transaction's id, then the row's
//! sequence number. A transaction gets its id at its first write, and sequence numbers are
//! drawn before COMMIT, so neither is commit order: a row with a lower `seq` (or `xid`) can
//! commit after a higher one. What is safe is the database's *xmin*, the oldest transaction
//! still running: every row of a lower `xid` belongs to a finished transaction, so the set of
//! rows below it never changes again (emmett's `readMessagesBatch`, after its commit 580d0a3e).
//!
//! So the feed keeps:
//! - a cursor, every row at or below which was handed on: it moves only to an xmin the
//!   database reported (after reading every row below it), or to the sweep's watermark
//!   (rows below that are gone: the feed then tells its followers to resync);
//! - the rows above the cursor that notifications (sent at COMMIT, so delivered as soon as a
//!   row is final) already handed on, so that reading the outbox does not hand them on again.

use std::collections::BTreeSet;

/// An outbox row's place: its transaction's id, then its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Pos {
    /// The writing transaction's id (`xid8`, as a number).
    pub xid: i64,
    /// The row's `seq`.
    pub seq: i64,
}

impl Pos {
    /// Just below every row of transaction `xid` (sequence numbers start at 1).
    pub fn before_xid(xid: i64) -> Self {
        Self { xid, seq: 0 }
    }
}

/// What the feed handed on so far (see the module's doc).
#[derive(Debug)]
pub(crate) struct Cursor {
    /// Every row at or below it was handed on (or lost and signalled).
    at: Pos,
    /// Rows above `at` handed on from notifications.
    notified: BTreeSet<Pos>,
}

impl Cursor {
    /// A feed that starts after `at`: rows at or below it are not this feed's.
    pub fn new(at: Pos) -> Self {
        Self {
            at,
            notified: BTreeSet::new(),
        }
    }

    /// Where the feed stands.
    pub fn at(&self) -> Pos {
        self.at
    }

    /// A notified row: true when it is to be handed on (not handed on before).
    pub fn notified(&mut self, row: Pos) -> bool {
        row > self.at && self.notified.insert(row)
    }

    /// The sweep deleted every row up to `watermark`: true when some of them were above the
    /// cursor (they may never have been handed on: the feed's followers must resync). The
    /// cursor then moves past them.
    pub fn swept_to(&mut self, watermark: Pos) -> bool {
        if watermark <= self.at {
            return false;
        }
        self.advance(watermark);
        true
    }

    /// How many rows above the cursor and below transaction `xmin` were notified: when the
    /// outbox holds as many there, it holds no other ([`Cursor::read_to`] may skip reading).
    pub fn notified_below(&self, xmin: i64) -> usize {
        let end = Pos::before_xid(xmin);
        if end <= self.at {
            return 0;
        }
        self.notified.range(self.at..end).count()
    }

    /// A row read from the outbox, in `(xid, seq)` order and below the last xmin read: true
    /// when it is to be handed on (no notification did). The cursor moves to it.
    pub fn read(&mut self, row: Pos) -> bool {
        if row <= self.at {
            return false;
        }
        let notified = self.notified.remove(&row);
        self.advance(row);
        !notified
    }

    /// Every row below transaction `xmin` (all of them final) was handed on.
    pub fn read_to(&mut self, xmin: i64) {
        self.advance(Pos::before_xid(xmin));
    }

    fn advance(&mut self, to: Pos) {
        if to > self.at {
            self.at = to;
            // Keeps the rows above `to` (`split_off` keeps those at or above its key).
            self.notified = self.notified.split_off(&Pos {
                xid: to.xid,
                seq: to.seq.saturating_add(1),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(xid: i64, seq: i64) -> Pos {
        Pos { xid, seq }
    }

    #[test]
    fn a_lower_seq_committed_later_is_handed_on_once() {
        // Transaction 10 drew seq 1 and commits after transaction 11 (seq 2).
        let mut cursor = Cursor::new(Pos::before_xid(10));
        assert!(cursor.notified(pos(11, 2)));
        // The outbox read while 10 runs stops below it: nothing is read, nothing moves.
        assert_eq!(cursor.notified_below(10), 0);
        cursor.read_to(10);
        assert!(cursor.notified(pos(10, 1)), "the lower seq is not skipped");
        assert!(!cursor.notified(pos(10, 1)), "nor handed on twice");
        // Both final now: the outbox holds exactly the two notified rows below 12.
        assert_eq!(cursor.notified_below(12), 2);
        cursor.read_to(12);
        assert_eq!(cursor.at(), Pos::before_xid(12));
        assert!(!cursor.notified(pos(11, 2)), "a late duplicate is dropped");
    }

    #[test]
    fn rows_read_are_handed_on_unless_notified_and_notes_of_rows_read_are_dropped() {
        let mut cursor = Cursor::new(pos(5, 9));
        assert!(!cursor.read(pos(5, 9)), "at the start: not this feed's");
        assert!(cursor.notified(pos(7, 12)));
        assert_eq!(cursor.notified_below(8), 1);
        // The outbox holds 6/10 and 7/12 below 8: 6/10 was never notified (it committed
        // before LISTEN took effect).
        assert!(cursor.read(pos(6, 10)));
        assert!(!cursor.read(pos(7, 12)));
        cursor.read_to(8);
        // 6/10's notification arrives after it was read.
        assert!(!cursor.notified(pos(6, 10)));
        assert!(cursor.notified(pos(8, 11)));
        assert!(cursor.notified(pos(9, 13)));
        assert_eq!(cursor.notified_below(9), 1);
    }

    #[test]
    fn a_cursor_behind_the_watermark_resyncs_once() {
        let mut cursor = Cursor::new(pos(3, 1));
        assert!(cursor.notified(pos(4, 2)));
        assert!(cursor.notified(pos(9, 5)));
        assert!(
            !cursor.swept_to(pos(2, 7)),
            "swept below the cursor: nothing lost"
        );
        assert!(cursor.swept_to(pos(6, 4)), "swept above it: maybe lost");
        assert_eq!(cursor.at(), pos(6, 4));
        assert!(!cursor.swept_to(pos(6, 4)), "signalled once");
        assert_eq!(cursor.notified_below(10), 1, "9/5 is still above");
    }
}
