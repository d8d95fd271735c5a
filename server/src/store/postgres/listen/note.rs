//! The notification of a change: what a writer sends with `pg_notify` at COMMIT and the
//! listener reads back: `<xid> <seq> <record>`, or `<xid> <seq>` for a record too large for a
//! NOTIFY payload (read from the outbox by its `seq`).

use super::Pos;

/// The NOTIFY channel of changes.
pub(crate) const CHANNEL: &str = "bss_changes";
/// Largest record sent inline in a NOTIFY payload (PostgreSQL refuses 8,000 bytes or more);
/// a larger one is read from `bss_outbox`.
pub(crate) const INLINE_MAX: usize = 7_000;

/// The statement a writer keeps and NOTIFYs one change with (`$1`: its record, see
/// [`super::record`]), in one round trip: the row takes the next `seq` and its transaction's
/// id, and the notification carries both, with the record when it is at most [`INLINE_MAX`]
/// bytes.
pub fn keep_and_notify() -> String {
    format!(
        "WITH kept AS (INSERT INTO bss_outbox (payload) VALUES ($1::text) RETURNING xid, seq)
         SELECT pg_notify('{CHANNEL}', xid::text || ' ' || seq::text
             || CASE WHEN octet_length($1::text) <= {INLINE_MAX} THEN ' ' || $1::text ELSE '' END)
         FROM kept"
    )
}

/// A notification's row place and its record, if inline; `None` for a malformed one.
pub(crate) fn parse(payload: &str) -> Option<(Pos, Option<&str>)> {
    let (xid, rest) = payload.split_once(' ')?;
    let (seq, record) = match rest.split_once(' ') {
        Some((seq, record)) => (seq, Some(record)),
        None => (rest, None),
    };
    let pos = Pos {
        xid: xid.parse().ok()?,
        seq: seq.parse().ok()?,
    };
    Some((pos, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_carry_the_rows_place_and_maybe_its_record() {
        let pos = Pos { xid: 750, seq: 12 };
        assert_eq!(
            parse("750 12 {\"a\":\"b c\"}"),
            Some((pos, Some("{\"a\":\"b c\"}")))
        );
        assert_eq!(parse("750 12"), Some((pos, None)));
        for malformed in ["", "12", "x 12", "750 y {}", "750  {}"] {
            assert_eq!(parse(malformed), None, "{malformed:?}");
        }
    }
}
