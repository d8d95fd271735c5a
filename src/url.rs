//! The WebSocket URL of a socket.io server, from the `url` option the app gives.

/// The Engine.IO path and query for the WebSocket transport.
pub const ENGINE_PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Turns `http(s)://host[:port][/]` or `ws(s)://…` into the Engine.IO WebSocket URL.
///
/// `base` is the app's `url` option, or the page's origin when it gave none. A URL with no
/// scheme is taken as a host (`ws://`). Returns `None` for an empty string. Surrounding ASCII
/// whitespace is ignored (ASCII only: Unicode's tables would cost the wasm ~1 KB).
pub fn websocket_url(base: &str) -> Option<String> {
    let base = base.trim_ascii();
    if base.is_empty() {
        return None;
    }
    // A byte search rather than `split_once("://")`, whose substring searcher costs the wasm
    // ~1 KB; "://" is ASCII, so both sides are valid strings.
    let sep = base.as_bytes().windows(3).position(|w| w == b"://");
    let split = sep.and_then(|i| Some((base.get(..i)?, base.get(i + 3..)?)));
    let (scheme, rest) = match split {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("ws".to_owned(), base),
    };
    let scheme = match scheme.as_str() {
        "https" | "wss" => "wss",
        _ => "ws",
    };
    // Trailing slashes off, byte-wise (core's char searcher costs the wasm more than this).
    let end = rest.bytes().rposition(|b| b != b'/').map_or(0, |i| i + 1);
    let rest = rest.get(..end).unwrap_or("");
    if rest.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(scheme.len() + 3 + rest.len() + ENGINE_PATH.len());
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(rest);
    out.push_str(ENGINE_PATH);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::websocket_url;

    #[test]
    fn maps_schemes_and_appends_the_engine_path() {
        let p = "/socket.io/?EIO=4&transport=websocket";
        assert_eq!(
            websocket_url("http://127.0.0.1:3000").unwrap(),
            format!("ws://127.0.0.1:3000{p}")
        );
        assert_eq!(
            websocket_url("https://example.com/").unwrap(),
            format!("wss://example.com{p}")
        );
        assert_eq!(websocket_url("ws://h:1").unwrap(), format!("ws://h:1{p}"));
        assert_eq!(websocket_url("WSS://h").unwrap(), format!("wss://h{p}"));
        assert_eq!(
            websocket_url("localhost:8080").unwrap(),
            format!("ws://localhost:8080{p}")
        );
        assert_eq!(websocket_url("  "), None);
        assert_eq!(websocket_url("http://"), None);
    }
}
