//! Access tokens: JWTs signed with an HS256 secret (`--auth-secret-file`), or by an identity
//! provider whose RS256/ES256 public key is given as PEM (`--auth-public-key-file`) or as a
//! JWKS (`--auth-jwks-file`, keys picked by `kid`, the file read again for a new `kid`; see
//! [`keys`] and [`source`]).
//!
//! A token is accepted only when its header names the algorithm its key was given for (never
//! `none`, never HS256 with a public key), its signature checks, it has a `sub` (1 to
//! [`MAX_SUB_LEN`] bytes: the user, whose documents it reads and writes) and an `exp`
//! (seconds since the epoch), and, with the [`Checks`]' leeway for the clocks of two
//! machines, its `exp` has not passed and its `nbf` (if any) has come. With `--auth-audience`
//! (`--auth-issuer`) set, its `aud` (`iss`) must be one of them; unset, the claim is not
//! looked at. Other claims (`iat`, `scope`, …) are allowed and ignored.

pub mod keys;
pub mod pem;
pub mod source;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use keys::KeySet;
use source::KeySource;

/// Fewest bytes of secret accepted: HS256's own output size (RFC 7518 §3.2).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest `sub` accepted, in bytes.
pub const MAX_SUB_LEN: usize = 256;
/// Default leeway for `exp` and `nbf`, in seconds: clocks of two machines differ.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;
/// Default of `--auth-max-ttl`: a token whose `exp` is further ahead than this is refused.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// The claims this server reads.
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

/// The claims of a minted token: [`Claims`] and the configured audience and issuer.
#[derive(Serialize)]
struct Minted<'a> {
    #[serde(flatten)]
    claims: &'a Claims,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

/// What a token must say besides its signature, `sub` and `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    /// Accepted audiences: `aud` must name one of them (none: `aud` is not looked at).
    pub audience: Vec<String>,
    /// Accepted issuers: `iss` must be one of them (none: `iss` is not looked at).
    pub issuer: Vec<String>,
    /// Seconds a token is still valid after its `exp`, and already before its `nbf`.
    pub leeway: u64,
    /// Seconds ahead its `exp` may be: a token that would live longer (a leaked token with an
    /// `exp` of 2^64 − 1 would never expire) is refused.
    pub max_ttl: u64,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway: DEFAULT_LEEWAY_SECS,
            max_ttl: DEFAULT_MAX_TTL.as_secs(),
        }
    }
}

impl Checks {
    /// jsonwebtoken's validation for a key of `algorithm`: that algorithm only.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // jsonwebtoken refuses any token with an `aud` unless told which are accepted.
        validation.validate_aud = !self.audience.is_empty();
        let mut required = vec!["exp", "sub"];
        if !self.audience.is_empty() {
            validation.set_audience(&self.audience);
            required.push("aud");
        }
        if !self.issuer.is_empty() {
            validation.set_issuer(&self.issuer);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

/// Why a token was refused (for the log; clients only ever hear "unauthorized").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Verifies tokens with the keys of one [`KeySource`], and mints them with a shared secret.
pub struct Auth {
    keys: KeySource,
    encoding: Option<EncodingKey>,
    checks: Checks,
    validations: Vec<(Algorithm, Validation)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.keys.current().algorithms().collect();
        write!(
            f,
            "Auth {{ keys: {algorithms:?}, checks: {:?} }}",
            self.checks
        )
    }
}

impl Auth {
    fn new(keys: KeySource, encoding: Option<EncodingKey>) -> Self {
        Self {
            keys,
            encoding,
            checks: Checks::default(),
            validations: Vec::new(),
        }
        .with_checks(Checks::default())
    }

    /// The same keys, with `checks` instead of the default ones.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        // Every algorithm a key may have: a JWKS read again may bring another.
        self.validations = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256]
            .into_iter()
            .map(|algorithm| (algorithm, checks.validation(algorithm)))
            .collect();
        self.checks = checks;
        self
    }

    /// Tokens signed with `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the auth secret has {} bytes; at least {MIN_SECRET_LEN} are needed \
                 (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
                secret.len()
            ));
        }
        Ok(Self::new(
            KeySource::fixed(KeySet::secret(secret)),
            Some(EncodingKey::from_secret(secret)),
        ))
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

    /// Tokens signed by the RSA (RS256) or P-256 (ES256) key whose public half is the PEM
    /// file at `path`.
    pub fn load_public_key(path: &Path) -> Result<Self, String> {
        let key = pem::public_key(&read_text(path, "auth public key")?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self::new(KeySource::fixed(KeySet::public(key)), None))
    }

    /// Tokens signed by a key of the JWKS file at `path` (read again for a new `kid`).
    pub fn load_jwks(path: &Path) -> Result<Self, String> {
        Ok(Self::new(KeySource::jwks_file(path.to_owned())?, None))
    }

    /// A random secret for this process only (`--demo-tokens`): its tokens stop working when
    /// the process exits.
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
        let refused = |e: jsonwebtoken::errors::Error| Refused(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        let keys = self.keys.for_kid(header.kid.as_deref())?;
        let key = keys.pick(header.kid.as_deref())?;
        let validation = self
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == key.algorithm)
            .map(|(_, validation)| validation)
            .ok_or_else(|| Refused("no validation for the key".into()))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map_err(refused)?
            .claims;
        // jsonwebtoken accepts `exp + leeway == now`; here a token is valid strictly before
        // then, which is also when its sockets are disconnected.
        let now = now_secs();
        if self.valid_until(claims.exp) <= now {
            return Err(Refused("ExpiredSignature".into()));
        }
        let latest = now.saturating_add(self.checks.max_ttl);
        if claims.exp > latest.saturating_add(self.checks.leeway) {
            return Err(Refused(format!(
                "exp is more than {} s ahead (--auth-max-ttl)",
                self.checks.max_ttl
            )));
        }
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUB_LEN {
            return Err(Refused(format!("sub must have 1 to {MAX_SUB_LEN} bytes")));
        }
        Ok(claims)
    }

    /// When a token of expiry `exp` stops being accepted: `exp` plus the leeway.
    pub fn valid_until(&self, exp: u64) -> u64 {
        exp.saturating_add(self.checks.leeway)
    }

    /// A token for `sub` valid for `ttl` from now (with the first configured audience and
    /// issuer); returns it with its `exp`. Only with a shared secret.
    pub fn mint(&self, sub: &str, ttl: Duration) -> Result<(String, u64), String> {
        let encoding = self.encoding.as_ref().ok_or(
            "tokens are minted with a shared secret (--auth-secret-file) only: \
             an identity provider's key cannot sign",
        )?;
        if sub.is_empty() || sub.len() > MAX_SUB_LEN {
            return Err(format!("sub must have 1 to {MAX_SUB_LEN} bytes"));
        }
        if ttl.as_secs() > self.checks.max_ttl {
            return Err(format!(
                "a lifetime of {} s is more than --auth-max-ttl ({} s): the token would be refused",
                ttl.as_secs(),
                self.checks.max_ttl
            ));
        }
        let now = now_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            exp: now.saturating_add(ttl.as_secs().max(1)),
            iat: Some(now),
        };
        let minted = Minted {
            claims: &claims,
            aud: self.checks.audience.first().map(String::as_str),
            iss: self.checks.issuer.first().map(String::as_str),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &minted, encoding)
            .map_err(|e| e.to_string())?;
        Ok((token, claims.exp))
    }
}

/// The text of the file at `path` (`what` names it in the error).
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
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

    /// A token signed with [`SECRET`] for `alice`, expiring at `exp`.
    fn token_expiring_at(exp: u64) -> String {
        let claims = serde_json::json!({"sub": "alice", "exp": exp});
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    #[test]
    fn tokens_living_longer_than_the_max_ttl_are_refused() {
        let auth = Auth::from_secret(SECRET).unwrap();
        let day = DEFAULT_MAX_TTL.as_secs();
        let now = now_secs();
        assert!(auth.verify(&token_expiring_at(now + day - 60)).is_ok());
        for exp in [now + day + 3600, u64::MAX] {
            let refused = auth.verify(&token_expiring_at(exp)).unwrap_err();
            assert!(refused.0.contains("--auth-max-ttl"), "{exp}: {refused}");
        }
        // A shorter maximum applies; minting past it is refused rather than made useless.
        let short = Auth::from_secret(SECRET).unwrap().with_checks(Checks {
            max_ttl: 600,
            ..Checks::default()
        });
        assert!(short.verify(&token_expiring_at(now + 3600)).is_err());
        assert!(short.mint("alice", Duration::from_secs(601)).is_err());
        assert!(short.mint("alice", Duration::from_secs(600)).is_ok());
    }

    #[test]
    fn configured_audience_and_issuer_are_minted_and_required() {
        let checks = Checks {
            audience: vec!["api".into(), "other".into()],
            issuer: vec!["https://idp.example/".into()],
            leeway: 5,
            ..Checks::default()
        };
        let strict = Auth::from_secret(SECRET).unwrap().with_checks(checks);
        let (token, exp) = strict.mint("alice", Duration::from_secs(60)).unwrap();
        assert_eq!(strict.verify(&token).unwrap().sub, "alice");
        assert_eq!(strict.valid_until(exp), exp + 5);
        // A token without them (the default checks mint none) is refused.
        let plain = Auth::from_secret(SECRET).unwrap();
        let (bare, _) = plain.mint("alice", Duration::from_secs(60)).unwrap();
        let refused = strict.verify(&bare).unwrap_err();
        assert!(refused.0.contains("Missing required claim"), "{refused}");
        // Without checks, a token's `aud` and `iss` are not looked at.
        assert!(plain.verify(&token).is_ok());
        // A public key verifies only: it cannot mint.
        let pem = include_str!("../../tests/fixtures/rsa-2048.pub.pem");
        let public = Auth::new(
            KeySource::fixed(KeySet::public(pem::public_key(pem).unwrap())),
            None,
        );
        assert!(public.mint("alice", Duration::from_secs(60)).is_err());
        assert!(
            public.verify(&token).is_err(),
            "an HS256 token on an RSA key"
        );
    }

    #[test]
    fn far_expiries_do_not_overflow() {
        assert_eq!(until(0), Some(Duration::ZERO));
        assert!(until(now_secs() + 10).unwrap() <= Duration::from_secs(10));
        assert_eq!(until(u64::MAX), None);
        // Only with a maximum lifetime that allows it (the default refuses such a token).
        let unbounded = Auth::from_secret(SECRET).unwrap().with_checks(Checks {
            max_ttl: u64::MAX,
            ..Checks::default()
        });
        let (token, exp) = unbounded
            .mint("alice", Duration::from_secs(u64::MAX))
            .unwrap();
        assert_eq!(exp, u64::MAX);
        assert_eq!(unbounded.verify(&token).unwrap().exp, u64::MAX);
        assert!(Auth::from_secret(SECRET).unwrap().verify(&token).is_err());
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
