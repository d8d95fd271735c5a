//! Access tokens: HS256 JWTs signed with the secret of `--auth-secret-file`.
//!
//! A token is accepted only when its header says `HS256` (not `none`, not `RS256` or any other
//! algorithm, whatever key it was signed with), its signature checks with the secret, it has a
//! `sub` (1 to [`MAX_SUB_LEN`] bytes: the user, whose documents it reads and writes) and an
//! `exp` (seconds since the epoch) that is still in the future: no leeway, so a token expired
//! by one second is refused. Other claims (`iat`, …) are allowed and ignored.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Fewest bytes of secret accepted: HS256's own output size (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest `sub` accepted, in bytes.
pub const MAX_SUB_LEN: usize = 256;

/// The claims this server reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch (written by [`Auth::mint`], not required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// Why a token was refused (for the log; clients only ever hear "unauthorized").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Verifies and mints tokens with one HS256 secret.
pub struct Auth {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { secret: <hidden> }")
    }
}

impl Auth {
    /// Tokens signed with `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the auth secret has {} bytes; at least {MIN_SECRET_LEN} are needed \
                 (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            decoding: DecodingKey::from_secret(secret),
            encoding: EncodingKey::from_secret(secret),
            validation,
        })
    }

    /// Reads the secret from `path` (one trailing newline, if any, is not part of it).
    pub fn load(path: &Path) -> Result<Self, String> {
        let mut secret = std::fs::read(path)
            .map_err(|e| format!("cannot read the auth secret {}: {e}", path.display()))?;
        if secret.ends_with(b"\n") {
            secret.pop();
            if secret.ends_with(b"\r") {
                secret.pop();
            }
        }
        Self::from_secret(&secret).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A random secret for this process only (`--demo-tokens` without a secret file): its
    /// tokens stop working when the process exits.
    pub fn ephemeral() -> Self {
        use ring::rand::SecureRandom as _;
        let mut secret = [0u8; MIN_SECRET_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut secret)
            .expect("the system's random generator");
        Self::from_secret(&secret).expect("long enough")
    }

    /// The claims of a valid token, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, Refused> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| Refused(e.to_string()))?;
        let claims = data.claims;
        // jsonwebtoken accepts `exp == now`; here a token is valid strictly before its exp,
        // which is also when its sockets are disconnected.
        if claims.exp <= now_secs() {
            return Err(Refused("ExpiredSignature".into()));
        }
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUB_LEN {
            return Err(Refused(format!("sub must have 1 to {MAX_SUB_LEN} bytes")));
        }
        Ok(claims)
    }

    /// A token for `sub` valid for `ttl` from now; returns it with its `exp`.
    pub fn mint(&self, sub: &str, ttl: Duration) -> Result<(String, u64), String> {
        if sub.is_empty() || sub.len() > MAX_SUB_LEN {
            return Err(format!("sub must have 1 to {MAX_SUB_LEN} bytes"));
        }
        let now = now_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            exp: now.saturating_add(ttl.as_secs().max(1)),
            iat: Some(now),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())?;
        Ok((token, claims.exp))
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How long until `exp`: zero when it is past, `None` when it is beyond what the clock can
/// represent (a token signed with an absurd `exp` never expires rather than panicking here).
pub fn until(exp: u64) -> Option<Duration> {
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(exp))?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Parses a lifetime: a number with an optional unit `s`, `m`, `h` or `d` (`90`, `15m`, `1h`).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a lifetime like 90, 15m, 1h or 7d"))?;
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{text:?} is not a positive lifetime")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify_and_name_their_user() {
        let auth = Auth::from_secret(SECRET).unwrap();
        let (token, exp) = auth.mint("alice", Duration::from_secs(60)).unwrap();
        let claims = auth.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.exp), ("alice", exp));
        let other = Auth::from_secret(b"another secret of at least 32 bytes").unwrap();
        assert!(other.verify(&token).is_err(), "another secret");
        assert!(auth.verify("garbage").is_err());
        assert!(auth.verify("").is_err());
    }

    #[test]
    fn short_secrets_and_empty_subs_are_refused() {
        assert!(Auth::from_secret(b"short").is_err());
        let auth = Auth::from_secret(SECRET).unwrap();
        assert!(auth.mint("", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn far_expiries_do_not_overflow() {
        assert_eq!(until(0), Some(Duration::ZERO));
        assert!(until(now_secs() + 10).unwrap() <= Duration::from_secs(10));
        assert_eq!(until(u64::MAX), None);
        let auth = Auth::from_secret(SECRET).unwrap();
        let (token, exp) = auth.mint("alice", Duration::from_secs(u64::MAX)).unwrap();
        assert_eq!(exp, u64::MAX);
        assert_eq!(auth.verify(&token).unwrap().exp, u64::MAX);
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "0", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
