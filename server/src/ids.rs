//! Model ids: which id segments are integers, and the range integer ids may take.
//!
//! Integer ids are 1 to 2^53 − 1 ([`MAX_ID`], JavaScript's `Number.MAX_SAFE_INTEGER`), so
//! every id the server hands out or accepts survives a round trip through a browser's
//! `JSON.parse`. An id segment written as an integer (`-5`, `0`, `9223372036854775807`)
//! outside that range is refused with a 400 unless the item names it as a string
//! (`{"id": "0"}`): then it is an ordinary string id. Neither kind ever moves a collection's
//! sequence; `create` skips ids a client already chose (see the SQLite writer).

use serde_json::Value;

use crate::error::ApiError;

/// Largest integer id: 2^53 − 1.
pub const MAX_ID: i64 = (1 << 53) - 1;

/// What an id segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A canonical integer in 1..=[`MAX_ID`].
    Integer(i64),
    /// Written as a canonical integer (optional `-`, no leading zero) but out of range.
    OutOfRange,
    /// Anything else: a string id.
    Text,
}

/// Classifies an id segment.
pub fn kind(segment: &str) -> IdKind {
    let digits = segment.strip_prefix('-').unwrap_or(segment);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && segment != "-0";
    if !canonical {
        return IdKind::Text;
    }
    match segment.parse::<i64>() {
        Ok(n) if (1..=MAX_ID).contains(&n) => IdKind::Integer(n),
        _ => IdKind::OutOfRange,
    }
}

/// An id segment as stored models carry it: a number when it is an integer id, else the
/// string (an out-of-range integer can only exist as a string id).
pub fn value(segment: &str) -> Value {
    match kind(segment) {
        IdKind::Integer(n) => Value::from(n),
        IdKind::OutOfRange | IdKind::Text => Value::from(segment),
    }
}

/// The 400 for an integer id segment outside 1..=[`MAX_ID`].
pub fn out_of_range() -> ApiError {
    ApiError::bad_request(format!(
        "integer ids must be from 1 to {MAX_ID}; send the id as a string in the item to use it as a string id"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(kind("1"), IdKind::Integer(1));
        assert_eq!(kind("9007199254740991"), IdKind::Integer(MAX_ID));
        for out in [
            "0",
            "-1",
            "-5",
            "9007199254740992",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999999",
        ] {
            assert_eq!(kind(out), IdKind::OutOfRange, "{out}");
        }
        for text in ["05", "-0", "-", "", "1e3", "abc", "1.5", "+1", "00"] {
            assert_eq!(kind(text), IdKind::Text, "{text}");
        }
        assert_eq!(value("7"), Value::from(7));
        assert_eq!(value("0"), Value::from("0"));
        assert_eq!(value("x"), Value::from("x"));
    }
}
