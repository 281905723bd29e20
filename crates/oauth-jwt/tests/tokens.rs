//! Access tokens end to end: every algorithm, key rotation through a store, the
//! JWKS, and verification by code that shares nothing with the minting path.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine;
use jsonwebtoken::jwk::ThumbprintHash;
use oauth_core::{AccessTokenClaims, AccessTokenCodec, AccessTokenId, ClientId, Error, GrantId, Scope, Store};
use oauth_jwt::{Jwk, JwkSet, JwksSource, JwtCodec, KeyRing, SigningAlg, SigningKey, Verifier};
use oauth_store_mem::MemStore;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);
const ISS: &str = "https://as.example";
const AUD: &str = "https://api.example";
const ALL: [SigningAlg; 5] =
    [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256, SigningAlg::Hs256, SigningAlg::Hs512];

fn claims(at: OffsetDateTime) -> AccessTokenClaims {
    AccessTokenClaims {
        issuer: ISS.into(),
        subject: "7d0e5c1a-8f0e-4b7a-9c55-2f2c2b6f0a11".into(),
        audience: AUD.into(),
        client_id: ClientId::parse("demo-app").unwrap(),
        scope: Scope::parse("read write").unwrap(),
        issued_at: at,
        expires_at: at + Duration::seconds(900),
        jti: AccessTokenId::from_random_bytes([3; 16]),
        grant: Some(GrantId::from_random_bytes([4; 16])),
        jkt: None,
    }
}

fn codec(ring: KeyRing) -> JwtCodec {
    JwtCodec::new(ring, ISS, AUD, Duration::seconds(30))
}

#[tokio::test]
async fn every_algorithm_round_trips() {
    for alg in ALL {
        let c = codec(KeyRing::single(SigningKey::generate(alg).unwrap()));
        let token = c.mint(&claims(NOW)).await.unwrap();
        assert_eq!(c.verify(&token, NOW).await.unwrap(), claims(NOW), "{alg:?}");
    }
}

#[tokio::test]
async fn a_bound_access_token_carries_its_key_in_cnf_jkt() {
    let c = codec(KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap()));
    let jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    let bound = AccessTokenClaims { jkt: Some(jkt.into()), ..claims(NOW) };
    let token = c.mint(&bound).await.unwrap();
    // RFC 9449 6.1, read by code that shares nothing with the minting path.
    let payload = token.split('.').nth(1).unwrap();
    let wire: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(wire["cnf"], serde_json::json!({ "jkt": jkt }));
    assert_eq!(c.verify(&token, NOW).await.unwrap(), bound);
    let unbound = c.mint(&claims(NOW)).await.unwrap();
    let payload = unbound.split('.').nth(1).unwrap();
    let wire: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(wire.get("cnf").is_none(), "a bearer token has no cnf");
}

#[test]
fn hmac_keys_shorter_than_the_hash_output_are_refused() {
    for (alg, min) in [(SigningAlg::Hs256, 32), (SigningAlg::Hs512, 64)] {
        let err = SigningKey::from_secret(alg, &vec![7; min - 1]).unwrap_err();
        assert!(matches!(err, oauth_jwt::Error::KeyTooShort { .. }), "{err}");
        assert!(SigningKey::from_secret(alg, &vec![7; min]).is_ok());
    }
}

#[test]
fn a_key_that_does_not_fit_its_algorithm_is_refused() {
    let err =
        SigningKey::from_pem(SigningAlg::Es256, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert!(matches!(err, Err(oauth_jwt::Error::BadKey(_))));
    assert!(matches!(SigningAlg::parse("none"), Err(oauth_jwt::Error::UnsupportedAlgorithm(_))));
}

#[test]
fn rfc7638_thumbprint_example() {
    // RFC 7638 section 3.1.
    let jwk: Jwk = serde_json::from_value(serde_json::json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }))
    .unwrap();
    assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn the_key_id_is_the_rfc7638_thumbprint() {
    let key = SigningKey::generate(SigningAlg::Es256).unwrap();
    let jwks = KeyRing::single(key.clone()).jwks(NOW);
    assert_eq!(jwks.keys[0].thumbprint(ThumbprintHash::SHA256).unwrap(), key.kid());
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(key.kid()));
}

#[test]
fn the_jwks_publishes_public_keys_only() {
    let es = KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap()).jwks(NOW);
    let json = serde_json::to_value(&es).unwrap();
    let key = &json["keys"][0];
    assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert!(key.get("d").is_none(), "no private component: {key}");
    let hs = KeyRing::single(SigningKey::generate(SigningAlg::Hs256).unwrap()).jwks(NOW);
    assert!(hs.keys.is_empty(), "symmetric keys are never published");
}

#[tokio::test]
async fn an_independent_verifier_accepts_a_minted_es256_token() {
    use p256::ecdsa::signature::Verifier as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let ring = KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap());
    let token = codec(ring.clone()).mint(&claims(NOW)).await.unwrap();
    // Only the published JWKS and the RustCrypto p256 crate from here on.
    let jwks = serde_json::to_value(ring.jwks(NOW)).unwrap();
    let k = &jwks["keys"][0];
    let bare = serde_json::json!({"kty": k["kty"], "crv": k["crv"], "x": k["x"], "y": k["y"]});
    let public = p256::PublicKey::from_jwk_str(&bare.to_string()).unwrap();
    let key = p256::ecdsa::VerifyingKey::from(public);
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&b64.decode(sig).unwrap()).unwrap();
    key.verify(signed.as_bytes(), &sig).expect("p256 verifies the signature");
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(signed.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"].as_str(), Some(ring.signer().kid()));
}

#[tokio::test]
async fn a_stored_key_is_reused_across_starts() {
    let store = MemStore::new();
    let a = KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, Duration::seconds(930)).await.unwrap();
    let b = KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, Duration::seconds(930)).await.unwrap();
    assert_eq!(a.signer().kid(), b.signer().kid());
    assert_eq!(a.id_token_signer().map(|k| k.kid()), b.id_token_signer().map(|k| k.kid()));
    assert_eq!(store.signing_keys().await.unwrap().len(), 2, "the access-token key and the RS256 ID-token key");
}

#[tokio::test]
async fn an_rs256_server_signs_id_tokens_with_its_one_key() {
    let store = MemStore::new();
    let ring = KeyRing::load_or_generate(&store, SigningAlg::Rs256, NOW, Duration::seconds(930)).await.unwrap();
    assert_eq!(ring.id_token_signer().map(|k| k.kid()), Some(ring.signer().kid()));
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    assert_eq!(ring.jwks(NOW).keys.len(), 1);
}

#[tokio::test]
async fn the_id_token_key_is_in_the_jwks_beside_the_access_token_key() {
    let store = MemStore::new();
    let ring = KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, Duration::seconds(930)).await.unwrap();
    let id = ring.id_token_signer().unwrap();
    assert_eq!(id.alg(), SigningAlg::Rs256);
    let jwks = serde_json::to_value(ring.jwks(NOW)).unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&id.kid()) && kids.contains(&ring.signer().kid()), "{jwks}");
    let rsa = jwks["keys"].as_array().unwrap().iter().find(|k| k["kty"] == "RSA").unwrap();
    assert!(rsa.get("d").is_none() && rsa.get("p").is_none(), "public only: {rsa}");
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_then_retires_the_key() {
    let store = MemStore::new();
    let retention = Duration::seconds(900 + 30);
    let old = KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, retention).await.unwrap();
    let old_token = codec(old.clone()).mint(&claims(NOW)).await.unwrap();

    let new_kids = KeyRing::rotate(&store, SigningAlg::Es256, NOW).await.unwrap();
    let restarted = KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, retention).await.unwrap();
    assert_eq!(restarted.signer().kid(), new_kids[0], "the new key signs from the next start");
    assert_eq!(restarted.id_token_signer().map(|k| k.kid()), Some(new_kids[1].as_str()), "so does a new ID-token key");
    assert_ne!(restarted.id_token_signer().map(|k| k.kid()), old.id_token_signer().map(|k| k.kid()));
    let c = codec(restarted.clone());
    assert!(c.verify(&old_token, NOW + Duration::seconds(60)).await.is_ok(), "old tokens keep verifying");
    assert_eq!(restarted.jwks(NOW).keys.len(), 4, "two old keys and two new ones");

    let after = NOW + retention;
    assert_eq!(restarted.jwks(after).keys.len(), 2, "the old keys leave the JWKS after ttl + leeway");
    assert!(matches!(c.verify(&old_token, after).await, Err(Error::InvalidToken(_))));
    let later = KeyRing::load_or_generate(&store, SigningAlg::Es256, after, retention).await.unwrap();
    assert_eq!(later.jwks(after).keys.len(), 2);
}

#[tokio::test]
async fn a_replaced_key_file_key_stays_in_the_jwks_for_its_retention() {
    let store = MemStore::new();
    let retention = Duration::seconds(930);
    let first = SigningKey::generate(SigningAlg::Es256).unwrap();
    let first_kid = first.kid().to_owned();
    let ring = KeyRing::with_key_file(&store, first, NOW, retention).await.unwrap();
    let id_kid = ring.id_token_signer().unwrap().kid().to_owned();
    let token = codec(ring).mint(&claims(NOW)).await.unwrap();
    let stored = store.signing_keys().await.unwrap();
    let file_record = stored.iter().find(|r| r.kid == first_kid).unwrap();
    assert!(file_record.secret.is_empty(), "only the public half of a key_file key is stored");

    let second = SigningKey::generate(SigningAlg::Es256).unwrap();
    let later = NOW + Duration::seconds(100);
    let ring = KeyRing::with_key_file(&store, second, later, retention).await.unwrap();
    assert_eq!(ring.id_token_signer().unwrap().kid(), id_kid, "replacing the file keeps the stored ID-token key");
    assert_eq!(ring.jwks(later).keys.len(), 3, "the old and new file keys, and the ID-token key");
    assert!(codec(ring.clone()).verify(&token, later).await.is_ok());
    assert_eq!(ring.jwks(later + retention).keys.len(), 2);

    let rotated = KeyRing::rotate_id_token_key(&store, later).await.unwrap();
    let ring = KeyRing::with_key_file(&store, SigningKey::generate(SigningAlg::Es256).unwrap(), later, retention)
        .await
        .unwrap();
    assert_eq!(
        ring.id_token_signer().unwrap().kid(),
        rotated,
        "keys rotate renews the ID-token key of a key_file server"
    );
}

#[tokio::test]
async fn keys_are_shared_by_every_node_on_one_store() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let a = KeyRing::load_or_generate(&*store, SigningAlg::Es256, NOW, Duration::seconds(930)).await.unwrap();
    let b = KeyRing::load_or_generate(&*store, SigningAlg::Es256, NOW, Duration::seconds(930)).await.unwrap();
    let token = codec(a).mint(&claims(NOW)).await.unwrap();
    assert!(codec(b).verify(&token, NOW).await.is_ok());
}

struct CountingJwks {
    set: JwkSet,
    fetches: AtomicUsize,
}

#[async_trait]
impl JwksSource for CountingJwks {
    async fn fetch(&self) -> Result<JwkSet, Error> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.set.clone())
    }
}

#[tokio::test]
async fn a_resource_server_refreshes_the_jwks_on_an_unknown_kid_at_most_once_per_interval() {
    let ring = KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap());
    let token = codec(ring.clone()).mint(&claims(NOW)).await.unwrap();
    let source = Arc::new(CountingJwks { set: ring.jwks(NOW), fetches: AtomicUsize::new(0) });
    let v = Verifier::new(source.clone(), ISS, AUD, Duration::seconds(30), Duration::seconds(60));
    assert_eq!(v.authenticate(&token, NOW).await.unwrap(), claims(NOW));
    assert_eq!(v.authenticate(&token, NOW).await.unwrap(), claims(NOW));
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "a known kid needs no fetch");

    let stranger = codec(KeyRing::single(SigningKey::generate(SigningAlg::Es256).unwrap()));
    let stranger = stranger.mint(&claims(NOW)).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(v.authenticate(&stranger, NOW + Duration::seconds(1)).await, Err(Error::InvalidToken(_))));
    }
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1, "unknown kids do not refetch within the interval");
    assert!(v.authenticate(&stranger, NOW + Duration::seconds(61)).await.is_err());
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}

/// Nodes sharing a store: a running node learns, by reloading, a key that
/// `keys rotate` added (and that a restarted node signs with), and keeps
/// signing with its own.
#[tokio::test]
async fn a_running_node_learns_a_rotated_key_by_reloading() {
    let store = MemStore::new();
    let retention = Duration::seconds(930);
    let running = codec(KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, retention).await.unwrap());
    KeyRing::rotate(&store, SigningAlg::Es256, NOW).await.unwrap();
    let restarted = codec(KeyRing::load_or_generate(&store, SigningAlg::Es256, NOW, retention).await.unwrap());
    let from_restarted = restarted.mint(&claims(NOW)).await.unwrap();
    assert!(running.verify(&from_restarted, NOW).await.is_err(), "unknown before the reload");
    assert!(running.reload_keys(&store, NOW).await.unwrap(), "the reload found a new key");
    running.verify(&from_restarted, NOW).await.unwrap();
    assert!(!running.reload_keys(&store, NOW).await.unwrap(), "nothing new the second time");
    // The running node still signs with its own key, which the restarted one verifies.
    let from_running = running.mint(&claims(NOW)).await.unwrap();
    restarted.verify(&from_running, NOW).await.unwrap();
    assert_ne!(kid_of(&from_running), kid_of(&from_restarted));
    assert_eq!(running.ring().jwks(NOW).keys.len(), 4, "each node's access-token and ID-token keys");
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}
