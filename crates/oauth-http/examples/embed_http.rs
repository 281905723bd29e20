//! Embedding the HTTP front end: every endpoint of oauth-rs in your own
//! program, on the memory store, with a resource check of your own.
//!
//! ```sh
//! cargo run -p oauth-http --example embed_http
//! ```
//!
//! It serves on 127.0.0.1:8080 until Ctrl-C, with one public client
//! (`demo-native`, redirect `http://127.0.0.1:9000/callback`) and one account
//! (`alice` / `alice-password`). The README's browser link walks the login and
//! consent pages. The resource check is the part a data holder writes: here it
//! holds `records` only for accounts with a `patient_id` attribute, as a
//! MedMij provider would look the user up before consent.
//!
//! The pieces, from the bottom: a store (`oauth-store-mem`; implement
//! `oauth_core::Store` for your own), the runtime services (`oauth-runtime`:
//! Argon2id, randomness, the clock), JWT access tokens (`oauth-jwt`), the
//! flows (`oauth_core::Authority`) and the front end (`oauth_http::Frontend`,
//! served by `oauth_http::serve`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oauth_core::{
    Account, AccountId, Authority, Client, ClientId, ClientSettings, ConsentRule, GrantType, IdTokenAlg,
    RedirectPolicy, RedirectUri, ResourceCheck, ResourceDecision, Scope, ScopeRule, SecretHash, Services, Settings,
    Store,
};
use oauth_http::{Frontend, HttpConfig, SecurityEventLog};
use oauth_jwt::{JwtCodec, JwtProofs, KeyRing, SigningAlg, SigningKey};
use oauth_runtime::credentials::hash_argon2;
use oauth_runtime::{HashVerifier, OsSecrets, SystemClock};
use oauth_store_mem::MemStore;
use time::OffsetDateTime;

/// The data holder's own check: does it hold data for this user?
#[derive(Debug)]
struct HoldsRecords;

#[async_trait]
impl ResourceCheck for HoldsRecords {
    async fn check(
        &self,
        _client: &Client,
        account: &Account,
        scope: &Scope,
        _now: OffsetDateTime,
    ) -> oauth_core::Result<ResourceDecision> {
        // A real check asks the record system; this one reads an attribute.
        if account.attributes.contains_key("patient_id") {
            Ok(ResourceDecision::Allow(scope.clone()))
        } else {
            Ok(ResourceDecision::Deny)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let issuer = "http://127.0.0.1:8080";
    let store = Arc::new(MemStore::new());
    store
        .put_account(&Account {
            id: AccountId::from_random_bytes(*b"example-account!"),
            username: "alice".into(),
            password_hash: Some(SecretHash::new(hash_argon2("alice-password")?)),
            disabled: false,
            attributes: BTreeMap::from([("patient_id".into(), "12345".into())]),
            origin: oauth_core::AccountOrigin::Configuration,
        })
        .await?;

    let client = Client::new(ClientSettings {
        id: ClientId::parse("demo-native")?,
        name: "Demo native app".into(),
        secret: None,
        redirect: RedirectPolicy::Registered(vec![RedirectUri::parse("http://127.0.0.1:9000/callback")?]),
        grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
        scopes: Scope::parse("records")?,
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
    })?;
    let clients = BTreeMap::from([(client.id().clone(), Arc::new(client))]);

    let codec = Arc::new(JwtCodec::new(
        KeyRing::single(SigningKey::generate(SigningAlg::Es256)?),
        issuer,
        issuer,
        time::Duration::seconds(30),
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Replayed codes, reused refresh tokens and lockouts: a WARN line each,
    // counted at /metrics.
    let events = Arc::new(SecurityEventLog::default());
    let services = Services {
        store,
        clients: Arc::new(clients),
        clock: Arc::new(SystemClock),
        secrets: Arc::new(OsSecrets),
        verifier: Arc::new(HashVerifier::new(cores)?),
        tokens: codec.clone(),
        id_tokens: codec.clone(),
        resources: Arc::new(HoldsRecords),
        events: events.clone(),
        // DPoP proofs and private_key_jwt assertions, checked by oauth-jwt.
        proofs: Arc::new(JwtProofs::new()),
    };
    let mut http = HttpConfig::default();
    http.scope_descriptions.insert("records".into(), "Read your medical records".into());
    let frontend =
        Frontend::new(http, Authority::new(Settings::new(issuer), services), codec)?.with_security_events(events);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("serving {issuer}; Ctrl-C stops");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    oauth_http::serve(listener, Arc::new(frontend), shutdown, Duration::from_secs(5)).await?;
    Ok(())
}
