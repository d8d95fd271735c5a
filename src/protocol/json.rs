//! A minimal JSON scanner: validates JSON text and finds the boundaries of values without
//! building them.
//!
//! The client never needs JSON *values* in Rust: it needs to know that a payload is valid, to
//! split a top-level array into its elements (the event name and its arguments), to read a few
//! string or integer fields (event names, the open packet), and to write strings. Everything
//! else stays text and is handed to the browser's `JSON.parse`.
//!
//! The scanner is iterative (an explicit stack, not recursion), so hostile nesting cannot
//! overflow the call stack.

use crate::prelude::*;

use super::ProtocolError;

type Result<T> = core::result::Result<T, ProtocolError>;

/// Checks that `text` is exactly one JSON value, surrounded by optional whitespace.
pub fn validate(text: &str) -> Result<()> {
    let end = scan_value(text.as_bytes(), 0)?;
    if skip_ws(text.as_bytes(), end) != text.len() {
        return Err(ProtocolError::TrailingData);
    }
    Ok(())
}

/// Splits a JSON array into the text of its elements (each trimmed of whitespace).
///
/// `["a",{"b":1}]` gives `["\"a\"", "{\"b\":1}"]`. Anything but one complete array is an error.
pub fn split_array(text: &str) -> Result<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    match b.get(i) {
        Some(b'[') => i += 1,
        Some(_) => return Err(ProtocolError::UnexpectedPayload),
        None => return Err(ProtocolError::Empty),
    }
    let mut items = Vec::new();
    i = skip_ws(b, i);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let start = skip_ws(b, i);
            let end = scan_value(b, start)?;
            items.push(super::sub(text, start, end));
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(_) => return Err(ProtocolError::InvalidJson),
                None => return Err(ProtocolError::TruncatedJson),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(ProtocolError::TrailingData);
    }
    Ok(items)
}

/// Splits a JSON object into `(key, value text)` pairs, keys unescaped, in document order.
pub fn object_fields(text: &str) -> Result<Vec<(String, &str)>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    match b.get(i) {
        Some(b'{') => i += 1,
        Some(_) => return Err(ProtocolError::UnexpectedPayload),
        None => return Err(ProtocolError::Empty),
    }
    let mut fields = Vec::new();
    i = skip_ws(b, i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let key_start = skip_ws(b, i);
            if b.get(key_start) != Some(&b'"') {
                return Err(eof_or(b, key_start, ProtocolError::InvalidJson));
            }
            let key_end = scan_string(b, key_start)?;
            let key = unescape(super::sub(text, key_start, key_end))?;
            i = skip_ws(b, key_end);
            match b.get(i) {
                Some(b':') => i += 1,
                _ => return Err(eof_or(b, i, ProtocolError::InvalidJson)),
            }
            let start = skip_ws(b, i);
            let end = scan_value(b, start)?;
            fields.push((key, super::sub(text, start, end)));
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(eof_or(b, i, ProtocolError::InvalidJson)),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(ProtocolError::TrailingData);
    }
    Ok(fields)
}

/// The value text of the first field named `key` in a JSON object, if the text is an object
/// and has that field.
pub fn field<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    object_fields(object)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Reads a JSON string literal (with its quotes) into a Rust string, resolving escapes.
///
/// A lone UTF-16 surrogate (legal in JSON, impossible in a Rust `String`) becomes U+FFFD.
pub fn unescape(literal: &str) -> Result<String> {
    let b = literal.as_bytes();
    if b.first() != Some(&b'"') {
        return Err(ProtocolError::UnexpectedPayload);
    }
    if scan_string(b, 0)? != b.len() {
        return Err(ProtocolError::TrailingData);
    }
    let inner = super::sub(literal, 1, literal.len() - 1);
    if !inner.bytes().any(|c| c == b'\\') {
        return Ok(inner.to_owned());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // `scan_string` has already checked every escape, so the fallbacks below are unreachable
        // in practice; they keep this function total without a panic path.
        let e = chars.next().unwrap_or('\\');
        out.push(match e {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hi = hex4(&mut chars);
                if (0xD800..0xDC00).contains(&hi) {
                    let mut ahead = chars.clone();
                    if ahead.next() == Some('\\') && ahead.next() == Some('u') {
                        let lo = hex4(&mut ahead);
                        if (0xDC00..0xE000).contains(&lo) {
                            chars = ahead;
                            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                            continue;
                        }
                    }
                }
                char::from_u32(hi).unwrap_or('\u{FFFD}')
            }
            other => other,
        });
    }
    Ok(out)
}

/// Reads a JSON number that is a non-negative integer fitting in a `u64` (`25000`, not `2.5e4`).
pub fn parse_u64(text: &str) -> Option<u64> {
    let t = text.trim_ascii();
    if t.is_empty() || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xF] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Returns `s` as a JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

fn hex4(chars: &mut core::str::Chars<'_>) -> u32 {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next().and_then(|c| c.to_digit(16)).unwrap_or(0);
    }
    v
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn eof_or(b: &[u8], i: usize, e: ProtocolError) -> ProtocolError {
    if i >= b.len() {
        ProtocolError::TruncatedJson
    } else {
        e
    }
}

/// Scans one JSON value starting at `i` (after optional whitespace); returns the index just
/// past it.
fn scan_value(b: &[u8], i: usize) -> Result<usize> {
    // Open containers: b'[' or b'{'.
    let mut stack: Vec<u8> = Vec::new();
    let mut i = skip_ws(b, i);
    loop {
        // Expect a value at `i`.
        i = skip_ws(b, i);
        match b.get(i) {
            None => return Err(ProtocolError::TruncatedJson),
            Some(&open @ (b'[' | b'{')) => {
                let close = if open == b'[' { b']' } else { b'}' };
                let j = skip_ws(b, i + 1);
                if b.get(j) == Some(&close) {
                    i = j + 1;
                } else {
                    stack.push(open);
                    i = if open == b'{' { scan_key(b, j)? } else { j };
                    continue;
                }
            }
            Some(b'"') => i = scan_string(b, i)?,
            Some(b't') => i = literal(b, i, b"true")?,
            Some(b'f') => i = literal(b, i, b"false")?,
            Some(b'n') => i = literal(b, i, b"null")?,
            Some(b'-' | b'0'..=b'9') => i = scan_number(b, i)?,
            Some(_) => return Err(ProtocolError::InvalidJson),
        }
        // After a value: close containers until a separator starts the next value.
        loop {
            let Some(&top) = stack.last() else {
                return Ok(i);
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if top == b'{' {
                        i = scan_key(b, i)?;
                    }
                    break;
                }
                Some(b']') if top == b'[' => {
                    stack.pop();
                    i += 1;
                }
                Some(b'}') if top == b'{' => {
                    stack.pop();
                    i += 1;
                }
                None => return Err(ProtocolError::TruncatedJson),
                Some(_) => return Err(ProtocolError::InvalidJson),
            }
        }
    }
}

/// Scans `"key" :` and returns the index after the colon.
fn scan_key(b: &[u8], i: usize) -> Result<usize> {
    let i = skip_ws(b, i);
    if b.get(i) != Some(&b'"') {
        return Err(eof_or(b, i, ProtocolError::InvalidJson));
    }
    let i = skip_ws(b, scan_string(b, i)?);
    match b.get(i) {
        Some(b':') => Ok(i + 1),
        _ => Err(eof_or(b, i, ProtocolError::InvalidJson)),
    }
}

/// Scans a string literal starting at the opening quote; returns the index after the closing one.
fn scan_string(b: &[u8], mut i: usize) -> Result<usize> {
    i += 1;
    loop {
        match b.get(i) {
            None => return Err(ProtocolError::TruncatedJson),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match b.get(i + 1) {
                None => return Err(ProtocolError::TruncatedJson),
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    for k in 0..4 {
                        match b.get(i + 2 + k) {
                            None => return Err(ProtocolError::TruncatedJson),
                            Some(c) if c.is_ascii_hexdigit() => {}
                            Some(_) => return Err(ProtocolError::InvalidJson),
                        }
                    }
                    i += 6;
                }
                Some(_) => return Err(ProtocolError::InvalidJson),
            },
            Some(&c) if c < 0x20 => return Err(ProtocolError::InvalidJson),
            Some(_) => i += 1,
        }
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize> {
    let end = i + word.len();
    match b.get(i..end) {
        Some(s) if s == word => Ok(end),
        Some(_) => Err(ProtocolError::InvalidJson),
        None if word.starts_with(&b[i..]) => Err(ProtocolError::TruncatedJson),
        None => Err(ProtocolError::InvalidJson),
    }
}

fn scan_number(b: &[u8], mut i: usize) -> Result<usize> {
    let digits = |b: &[u8], mut i: usize| -> Result<usize> {
        let start = i;
        while matches!(b.get(i), Some(b'0'..=b'9')) {
            i += 1;
        }
        if i == start {
            return Err(eof_or(b, i, ProtocolError::InvalidJson));
        }
        Ok(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    if b.get(i) == Some(&b'0') {
        i += 1;
    } else {
        i = digits(b, i)?;
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Ok(i)
}
