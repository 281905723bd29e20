//! Criterion: mint and verify ns/op for each algorithm, with the claim set the
//! server issues, and the signature checks of an ES256 DPoP proof and an ES256
//! `private_key_jwt` assertion (`cargo bench -p oauth-jwt`).

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_core::{
    AccessTokenClaims, AccessTokenCodec, AccessTokenId, AccountId, ClientId, GrantId, IdTokenAlg, IdTokenClaims,
    IdTokenCodec, Nonce, Scope, Sid,
};
use oauth_jwt::{JwtCodec, KeyRing, SigningAlg, SigningKey};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

fn jwt(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let claims = AccessTokenClaims {
        issuer: "http://127.0.0.1:8080".into(),
        subject: "7d0e5c1a-8f0e-4b7a-9c55-2f2c2b6f0a11".into(),
        audience: "http://127.0.0.1:8080".into(),
        client_id: ClientId::parse("demo-app").expect("client id"),
        scope: Scope::parse("profile read write").expect("scope"),
        issued_at: NOW,
        expires_at: NOW + Duration::seconds(900),
        jti: AccessTokenId::from_random_bytes([3; 16]),
        grant: Some(GrantId::from_random_bytes([4; 16])),
        jkt: None,
    };
    let mut group = c.benchmark_group("jwt");
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa, SigningAlg::Rs256, SigningAlg::Hs256, SigningAlg::Hs512] {
        let codec = JwtCodec::new(
            KeyRing::single(SigningKey::generate(alg).expect("key")),
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080",
            Duration::seconds(30),
        );
        let token = rt.block_on(codec.mint(&claims)).expect("mint");
        group.bench_function(format!("mint/{}", alg.name()), |b| {
            b.to_async(&rt).iter(|| async { codec.mint(&claims).await.expect("mint") });
        });
        group.bench_function(format!("verify/{}", alg.name()), |b| {
            b.to_async(&rt).iter(|| async { codec.verify(&token, NOW).await.expect("verify") });
        });
    }
    // An ID token as a login mints it: RS256 with the ring's ID-token key,
    // parsed once (the access-token mint of RS256 above goes the same way).
    let codec = JwtCodec::new(
        KeyRing::single(SigningKey::generate(SigningAlg::Es256).expect("key"))
            .with_id_token_key(SigningKey::generate(SigningAlg::Rs256).expect("key"))
            .expect("ring"),
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080",
        Duration::seconds(30),
    );
    let id_claims = IdTokenClaims {
        issuer: "http://127.0.0.1:8080".into(),
        subject: AccountId::from_random_bytes([5; 16]),
        audience: ClientId::parse("demo-app").expect("client id"),
        issued_at: NOW,
        expires_at: NOW + Duration::seconds(3600),
        auth_time: NOW,
        nonce: Some(Nonce::parse("n-0S6_WzA2Mj").expect("nonce")),
        sid: Some(Sid::from_random_bytes([6; 16])),
    };
    group.bench_function("id_token/RS256", |b| {
        b.to_async(&rt).iter(|| async {
            codec.mint_id_token(&id_claims, IdTokenAlg::Rs256, "an-access-token").await.expect("mint")
        });
    });
    group.finish();
}

/// A DPoP proof and a client assertion, each built with jsonwebtoken over the
/// test key in `tests/keys`, checked by `JwtProofs` (form, key, signature and
/// the thumbprint; the claims' meaning is the core's).
fn proofs(c: &mut Criterion) {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use oauth_core::ProofChecker;

    let key = EncodingKey::from_ec_pem(include_bytes!("../tests/keys/es256-a.pem")).expect("key");
    let jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(jwk.clone());
    let claims = serde_json::json!({ "jti": "j", "htm": "POST", "htu": "http://127.0.0.1:8080/token", "iat": 1 });
    let proof = jsonwebtoken::encode(&header, &claims, &key).expect("proof");
    let client = oauth_core::Client::new(oauth_core::ClientSettings {
        id: ClientId::parse("keys-app").expect("client id"),
        name: "Keys App".into(),
        secret: None,
        jwks: Some(serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("jwks")),
        redirect: oauth_core::RedirectPolicy::Registered(vec![]),
        grant_types: [oauth_core::GrantType::ClientCredentials].into(),
        scopes: Scope::parse("read").expect("scope"),
        scope_rule: oauth_core::ScopeRule::Subset,
        require_pkce: true,
        allowed_cors_origins: vec![],
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        resources: Default::default(),
        post_logout_redirect_uris: vec![],
        id_token_alg: oauth_core::IdTokenAlg::Rs256,
        consent: oauth_core::ConsentRule::Remember,
    })
    .expect("client");
    let claims = serde_json::json!({ "iss": "keys-app", "sub": "keys-app", "aud": "x", "exp": 2, "jti": "a" });
    let assertion = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).expect("assertion");
    let checker = oauth_jwt::JwtProofs::new();
    let mut group = c.benchmark_group("proofs");
    group.bench_function("dpop_proof/ES256", |b| b.iter(|| checker.dpop_proof(&proof).expect("proof")));
    group.bench_function("client_assertion/ES256", |b| {
        b.iter(|| checker.client_assertion(&assertion, &client).expect("assertion"))
    });
    group.finish();
}

criterion_group!(benches, jwt, proofs);
criterion_main!(benches);
