//! Public keys from PEM text (`--auth-public-key-file`), without jsonwebtoken's `use_pem`
//! feature (two more crates for what is a few lines of DER here).
//!
//! | PEM label          | contents                          | algorithm |
//! |--------------------|-----------------------------------|-----------|
//! | `PUBLIC KEY`       | SubjectPublicKeyInfo of an RSA key | RS256     |
//! | `PUBLIC KEY`       | SubjectPublicKeyInfo of a P-256 key | ES256    |
//! | `RSA PUBLIC KEY`   | PKCS#1 RSAPublicKey               | RS256     |
//!
//! Only the structure is read here (which key, which algorithm); ring checks the key itself
//! when it verifies a signature. A private key or a certificate is refused with the command
//! that extracts its public key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::keys::PublicKey;

/// DER of the OID rsaEncryption (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER of the OID id-ecPublicKey (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of the OID prime256v1, i.e. P-256 (1.2.840.10045.3.1.7).
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// The public key of the first PEM block of `text`.
pub fn public_key(text: &str) -> Result<PublicKey, String> {
    let (label, der) = pem_block(text)?;
    match label {
        "PUBLIC KEY" => subject_public_key_info(&der),
        "RSA PUBLIC KEY" => rsa_public_key(&der),
        "CERTIFICATE" => Err("a certificate, not a public key: extract its key with \
                              `openssl x509 -in CERT -pubkey -noout`"
            .into()),
        label if label.contains("PRIVATE KEY") => Err(format!(
            "a private key ({label}): give its public key, e.g. `openssl pkey -in KEY -pubout`"
        )),
        label => Err(format!("a PEM block of {label:?}, not a PUBLIC KEY")),
    }
}

/// The label and decoded body of the first `-----BEGIN …-----` block.
fn pem_block(text: &str) -> Result<(&str, Vec<u8>), String> {
    let no_block = || "no PEM block (-----BEGIN PUBLIC KEY-----)".to_owned();
    let start = text.find("-----BEGIN ").ok_or_else(no_block)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or_else(no_block)?;
    let end = format!("-----END {label}-----");
    let body = &rest[..rest.find(&end).ok_or_else(|| format!("no {end} line"))?];
    let body: String = body.split_whitespace().collect();
    let der = STANDARD
        .decode(body)
        .map_err(|e| format!("the {label} block is not base64: {e}"))?;
    Ok((label, der))
}

/// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { algorithm OID, parameters }, BIT STRING }.
fn subject_public_key_info(der: &[u8]) -> Result<PublicKey, String> {
    let info = whole(der, SEQUENCE)?;
    let (algorithm, rest) = tlv(info, SEQUENCE)?;
    let key = bit_string(whole(rest, BIT_STRING)?)?;
    let (oid, parameters) = tlv(algorithm, OID)?;
    if oid == RSA_ENCRYPTION {
        return rsa_public_key(key);
    }
    if oid != EC_PUBLIC_KEY {
        return Err("an unsupported key type: RSA (RS256) or EC P-256 (ES256) only".into());
    }
    if whole(parameters, OID)? != P256 {
        return Err("an EC key on another curve than P-256: ES256 needs P-256".into());
    }
    PublicKey::ec_point(key)
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
fn rsa_public_key(der: &[u8]) -> Result<PublicKey, String> {
    let (n, rest) = tlv(whole(der, SEQUENCE)?, INTEGER)?;
    let e = whole(rest, INTEGER)?;
    PublicKey::rsa(unsigned(n), unsigned(e))
}

/// A BIT STRING's bytes (whole bytes only: no unused bits).
fn bit_string(content: &[u8]) -> Result<&[u8], String> {
    match content.split_first() {
        Some((0, bytes)) => Ok(bytes),
        _ => Err("malformed key: a BIT STRING with unused bits".into()),
    }
}

/// A DER INTEGER's magnitude, without the sign byte.
fn unsigned(integer: &[u8]) -> &[u8] {
    match integer {
        [0, rest @ ..] => rest,
        _ => integer,
    }
}

/// The content of a `tag` element that must fill all of `der`.
fn whole(der: &[u8], tag: u8) -> Result<&[u8], String> {
    match tlv(der, tag)? {
        (content, []) => Ok(content),
        _ => Err("malformed key: bytes after its end".into()),
    }
}

/// The content of the `tag` element at the start of `der`, and the bytes after it.
fn tlv(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let malformed = || format!("malformed key: expected DER tag {tag:#04x}");
    let (&found, rest) = der.split_first().ok_or_else(malformed)?;
    let (&first, rest) = rest.split_first().ok_or_else(malformed)?;
    if found != tag {
        return Err(malformed());
    }
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x83 => {
            let bytes = usize::from(first & 0x7f);
            if rest.len() < bytes {
                return Err(malformed());
            }
            let (len, rest) = rest.split_at(bytes);
            (len.iter().fold(0, |n, &b| n << 8 | usize::from(b)), rest)
        }
        _ => return Err(malformed()),
    };
    if rest.len() < len {
        return Err(malformed());
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    /// Made once with `openssl genrsa -traditional` and `openssl rsa -pubout` (see the file).
    const RSA_SPKI: &str = include_str!("../../tests/fixtures/rsa-2048.pub.pem");
    const RSA_PRIVATE: &str = include_str!("../../tests/fixtures/rsa-2048.key.pem");

    fn pem(label: &str, der: &[u8]) -> String {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(der)
        )
    }

    #[test]
    fn rsa_keys_in_both_forms() {
        let spki = public_key(RSA_SPKI).unwrap();
        assert_eq!(spki.algorithm(), Algorithm::RS256);
        // The PKCS#1 form is the BIT STRING inside the SubjectPublicKeyInfo.
        let (_, der) = pem_block(RSA_SPKI).unwrap();
        let (_, rest) = tlv(whole(&der, SEQUENCE).unwrap(), SEQUENCE).unwrap();
        let pkcs1 = bit_string(whole(rest, BIT_STRING).unwrap()).unwrap();
        let direct = public_key(&pem("RSA PUBLIC KEY", pkcs1)).unwrap();
        assert_eq!(direct.algorithm(), Algorithm::RS256);
        assert_eq!(direct.modulus_bits(), Some(2048));
    }

    #[test]
    fn a_p256_key() {
        use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let key = public_key(&pem("PUBLIC KEY", &p256_spki(pair.public_key().as_ref()))).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
    }

    /// The SubjectPublicKeyInfo of an uncompressed P-256 point (65 bytes).
    pub fn p256_spki(point: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![OID, EC_PUBLIC_KEY.len() as u8];
        algorithm.extend_from_slice(EC_PUBLIC_KEY);
        algorithm.extend_from_slice(&[OID, P256.len() as u8]);
        algorithm.extend_from_slice(P256);
        let mut body = vec![SEQUENCE, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[BIT_STRING, point.len() as u8 + 1, 0]);
        body.extend_from_slice(point);
        let mut der = vec![SEQUENCE, body.len() as u8];
        der.extend_from_slice(&body);
        der
    }

    #[test]
    fn what_is_not_a_usable_public_key_is_refused_with_a_reason() {
        let private = public_key(RSA_PRIVATE).unwrap_err();
        assert!(private.contains("openssl pkey"), "{private}");
        let cert = public_key(&pem("CERTIFICATE", &[SEQUENCE, 0])).unwrap_err();
        assert!(cert.contains("openssl x509"), "{cert}");
        assert!(public_key("").is_err());
        assert!(public_key("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----").is_err());
        // Truncated, lengths past the end, trailing bytes: errors, never panics.
        let (_, der) = pem_block(RSA_SPKI).unwrap();
        for cut in 0..der.len() {
            assert!(
                public_key(&pem("PUBLIC KEY", &der[..cut])).is_err(),
                "{cut}"
            );
        }
        let mut longer = der.clone();
        longer.push(0);
        assert!(public_key(&pem("PUBLIC KEY", &longer)).is_err());
        // An EC key on another curve (the last byte of the curve's OID changed).
        let mut other = p256_spki(&[4; 65]);
        other[6 + EC_PUBLIC_KEY.len() + 2 + P256.len() - 1] = 8;
        let curve = public_key(&pem("PUBLIC KEY", &other)).unwrap_err();
        assert!(curve.contains("P-256"), "{curve}");
    }
}
