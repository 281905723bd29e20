//! Criterion: mint and verify ns/op for each algorithm, with the claim set the
//! server issues (`cargo bench -p oauth-jwt`).

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_core::{AccessTokenClaims, AccessTokenCodec, AccessTokenId, ClientId, GrantId, Scope};
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
    group.finish();
}

criterion_group!(benches, jwt);
criterion_main!(benches);
