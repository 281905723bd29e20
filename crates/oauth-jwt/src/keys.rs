//! Signing keys: generation, loading, key ids, and their public JWKs.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use oauth_core::SigningKeyRecord;
use serde::Serialize;
use time::OffsetDateTime;

use crate::Error;

/// The signing algorithms this crate supports. ES256 is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// ECDSA on P-256 with SHA-256. The default: small keys and signatures, and
    /// fast with the aws-lc backend.
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys when generated.
    Rs256,
    /// HMAC SHA-256; the key is at least 32 bytes. Only the issuer can verify.
    Hs256,
    /// HMAC SHA-512; the key is at least 64 bytes.
    Hs512,
}

impl SigningAlg {
    /// Parses the JWS name (`ES256`, `EdDSA`, `RS256`, `HS256`, `HS512`).
    pub fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "ES256" => Ok(SigningAlg::Es256),
            "EdDSA" => Ok(SigningAlg::EdDsa),
            "RS256" => Ok(SigningAlg::Rs256),
            "HS256" => Ok(SigningAlg::Hs256),
            "HS512" => Ok(SigningAlg::Hs512),
            _ => Err(Error::UnsupportedAlgorithm(name.to_owned())),
        }
    }

    /// The JWS name.
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Hs256 => "HS256",
            SigningAlg::Hs512 => "HS512",
        }
    }

    /// True for the HMAC algorithms, whose keys are secret and never published.
    pub fn is_symmetric(self) -> bool {
        matches!(self, SigningAlg::Hs256 | SigningAlg::Hs512)
    }

    /// The shortest HMAC key accepted: the hash output size (RFC 7518 3.2).
    pub fn min_secret_len(self) -> usize {
        match self {
            SigningAlg::Hs512 => 64,
            _ => 32,
        }
    }

    pub(crate) fn jws(self) -> Algorithm {
        match self {
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Hs256 => Algorithm::HS256,
            SigningAlg::Hs512 => Algorithm::HS512,
        }
    }
}

/// A key that verifies tokens: the public half (or, for HMAC, the secret).
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) alg: SigningAlg,
    pub(crate) decoding: DecodingKey,
    /// The public JWK, published in the JWKS; `None` for HMAC keys.
    pub(crate) jwk: Option<Jwk>,
}

/// A key that signs: the private (or secret) key, its id and its public half.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    /// The private key parsed once, for the algorithms where parsing costs
    /// as much as signing.
    prepared: Prepared,
    /// PEM (asymmetric) or raw bytes (HMAC), as stored.
    material: Vec<u8>,
    verifying: VerifyingKey,
}

/// A private key ready to sign.
///
/// `jsonwebtoken::encode` parses an EC, Ed25519 or RSA key from its DER bytes
/// on every call. For ES256 that parse (with its public-key check, a point
/// multiplication) cost about as much as the signature itself, and was the
/// largest item in a profile of `client_credentials` (docs/benchmarks.md);
/// for RS256 the parse (aws-lc checks the whole private key) cost more than
/// the signature, which every OpenID Connect login pays for its ID token.
/// These keys are parsed once, from the bytes jsonwebtoken holds, and sign
/// with the same aws-lc-rs primitive jsonwebtoken would call.
#[derive(Clone)]
enum Prepared {
    Es256(Arc<EcdsaKeyPair>),
    EdDsa(Arc<Ed25519KeyPair>),
    Rs256(Arc<RsaKeyPair>),
    /// HMAC, which has no parse worth keeping: `jsonwebtoken::encode`.
    Library,
}

impl Prepared {
    fn new(alg: SigningAlg, encoding: &EncodingKey) -> Result<Self, Error> {
        let bad = |_| Error::BadKey("not a private key for this algorithm");
        Ok(match alg {
            SigningAlg::Es256 => Prepared::Es256(Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, encoding.as_bytes()).map_err(bad)?,
            )),
            SigningAlg::EdDsa => {
                Prepared::EdDsa(Arc::new(Ed25519KeyPair::from_pkcs8(encoding.as_bytes()).map_err(bad)?))
            }
            // jsonwebtoken keeps an RSA key as its PKCS #1 `RSAPrivateKey`.
            SigningAlg::Rs256 => Prepared::Rs256(Arc::new(RsaKeyPair::from_der(encoding.as_bytes()).map_err(bad)?)),
            SigningAlg::Hs256 | SigningAlg::Hs512 => Prepared::Library,
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.verifying.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key from the operating system's CSPRNG.
    pub fn generate(alg: SigningAlg) -> Result<Self, Error> {
        let crypto = |_| Error::Crypto("key generation failed");
        match alg {
            SigningAlg::Es256 => {
                let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .and_then(|k| k.to_pkcs8v1())
                    .map_err(crypto)?;
                Self::from_pem(alg, pem_of(pkcs8.as_ref()).as_bytes())
            }
            SigningAlg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate().and_then(|k| k.to_pkcs8v1()).map_err(crypto)?;
                Self::from_pem(alg, pem_of(pkcs8.as_ref()).as_bytes())
            }
            SigningAlg::Rs256 => {
                let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(crypto)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = key.as_der().map_err(crypto)?;
                Self::from_pem(alg, pem_of(der.as_ref()).as_bytes())
            }
            SigningAlg::Hs256 | SigningAlg::Hs512 => {
                let mut secret = vec![0u8; alg.min_secret_len()];
                aws_lc_rs::rand::fill(&mut secret).map_err(crypto)?;
                Self::from_secret(alg, &secret)
            }
        }
    }

    /// Loads a PEM private key for an asymmetric algorithm: PKCS#8
    /// (`BEGIN PRIVATE KEY`) for every one, SEC 1 (`BEGIN EC PRIVATE KEY`,
    /// what `openssl ecparam -genkey` writes) for ES256, and PKCS#1 (`BEGIN
    /// RSA PRIVATE KEY`) for RS256. Other PEM blocks in the file (the `EC
    /// PARAMETERS` that `openssl ecparam` writes first) are skipped. The key is
    /// kept as PKCS#8 whatever form it came in.
    pub fn from_pem(alg: SigningAlg, pem: &[u8]) -> Result<Self, Error> {
        crate::install_provider();
        let pkcs8 = pkcs8_pem(alg, pem)?;
        let pem = pkcs8.as_slice();
        let encoding = match alg {
            SigningAlg::Es256 => EncodingKey::from_ec_pem(pem),
            SigningAlg::EdDsa => EncodingKey::from_ed_pem(pem),
            SigningAlg::Rs256 => EncodingKey::from_rsa_pem(pem),
            SigningAlg::Hs256 | SigningAlg::Hs512 => return Err(Error::BadKey("an HMAC key is raw bytes, not PEM")),
        }
        .map_err(|_| Error::BadKey("not a PEM private key for this algorithm"))?;
        let mut jwk =
            Jwk::from_encoding_key(&encoding, alg.jws()).map_err(|_| Error::BadKey("cannot derive the public key"))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| Error::BadKey("cannot compute the key id"))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| Error::BadKey("cannot derive the public key"))?;
        let key = SigningKey {
            kid,
            prepared: Prepared::new(alg, &encoding)?,
            encoding,
            material: pem.to_vec(),
            verifying: VerifyingKey { alg, decoding, jwk: Some(jwk) },
        };
        key.self_test()?;
        Ok(key)
    }

    /// Loads an HMAC secret. A secret shorter than the hash output is refused
    /// (32 bytes for HS256, 64 for HS512).
    pub fn from_secret(alg: SigningAlg, secret: &[u8]) -> Result<Self, Error> {
        crate::install_provider();
        if !alg.is_symmetric() {
            return Err(Error::BadKey("only HS256 and HS512 take a raw secret"));
        }
        if secret.len() < alg.min_secret_len() {
            return Err(Error::KeyTooShort { alg: alg.name(), min: alg.min_secret_len(), len: secret.len() });
        }
        let encoding = EncodingKey::from_secret(secret);
        // RFC 7638 over the `oct` key. The secret is at least 256 random bits, so
        // its hash reveals nothing usable; the key itself is never published.
        let jwk = Jwk::from_encoding_key(&encoding, alg.jws()).map_err(|_| Error::BadKey("cannot build the key"))?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| Error::BadKey("cannot compute the key id"))?;
        let decoding = DecodingKey::from_secret(secret);
        Ok(SigningKey {
            kid,
            prepared: Prepared::Library,
            encoding,
            material: secret.to_vec(),
            verifying: VerifyingKey { alg, decoding, jwk: None },
        })
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.verifying.alg
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint of the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A compact JWS (RFC 7515 section 7.1) of `claims` under `header`, which
    /// must name this key's algorithm: the same bytes `jsonwebtoken::encode`
    /// produces (JSON of each part, base64url without padding), signed with
    /// the prepared key.
    pub(crate) fn sign(&self, header: &Header, claims: &impl Serialize) -> Result<String, oauth_core::Error> {
        fn failed(e: impl fmt::Display) -> oauth_core::Error {
            oauth_core::Error::Internal(format!("signing: {e}"))
        }
        let signing_input = || -> Result<String, oauth_core::Error> {
            if header.alg != self.alg().jws() {
                return Err(failed("the header names another algorithm"));
            }
            let mut input = String::with_capacity(640);
            URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(header).map_err(failed)?, &mut input);
            input.push('.');
            URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).map_err(failed)?, &mut input);
            Ok(input)
        };
        let (mut token, signature) = match &self.prepared {
            Prepared::Library => return jsonwebtoken::encode(header, claims, &self.encoding).map_err(failed),
            Prepared::Es256(key) => {
                let input = signing_input()?;
                let signature = key.sign(&SystemRandom::new(), input.as_bytes()).map_err(failed)?;
                (input, signature.as_ref().to_vec())
            }
            Prepared::EdDsa(key) => {
                let input = signing_input()?;
                let signature = key.sign(input.as_bytes());
                (input, signature.as_ref().to_vec())
            }
            Prepared::Rs256(key) => {
                let input = signing_input()?;
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).map_err(failed)?;
                (input, signature)
            }
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// The key as jsonwebtoken holds it, for tests that forge tokens.
    #[cfg(test)]
    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn verifying(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The store record: the private material and the public JWK.
    pub(crate) fn to_record(&self, created_at: OffsetDateTime, keep_secret: bool) -> Result<SigningKeyRecord, Error> {
        let public = match &self.verifying.jwk {
            Some(jwk) => serde_json::to_vec(jwk).map_err(|_| Error::BadKey("cannot encode the public key"))?,
            None => Vec::new(),
        };
        // An HMAC key has no public half: verifying needs the secret itself.
        let secret = if keep_secret || self.alg().is_symmetric() { self.material.clone() } else { Vec::new() };
        Ok(SigningKeyRecord {
            kid: self.kid.clone(),
            algorithm: self.alg().name().into(),
            secret,
            public,
            created_at,
            retired_at: None,
        })
    }

    /// Rebuilds a signing key from a record that holds its secret.
    pub(crate) fn from_record(rec: &SigningKeyRecord) -> Result<Self, Error> {
        let alg = SigningAlg::parse(&rec.algorithm)?;
        let key =
            if alg.is_symmetric() { Self::from_secret(alg, &rec.secret)? } else { Self::from_pem(alg, &rec.secret)? };
        if key.kid != rec.kid {
            return Err(Error::BadKey("stored key does not match its key id"));
        }
        Ok(key)
    }

    /// Signs and verifies a probe, so a key that cannot sign is refused at load
    /// rather than at the first token request.
    fn self_test(&self) -> Result<(), Error> {
        let header = Header::new(self.alg().jws());
        let token = self
            .sign(&header, &serde_json::json!({"probe": true}))
            .map_err(|_| Error::BadKey("the key cannot sign"))?;
        let mut v = jsonwebtoken::Validation::new(self.alg().jws());
        v.required_spec_claims.clear();
        v.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &self.verifying.decoding, &v)
            .map(|_| ())
            .map_err(|_| Error::BadKey("the key's signature does not verify with its public half"))
    }
}

impl VerifyingKey {
    /// Rebuilds the verifying half from a store record.
    pub(crate) fn from_record(rec: &SigningKeyRecord) -> Result<Self, Error> {
        let alg = SigningAlg::parse(&rec.algorithm)?;
        if alg.is_symmetric() {
            return Ok(SigningKey::from_secret(alg, &rec.secret)?.verifying);
        }
        let jwk: Jwk =
            serde_json::from_slice(&rec.public).map_err(|_| Error::BadKey("stored public key is corrupt"))?;
        Self::from_jwk(jwk, Some(alg))
    }

    /// A verifying key from a published JWK. The algorithm comes from the JWK
    /// (or `alg`), never from a token header.
    pub(crate) fn from_jwk(jwk: Jwk, alg: Option<SigningAlg>) -> Result<Self, Error> {
        crate::install_provider();
        let alg = match (alg, jwk.common.key_algorithm) {
            (Some(a), _) => a,
            (None, Some(k)) => SigningAlg::parse(&k.to_string())?,
            (None, None) => return Err(Error::BadKey("a JWK without an algorithm")),
        };
        if alg.is_symmetric() {
            return Err(Error::BadKey("symmetric keys are never published"));
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| Error::BadKey("unusable JWK"))?;
        Ok(VerifyingKey { alg, decoding, jwk: Some(jwk) })
    }
}

fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()))
}

/// The one private key in `pem`, as PKCS#8 PEM. SEC 1 and PKCS#1 keys are
/// parsed by aws-lc-rs and written again as PKCS#8, the form jsonwebtoken and
/// the prepared signers read and the store keeps.
fn pkcs8_pem(alg: SigningAlg, pem: &[u8]) -> Result<Vec<u8>, Error> {
    let blocks = pem::parse_many(pem).map_err(|_| Error::BadKey("not a PEM file"))?;
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key;
    // a certificate or public key beside it is not the key either.
    let mut keys = blocks.iter().filter(|b| b.tag().ends_with("PRIVATE KEY"));
    let key = keys.next().ok_or(Error::BadKey("no PRIVATE KEY block in the PEM file"))?;
    if keys.next().is_some() {
        return Err(Error::BadKey("more than one private key in the PEM file"));
    }
    let der = key.contents();
    let crypto = |_| Error::Crypto("cannot write the key as PKCS#8");
    match (key.tag(), alg) {
        ("PRIVATE KEY", _) => Ok(pem_of(der).into_bytes()),
        ("EC PRIVATE KEY", SigningAlg::Es256) => {
            let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(|_| Error::BadKey("not a P-256 (prime256v1) EC private key, which ES256 needs"))?;
            Ok(pem_of(pair.to_pkcs8v1().map_err(crypto)?.as_ref()).into_bytes())
        }
        ("RSA PRIVATE KEY", SigningAlg::Rs256) => {
            let pair = aws_lc_rs::rsa::KeyPair::from_der(der)
                .map_err(|_| Error::BadKey("not a usable PKCS#1 RSA private key (2048 to 8192 bits)"))?;
            let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(crypto)?;
            Ok(pem_of(pkcs8.as_ref()).into_bytes())
        }
        ("ENCRYPTED PRIVATE KEY", _) => {
            Err(Error::BadKey("the private key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN)"))
        }
        _ => Err(Error::BadKey(
            "the PEM block does not hold a key for this algorithm (ES256: PRIVATE KEY or EC PRIVATE KEY; \
             RS256: PRIVATE KEY or RSA PRIVATE KEY; EdDSA: PRIVATE KEY)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prepared signers write what `jsonwebtoken::encode` writes: EdDSA and
    /// RSASSA-PKCS1-v1_5 are deterministic, so whole tokens are equal; ECDSA
    /// signatures are random, so the signed parts are equal and the signature
    /// verifies.
    #[test]
    fn prepared_signatures_match_jsonwebtoken() {
        let claims = serde_json::json!({"sub": "a", "exp": 4_102_444_800u64, "scope": "read write"});
        for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256, SigningAlg::Hs256] {
            let key = SigningKey::generate(alg).unwrap();
            let mut header = Header::new(alg.jws());
            header.kid = Some(key.kid().into());
            let ours = key.sign(&header, &claims).unwrap();
            let theirs = jsonwebtoken::encode(&header, &claims, key.encoding()).unwrap();
            let signed = |t: &str| t.rsplit_once('.').unwrap().0.to_owned();
            assert_eq!(signed(&ours), signed(&theirs), "{alg:?}");
            if matches!(alg, SigningAlg::EdDsa | SigningAlg::Rs256) {
                assert_eq!(ours, theirs, "{alg:?}");
            }
            let mut v = jsonwebtoken::Validation::new(alg.jws());
            v.required_spec_claims.clear();
            jsonwebtoken::decode::<serde_json::Value>(&ours, &key.verifying().decoding, &v).unwrap();
            // A header naming another algorithm is refused, not signed.
            let other = if alg == SigningAlg::Hs256 { Algorithm::HS512 } else { Algorithm::HS256 };
            if !alg.is_symmetric() {
                assert!(key.sign(&Header::new(other), &claims).is_err(), "{alg:?}");
            }
        }
    }
}
