//! The client's side of DPoP proofs (RFC 9449) and `private_key_jwt`
//! assertions (RFC 7523) for the bench: one ES256 key per bench process, its
//! public half registered as the `jwks` of the assertion client and sent in
//! every proof's header. Each proof and assertion has its own `jti`, as the
//! server's replay caches demand; their signing runs in the load generator,
//! so its CPU is not in the server's column.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::Digest;

use crate::Error;

/// The bench client's key: how it signs, and its public JWK.
struct ClientKey {
    encoding: EncodingKey,
    jwk: Jwk,
}

static KEY: OnceLock<ClientKey> = OnceLock::new();

fn key() -> Result<&'static ClientKey, Error> {
    if let Some(k) = KEY.get() {
        return Ok(k);
    }
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .map_err(|_| Error::Setup("cannot generate a P-256 key".into()))?;
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
    jwk.common.key_id = Some("bench-client-key".into());
    Ok(KEY.get_or_init(|| ClientKey { encoding, jwk }))
}

/// The client's JWK Set, as the `jwks` of a configured client.
pub(crate) fn jwks() -> Result<String, Error> {
    let set = serde_json::json!({ "keys": [key()?.jwk] });
    Ok(set.to_string())
}

/// A `jti` never used before in this process, nor (by its random prefix) in
/// another bench run against the same store.
fn jti() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    static PREFIX: OnceLock<u64> = OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u64>);
    format!("{prefix:016x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The client's wall clock, in seconds: a client stamps its proofs and
/// assertions with its own clock, not the server's `Clock`.
#[allow(clippy::disallowed_methods, reason = "the bench client's own clock, as a real client's")]
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A DPoP proof for `method` at `url`, with `ath` for `access_token` if any.
pub(crate) fn dpop_proof(method: &str, url: &str, access_token: Option<&str>) -> Result<String, Error> {
    let k = key()?;
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    let mut public = k.jwk.clone();
    public.common.key_id = None;
    header.jwk = Some(public);
    let mut claims = serde_json::json!({ "jti": jti(), "htm": method, "htu": url, "iat": now() });
    if let Some(token) = access_token {
        claims["ath"] = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes())).into();
    }
    Ok(jsonwebtoken::encode(&header, &claims, &k.encoding)?)
}

/// A client assertion of `client_id` for the server at `issuer`, valid for a
/// minute.
pub(crate) fn assertion(client_id: &str, issuer: &str) -> Result<String, Error> {
    let k = key()?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = k.jwk.common.key_id.clone();
    let now = now();
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": issuer, "iat": now, "exp": now + 60, "jti": jti(),
    });
    Ok(jsonwebtoken::encode(&header, &claims, &k.encoding)?)
}
