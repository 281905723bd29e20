//! The JWTs a client signs besides access tokens: DPoP proofs (RFC 9449 4)
//! and `private_key_jwt` client assertions (RFC 7523 3), checked for their
//! form and signature. [`JwtProofs`] implements `oauth_core::ProofChecker`;
//! what the claims must say (the request, the time, replay) is the core's.
//!
//! Both pin the algorithm by the key, never by the header alone: the header's
//! `alg` must be one this server accepts (asymmetric only, so never `none` nor
//! an HMAC that a public key could be abused as), and the key must be of the
//! type and curve that algorithm needs. A DPoP key travels in the proof's own
//! header (`jwk`), so it must be public: a `jwk` with private members is
//! refused, since a client that sends its private key has no key to prove.
//! A client assertion is verified with the keys the client registered
//! (`jwks`), parsed once per distinct key set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use oauth_core::{AssertionClaims, Client, DpopProof, Error, ProofChecker, Result};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The `typ` of a DPoP proof (RFC 9449 4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The longest proof or assertion read, in bytes: an RSA-4096 key in a
/// header fits many times over, and a flood of large tokens costs no parse.
const MAX_LEN: usize = 16 * 1024;

/// The shortest RSA modulus accepted, in bits (RFC 7518 3.3, FAPI 2.0 5.4.1).
const MIN_RSA_BITS: usize = 2048;

/// Members that make a JWK private (RFC 7518 6.2.2, 6.3.2, 6.4; RFC 8037 2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// How many distinct client key sets stay parsed. Past it the cache starts
/// again: key sets change rarely, and a parse costs microseconds.
const KEY_SETS: usize = 1024;

/// The signature checks of DPoP proofs and client assertions.
pub struct JwtProofs {
    algorithms: &'static [&'static str],
    key_sets: Mutex<HashMap<[u8; 32], Arc<Vec<ClientKey>>>>,
}

impl std::fmt::Debug for JwtProofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtProofs").field("algorithms", &self.algorithms).finish_non_exhaustive()
    }
}

/// The algorithms accepted by default: ES256, EdDSA, RS256 and PS256.
const ALL: &[&str] = &["ES256", "EdDSA", "RS256", "PS256"];

/// Those of the FAPI 2.0 Security Profile (5.4.1): no RSASSA-PKCS1-v1_5.
const FAPI2: &[&str] = &["ES256", "EdDSA", "PS256"];

impl Default for JwtProofs {
    fn default() -> Self {
        Self::new()
    }
}

impl JwtProofs {
    /// Accepts ES256, EdDSA, RS256 and PS256.
    pub fn new() -> Self {
        crate::install_provider();
        JwtProofs { algorithms: ALL, key_sets: Mutex::default() }
    }

    /// Accepts what the FAPI 2.0 Security Profile allows: ES256, EdDSA and
    /// PS256.
    pub fn fapi2() -> Self {
        JwtProofs { algorithms: FAPI2, ..Self::new() }
    }

    /// The header's `alg`, if this checker accepts it.
    fn algorithm(&self, header: &Map<String, Value>) -> Option<Algorithm> {
        let name = header.get("alg")?.as_str()?;
        self.algorithms.iter().find(|a| **a == name).and_then(|a| a.parse().ok())
    }

    /// The parsed keys of `jwks` (a JWK Set as JSON), from the cache.
    fn key_set(&self, jwks: &str) -> Result<Arc<Vec<ClientKey>>> {
        let digest: [u8; 32] = Sha256::digest(jwks.as_bytes()).into();
        if let Some(found) = self.key_sets.lock().unwrap_or_else(PoisonError::into_inner).get(&digest) {
            return Ok(found.clone());
        }
        let parsed = Arc::new(client_keys(jwks).map_err(|_| Error::InvalidClient)?);
        let mut sets = self.key_sets.lock().unwrap_or_else(PoisonError::into_inner);
        if sets.len() >= KEY_SETS {
            sets.clear();
        }
        sets.insert(digest, parsed.clone());
        Ok(parsed)
    }
}

/// The DPoP proof's claims (RFC 9449 4.2), as sent.
#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// A client assertion's claims (RFC 7523 3), as sent.
#[derive(Deserialize)]
struct AssertionWire {
    iss: String,
    sub: String,
    aud: Audience,
    exp: serde_json::Number,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    jti: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl ProofChecker for JwtProofs {
    fn dpop_proof(&self, proof: &str) -> Result<DpopProof> {
        fn bad(why: &'static str) -> Error {
            Error::InvalidDpopProof(why)
        }
        if proof.len() > MAX_LEN {
            return Err(bad("the proof is too large"));
        }
        let mut jws = Compact::parse(proof).ok_or(bad("malformed proof"))?;
        let header = &mut jws.header;
        let typ_ok = header.get("typ").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(DPOP_TYP));
        if !typ_ok {
            return Err(bad("typ must be dpop+jwt"));
        }
        if header.contains_key("crit") {
            return Err(bad("no critical header extension is understood"));
        }
        let alg = self.algorithm(header).ok_or(bad("alg is not an accepted asymmetric algorithm"))?;
        let jwk = match header.remove("jwk") {
            Some(Value::Object(members)) => members,
            _ => return Err(bad("the header has no jwk")),
        };
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(bad("the jwk holds a private key"));
        }
        // The header's own copy of the key is taken, not cloned: it is read once.
        let jwk: Jwk = serde_json::from_value(Value::Object(jwk)).map_err(|_| bad("the jwk is malformed"))?;
        if !fits(&jwk, alg) {
            return Err(bad("the jwk is not a key for alg"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| bad("the jwk is malformed"))?;
        let claims: ProofClaims =
            jws.verify(&key, alg).and_then(|()| jws.claims()).map_err(|refused| match refused {
                Refused::Signature => bad("the signature does not verify"),
                Refused::Malformed => bad("malformed proof"),
            })?;
        let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| bad("the jwk is malformed"))?;
        Ok(DpopProof {
            jkt,
            jti: nonempty(claims.jti).ok_or(bad("jti is empty"))?,
            htm: claims.htm,
            htu: claims.htu,
            iat: instant(&claims.iat).ok_or(bad("iat is not a time"))?,
            ath: claims.ath,
            nonce: claims.nonce,
        })
    }

    fn client_assertion(&self, assertion: &str, client: &Client) -> Result<AssertionClaims> {
        if assertion.len() > MAX_LEN {
            return Err(Error::InvalidClient);
        }
        let jwks = client.jwks().ok_or(Error::InvalidClient)?;
        let jws = Compact::parse(assertion).ok_or(Error::InvalidClient)?;
        if jws.header.contains_key("crit") {
            return Err(Error::InvalidClient);
        }
        let alg = self.algorithm(&jws.header).ok_or(Error::InvalidClient)?;
        let kid = match jws.header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            // A header that is not a JOSE header (RFC 7515 4.1.4) is refused.
            Some(_) => return Err(Error::InvalidClient),
        };
        let keys = self.key_set(jwks)?;
        let mut candidates =
            keys.iter().filter(|k| k.usable(alg) && kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)));
        // One key whose signature verifies is enough; the claims must then be
        // well formed.
        if !candidates.any(|k| jws.verify(&k.decoding, alg).is_ok()) {
            return Err(Error::InvalidClient);
        }
        let wire: AssertionWire = jws.claims().map_err(|_| Error::InvalidClient)?;
        let at = |n: &serde_json::Number| instant(n).ok_or(Error::InvalidClient);
        Ok(AssertionClaims {
            issuer: wire.iss,
            subject: wire.sub,
            audience: match wire.aud {
                Audience::One(a) => vec![a],
                Audience::Many(a) => a,
            },
            expires_at: at(&wire.exp)?,
            not_before: wire.nbf.as_ref().map(at).transpose()?,
            issued_at: wire.iat.as_ref().map(at).transpose()?,
            jti: wire.jti,
        })
    }

    fn assertion_subject(&self, assertion: &str) -> Option<String> {
        if assertion.len() > MAX_LEN {
            return None;
        }
        let payload = assertion.split('.').nth(1)?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        claims.get("sub")?.as_str().map(str::to_owned)
    }

    fn dpop_algorithms(&self) -> &[&'static str] {
        self.algorithms
    }

    fn assertion_algorithms(&self) -> &[&'static str] {
        self.algorithms
    }

    fn check_client_keys(&self, jwks: &str) -> Result<()> {
        let keys = client_keys(jwks).map_err(Error::InvalidClientMetadata)?;
        let algorithms: Vec<Algorithm> = self.algorithms.iter().filter_map(|a| a.parse().ok()).collect();
        if keys.iter().any(|k| algorithms.iter().any(|a| k.usable(*a))) {
            Ok(())
        } else {
            Err(Error::InvalidClientMetadata("jwks has no signing key for an algorithm this server accepts"))
        }
    }
}

/// Checks a client's registered keys (`jwks`, a JWK Set as JSON) as
/// [`JwtProofs`] reads them: public signing keys only, each EC P-256, OKP
/// Ed25519 or RSA of at least 2048 bits, and at least one. For checking a
/// configuration before it is served.
pub fn check_client_jwks(jwks: &str) -> Result<(), crate::Error> {
    match client_keys(jwks) {
        Ok(keys) if keys.is_empty() => Err(crate::Error::BadKey("the key set has no signing key")),
        Ok(_) => Ok(()),
        Err(why) => Err(crate::Error::BadKey(why)),
    }
}

/// One registered key of a client.
struct ClientKey {
    kid: Option<String>,
    jwk: Jwk,
    /// The key's own `alg`, which then is the only one it verifies.
    alg: Option<Algorithm>,
    decoding: DecodingKey,
}

impl ClientKey {
    fn usable(&self, alg: Algorithm) -> bool {
        self.alg.is_none_or(|own| own == alg) && fits(&self.jwk, alg)
    }
}

/// Parses a client's `jwks`: every key must be a public signing key of a
/// supported type (EC P-256, OKP Ed25519, RSA of at least 2048 bits).
fn client_keys(jwks: &str) -> std::result::Result<Vec<ClientKey>, &'static str> {
    let set: Value = serde_json::from_str(jwks).map_err(|_| "not JSON")?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or("no keys array")?;
    let mut out = Vec::new();
    for key in keys {
        let members = key.as_object().ok_or("a key is not an object")?;
        if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
            return Err("a key holds private members");
        }
        if members.get("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let jwk: Jwk = serde_json::from_value(key.clone()).map_err(|_| "a malformed key")?;
        let alg = match members.get("alg").and_then(Value::as_str) {
            Some(name) => Some(name.parse::<Algorithm>().map_err(|_| "an unknown alg")?),
            None => None,
        };
        if ![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256].iter().any(|a| fits(&jwk, *a)) {
            return Err("a key of an unsupported type");
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| "a malformed key")?;
        out.push(ClientKey { kid: jwk.common.key_id.clone(), jwk, alg, decoding });
    }
    Ok(out)
}

/// Whether `jwk` is a key for `alg`: EC P-256 for ES256, OKP Ed25519 for
/// EdDSA, RSA of at least 2048 bits for RS256 and PS256.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == EllipticCurve::Ed25519,
        (AlgorithmParameters::RSA(p), Algorithm::RS256 | Algorithm::PS256) => {
            URL_SAFE_NO_PAD.decode(&p.n).is_ok_and(|n| rsa_bits(&n) >= MIN_RSA_BITS)
        }
        _ => false,
    }
}

fn rsa_bits(modulus: &[u8]) -> usize {
    let significant: Vec<&u8> = modulus.iter().skip_while(|b| **b == 0).collect();
    match significant.first() {
        Some(first) => significant.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A compact JWS (RFC 7515 7.1) split into its parts, its header parsed
/// (unchecked) as a JSON object. Each part is decoded once: the header here,
/// the signature by [`Compact::verify`] and the payload by [`Compact::claims`].
struct Compact<'a> {
    header: Map<String, Value>,
    /// `BASE64URL(header) '.' BASE64URL(payload)`, what the signature covers.
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Why a JWS was refused after its header was read.
enum Refused {
    /// The signature does not verify with the key.
    Signature,
    /// The signature or the payload is not well formed.
    Malformed,
}

impl<'a> Compact<'a> {
    /// Splits `token` into exactly three parts and parses the header.
    fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (header, payload, signature, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
            return None;
        };
        let header = match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()? {
            Value::Object(map) => map,
            _ => return None,
        };
        let signing_input = &token[..token.len() - signature.len() - 1];
        Some(Compact { header, signing_input, payload, signature })
    }

    /// Checks the signature with `key` under `alg`. The caller has pinned
    /// `alg` (accepted, asymmetric, fitting the key): this is
    /// `jsonwebtoken`'s check of the signature alone, as `jsonwebtoken::decode`
    /// makes it, without decoding the header again.
    fn verify(&self, key: &DecodingKey, alg: Algorithm) -> Result<(), Refused> {
        match jsonwebtoken::crypto::verify(self.signature, self.signing_input.as_bytes(), key, alg) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Refused::Signature),
            Err(_) => Err(Refused::Malformed),
        }
    }

    /// The payload's claims. Read them only once [`Compact::verify`] has
    /// passed: until then they are anyone's.
    fn claims<T: DeserializeOwned>(&self) -> Result<T, Refused> {
        let payload = URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| Refused::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| Refused::Malformed)
    }
}

/// A NumericDate (RFC 7519 2): seconds since the epoch, fractions dropped.
fn instant(n: &serde_json::Number) -> Option<OffsetDateTime> {
    let secs = n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}
