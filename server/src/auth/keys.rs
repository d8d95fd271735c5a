//! The keys tokens are verified with, each bound to the one algorithm it was given for: an
//! HS256 secret, a PEM public key ([`super::pem`]), or the signing keys of a JWKS file.
//!
//! In a JWKS, keys are picked by the token's `kid`. RSA keys (`kty: RSA`, at least 2048 bits)
//! verify RS256 and P-256 keys (`kty: EC`, `crv: P-256`) ES256; a key whose `alg` names
//! another algorithm, whose `use` is not `sig`, or of another type (`oct` secrets included)
//! is skipped, so an identity provider's whole JWKS can be given as it is published.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::GeneralPurposeConfig;
use base64::engine::{DecodePaddingMode, GeneralPurpose};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::Refused;

/// Fewest bits of an RSA modulus accepted (ring verifies RS256 with 2048 to 8192).
pub const MIN_RSA_BITS: usize = 2048;
/// Most bits of an RSA modulus accepted.
pub const MAX_RSA_BITS: usize = 8192;

/// base64url, with or without padding (JWK members are unpadded; some publishers pad).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An identity provider's public key and the algorithm it verifies.
pub struct PublicKey {
    algorithm: Algorithm,
    decoding: DecodingKey,
    modulus_bits: Option<usize>,
}

impl PublicKey {
    /// An RSA key (big-endian modulus and exponent), for RS256.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, String> {
        let n = strip_zeros(n);
        let bits = n
            .first()
            .map_or(0, |&b| n.len() * 8 - b.leading_zeros() as usize);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(format!(
                "an RSA key of {bits} bits: {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
            ));
        }
        if strip_zeros(e).is_empty() {
            return Err("an RSA key with a zero exponent".into());
        }
        Ok(Self {
            algorithm: Algorithm::RS256,
            decoding: DecodingKey::from_rsa_raw_components(n, strip_zeros(e)),
            modulus_bits: Some(bits),
        })
    }

    /// A P-256 key as an uncompressed point (`04 ‖ x ‖ y`, 65 bytes), for ES256.
    pub fn ec_point(point: &[u8]) -> Result<Self, String> {
        if point.len() != 65 || point[0] != 4 {
            return Err("a P-256 key must be an uncompressed point of 65 bytes".into());
        }
        Ok(Self {
            algorithm: Algorithm::ES256,
            decoding: DecodingKey::from_ec_der(point),
            modulus_bits: None,
        })
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The size of an RSA key.
    pub fn modulus_bits(&self) -> Option<usize> {
        self.modulus_bits
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey {{ {:?}, {:?} bits }}",
            self.algorithm, self.modulus_bits
        )
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// One key tokens may be verified with.
pub struct Key {
    /// The `kid` a token names it by (none for a secret or a PEM key).
    pub kid: Option<String>,
    /// The only algorithm a token verified with it may have in its header.
    pub algorithm: Algorithm,
    /// The key.
    pub decoding: DecodingKey,
}

/// The keys of one configuration: never empty.
pub struct KeySet(Vec<Key>);

impl KeySet {
    /// An HS256 shared secret.
    pub fn secret(secret: &[u8]) -> Self {
        Self(vec![Key {
            kid: None,
            algorithm: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
        }])
    }

    /// One public key (from a PEM file).
    pub fn public(key: PublicKey) -> Self {
        Self(vec![Key {
            kid: None,
            algorithm: key.algorithm,
            decoding: key.decoding,
        }])
    }

    /// The RS256 and ES256 signing keys of a JWKS document `{"keys": [...]}`.
    pub fn jwks(text: &str) -> Result<Self, String> {
        let set: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JWKS (JSON): {e}"))?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWKS: expected {\"keys\": [...]}")?;
        let mut usable: Vec<Key> = Vec::new();
        for (at, jwk) in keys.iter().enumerate() {
            let Some(key) = jwk_key(jwk).map_err(|e| format!("key {at}: {e}"))? else {
                tracing::info!(
                    at,
                    "JWKS: skipping a key that is not an RS256 or ES256 signing key"
                );
                continue;
            };
            if usable.iter().any(|k| k.kid == key.kid) {
                return Err(format!("key {at}: a second key with kid {:?}", key.kid));
            }
            usable.push(key);
        }
        if usable.is_empty() {
            return Err("no RS256 (RSA) or ES256 (EC P-256) signing key in the JWKS".into());
        }
        Ok(Self(usable))
    }

    /// The algorithms of the set's keys.
    pub fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.0.iter().map(|k| k.algorithm)
    }

    /// The key for a token's `kid`: the key of that `kid`; else the only key of the set when
    /// the token names none or the key has none (a secret, a PEM key, a one-key JWKS).
    pub fn pick(&self, kid: Option<&str>) -> Result<&Key, Refused> {
        if let Some(kid) = kid {
            if let Some(key) = self.0.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                return Ok(key);
            }
        }
        match self.0.as_slice() {
            [only] if kid.is_none() || only.kid.is_none() => Ok(only),
            _ => Err(Refused(match kid {
                Some(kid) => format!("no key with kid {kid:?}"),
                None => "no kid, and there are several keys".into(),
            })),
        }
    }
}

/// The key of one JWK: `None` when it is not an RS256 or ES256 signing key.
fn jwk_key(jwk: &Value) -> Result<Option<Key>, String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let bytes = |name: &str| {
        let text = field(name).ok_or_else(|| format!("no {name:?}"))?;
        BASE64URL
            .decode(text)
            .map_err(|e| format!("{name:?} is not base64url: {e}"))
    };
    let key = match (field("kty"), field("alg")) {
        (Some("RSA"), None | Some("RS256")) => PublicKey::rsa(&bytes("n")?, &bytes("e")?)?,
        (Some("EC"), None | Some("ES256")) if field("crv") == Some("P-256") => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("a P-256 key's x and y have 32 bytes each".into());
            }
            PublicKey::ec_point(&[&[4], &x[..], &y[..]].concat())?
        }
        _ => return Ok(None),
    };
    Ok(Some(Key {
        kid: field("kid").map(str::to_owned),
        algorithm: key.algorithm,
        decoding: key.decoding,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(kid: &str) -> Value {
        let mut n = vec![0xc5; 256];
        n[255] = 1;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    #[test]
    fn jwks_keys_are_picked_by_kid() {
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "e", "x": b64(&[1; 32]), "y": b64(&[2; 32])});
        let skipped = [
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
            json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}),
        ];
        let mut keys = vec![rsa_jwk("r"), ec];
        keys.extend(skipped);
        let set = KeySet::jwks(&json!({ "keys": keys }).to_string()).unwrap();
        assert_eq!(set.pick(Some("r")).unwrap().algorithm, Algorithm::RS256);
        assert_eq!(set.pick(Some("e")).unwrap().algorithm, Algorithm::ES256);
        for refused in [Some("enc"), Some("ps"), Some("secret"), Some("x"), None] {
            assert!(set.pick(refused).is_err(), "{refused:?}");
        }
        // One key: a token without a kid may use it, one with another kid may not.
        let one = KeySet::jwks(&json!({"keys": [rsa_jwk("r")]}).to_string()).unwrap();
        assert!(one.pick(None).is_ok());
        assert!(one.pick(Some("other")).is_err());
        // A secret or a PEM key has no kid: whatever the token names, it is the key.
        assert!(KeySet::secret(b"s").pick(Some("any")).is_ok());
    }

    #[test]
    fn bad_jwks_are_refused_at_start() {
        for bad in [
            json!([]),
            json!({"keys": []}),
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            json!({"keys": [rsa_jwk("r"), rsa_jwk("r")]}),
            json!({"keys": [{"kty": "RSA", "n": b64(&[0xff; 128]), "e": "AQAB"}]}),
            json!({"keys": [{"kty": "RSA", "n": "%%%", "e": "AQAB"}]}),
            json!({"keys": [{"kty": "RSA", "e": "AQAB"}]}),
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(&[1; 31]), "y": b64(&[2; 32])}]}),
        ] {
            assert!(KeySet::jwks(&bad.to_string()).is_err(), "{bad}");
        }
        assert!(KeySet::jwks("not json").is_err());
    }
}
