//! DNS rebinding, with authentication off. A hostile page at `http://evil.example:3000` whose
//! DNS answer is later switched to 127.0.0.1 is, to the browser, same-origin with this server:
//! its WebSocket's `Origin` matches the `Host` it sends, and its same-origin GETs carry no
//! `Origin` at all, so the origin check ([`crate::origin`]) lets it read and write everything.
//! What it cannot change is the `Host` header: its own name, a DNS name under a domain it
//! controls. So with authentication off, requests to socket.io, the api and `/_bss/` whose
//! `Host` is a dotted name are a 403 unless it is a `*.localhost` name (browsers resolve those
//! to loopback themselves), the host of an `--allowed-origin`, or an `--allowed-host`. IP
//! addresses, `localhost` and single-label names (`devbox`, a container's service name: no
//! public DNS answers for them) pass. With
//! authentication on, the hostile page has no token, unless `--demo-tokens` mints it one: the
//! check stays on then. With `--allowed-origin '*'` every page is let in anyway: no check then.

use std::net::IpAddr;

use crate::config::Config;

/// Which `Host` names requests may use.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    any: bool,
    names: Vec<String>,
}

impl HostPolicy {
    /// Every `Host` allowed.
    pub fn any() -> Self {
        Self {
            any: true,
            names: Vec::new(),
        }
    }

    /// The policy `config` asks for: none with authentication on without `--demo-tokens` (see
    /// the module docs) or with `--allowed-origin '*'`; else IP addresses, single-label names,
    /// `*.localhost`, `--allowed-host` names (`*` for all) and the hosts of the
    /// `--allowed-origin`s.
    pub fn from_config(config: &Config, auth_on: bool) -> Result<Self, String> {
        let origins = config.allowed_origins.iter().map(|o| o.trim());
        // Anyone may mint a token with --demo-tokens: a token proves nothing about the page.
        let tokens_guard = auth_on && !config.demo_tokens;
        if tokens_guard || origins.clone().any(|o| o == "*") {
            return Ok(Self::any());
        }
        let mut policy = Self::default();
        for host in &config.allowed_hosts {
            let host = host.trim();
            if host == "*" {
                return Ok(Self::any());
            }
            let name = normalize(host);
            if name.is_empty() || name.contains(['/', ':', ' ', '@', '?', '#', '[', ']']) {
                return Err(format!(
                    "--allowed-host {host:?}: expected a host name (app.example.com) or *"
                ));
            }
            policy.names.push(name);
        }
        // The origin's authority, without port (the origin check has validated its form).
        for origin in origins {
            if let Some((_, authority)) = origin.trim_end_matches('/').split_once("://") {
                policy.names.push(normalize(name_of(authority)));
            }
        }
        Ok(policy)
    }

    /// True when a request whose `Host` header is `host` may proceed. A request with none
    /// (HTTP/1.0; browsers always send one) passes.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        if self.any {
            return true;
        }
        let name = normalize(name_of(host));
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        ip || !name.contains('.') || name.ends_with(".localhost") || self.names.contains(&name)
    }
}

/// The host of `host[:port]` (an IPv6 literal keeps its brackets).
fn name_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .split_once(':')
        .map_or(authority, |(name, _)| name)
}

/// Lower case, no trailing dot (`LocalHost.` is `localhost`).
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn policy(args: &[&str], auth_on: bool) -> Result<HostPolicy, String> {
        let config = Config::parse_from([&["bss-server"], args].concat());
        HostPolicy::from_config(&config, auth_on)
    }

    #[test]
    fn by_default_ip_addresses_and_localhost() {
        let p = policy(&[], false).unwrap();
        for ok in [
            "127.0.0.1:3000",
            "127.0.0.1",
            "[::1]:3000",
            "[::1]",
            "192.168.1.20:80",
            "localhost:3000",
            "LocalHost.:3000",
            "app.localhost:3000",
            "devbox:3000",
            "bss-server",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "evil.example:3000",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "[::1.evil]:3000",
            "evil.example.:3000",
            "evil.example@127.0.0.1",
        ] {
            assert!(!p.allows(Some(refused)), "{refused}");
        }
        assert!(p.allows(None));
    }

    #[test]
    fn allowed_hosts_and_origins_add_names() {
        let p = policy(
            &[
                "--allowed-host",
                "App.Internal.example",
                "--allowed-origin",
                "https://site.example.com:8443",
            ],
            false,
        )
        .unwrap();
        assert!(p.allows(Some("app.internal.example:3000")));
        assert!(p.allows(Some("site.example.com")));
        assert!(!p.allows(Some("other.internal.example:3000")));
        assert!(policy(&["--allowed-host", "*"], false)
            .unwrap()
            .allows(Some("anything")));
        assert!(policy(&["--allowed-origin", "*"], false)
            .unwrap()
            .allows(Some("anything")));
        assert!(policy(&[], true).unwrap().allows(Some("anything")));
        let demo = policy(&["--demo-tokens"], true).unwrap();
        assert!(
            !demo.allows(Some("evil.example:3000")),
            "demo tokens keep it"
        );
        assert!(demo.allows(Some("localhost:3000")));
        for bad in ["a/b", "a:80", "", "[::1]"] {
            assert!(policy(&["--allowed-host", bad], false).is_err(), "{bad}");
        }
    }
}
