//! Criterion benchmark of client authentication on the server's own stack:
//! `cargo bench -p oauth-server --bench client_auth`.
//!
//! The throttle runs on every `client_credentials` request, so this is its
//! cost in place: the sled store behind the reopening wrapper and the store
//! gate, a `$sha256$` client secret, one peer address. The HTTP bench (`cargo
//! xtask bench`) measures the whole request; this isolates the step the
//! throttle changes, which the machine's noise hides there.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_core::{
    AllowAll, Authority, Client, ClientCredentials, ClientId, ClientSettings, ConsentRule, GrantType, IdTokenAlg,
    IgnoreEvents, RedirectPolicy, RedirectUri, Scope, ScopeRule, SecretHash, Services, Settings, Store,
};
use oauth_jwt::{JwtCodec, KeyRing, SigningAlg, SigningKey};
use oauth_runtime::GatedStore;
use oauth_runtime::credentials::{HashVerifier, OsSecrets, SystemClock, hash_sha256};
use oauth_store_sled::{Options, ReopeningStore};

const ISSUER: &str = "http://127.0.0.1:8080";
const CLIENT: &str = "bench-app";
const SECRET: &str = "bench-secret-0123456789-abcdefghijklmnop";

fn client_auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = Arc::new(ReopeningStore::open(dir.path(), Options::default()).expect("sled"));
    let store: Arc<dyn Store> = Arc::new(GatedStore::new(sled, 256, Duration::from_secs(5)));
    let settings = ClientSettings {
        id: ClientId::parse(CLIENT).expect("client id"),
        name: "Bench App".into(),
        secret: Some(SecretHash::new(hash_sha256(SECRET).expect("hash"))),
        redirect: RedirectPolicy::Registered(vec![RedirectUri::parse("http://127.0.0.1:9/cb").expect("uri")]),
        grant_types: [GrantType::ClientCredentials].into(),
        scopes: Scope::parse("read").expect("scope"),
        scope_rule: ScopeRule::Subset,
        require_pkce: true,
        allowed_cors_origins: vec![],
        resources: Default::default(),
        jwks: None,
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        post_logout_redirect_uris: vec![],
        id_token_alg: IdTokenAlg::Rs256,
        consent: ConsentRule::Remember,
    };
    let client = Arc::new(Client::new(settings).expect("client"));
    let clients: BTreeMap<ClientId, Arc<Client>> = [(client.id().clone(), client)].into();
    let key = SigningKey::generate(SigningAlg::Es256).expect("key");
    let codec = Arc::new(JwtCodec::new(KeyRing::single(key), ISSUER, ISSUER, time::Duration::seconds(30)));
    let services = Services {
        store,
        clients: Arc::new(clients),
        clock: Arc::new(SystemClock),
        secrets: Arc::new(OsSecrets),
        verifier: Arc::new(HashVerifier::new(1).expect("verifier")),
        tokens: codec.clone(),
        id_tokens: codec,
        resources: Arc::new(AllowAll),
        events: Arc::new(IgnoreEvents),
        proofs: Arc::new(oauth_jwt::JwtProofs::new()),
    };
    let authority = Authority::new(Settings::new(ISSUER), services);
    let creds = ClientCredentials { client_id: Some(CLIENT), secret: Some(SECRET), assertion: None };
    let peer = Some(IpAddr::from([127, 0, 0, 1]));
    let mut group = c.benchmark_group("client_auth");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("sled, throttled, $sha256$ secret", |b| {
        b.to_async(&rt).iter(|| async { authority.authenticate_client(&creds, peer).await.expect("authenticated") })
    });
    group.finish();
}

criterion_group!(benches, client_auth);
criterion_main!(benches);
