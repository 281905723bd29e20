//! The layered client registry: how a change to a stored client reaches a
//! node (SPEC-2: within 10 s everywhere, at once where it was made).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::collections::BTreeSet;
use std::sync::Arc;

use oauth_core::testing::ManualClock;
use oauth_core::{
    ClientId, ClientOrigin, ClientRecord, ClientRegistry, GrantType, IdTokenAlg, LayeredClients, NoFixedClients,
    RedirectUri, Scope, Store, StoredClients,
};
use oauth_store_mem::MemStore;
use time::macros::datetime;

fn record(id: &str, scope: &str) -> ClientRecord {
    ClientRecord {
        id: ClientId::parse(id).unwrap(),
        name: id.into(),
        secret: None,
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        grant_types: [GrantType::AuthorizationCode].into(),
        scopes: Scope::parse(scope).unwrap(),
        require_pkce: true,
        resources: BTreeSet::new(),
        allowed_cors_origins: Vec::new(),
        created_at: datetime!(2026-11-25 12:00 UTC),
        origin: ClientOrigin::Admin,
        registration_token: None,
        jwks: None,
        private_key_jwt: false,
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: IdTokenAlg::Rs256,
        skip_consent: false,
    }
}

#[tokio::test]
async fn a_change_on_another_node_holds_here_within_the_ttl_and_at_once_after_forget() {
    let store = Arc::new(MemStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-25 12:00 UTC)));
    // Two nodes on one store, each with its own cache.
    let here = LayeredClients::new(Arc::new(NoFixedClients), store.clone(), clock.clone());
    let there = LayeredClients::new(Arc::new(NoFixedClients), store.clone(), clock.clone());
    let id = ClientId::parse("app").unwrap();

    // An unknown id is not cached: a client created elsewhere is found at once.
    assert!(here.client(&id).await.unwrap().is_none());
    store.insert_client(&record("app", "read")).await.unwrap();
    assert_eq!(here.client(&id).await.unwrap().unwrap().scopes().to_string(), "read");
    assert!(there.client(&id).await.unwrap().is_some());

    // "there" changes it: "there" sees it at once, "here" within the TTL.
    assert!(store.replace_client(&record("app", "read write")).await.unwrap());
    there.forget(&id);
    assert_eq!(there.client(&id).await.unwrap().unwrap().scopes().to_string(), "read write");
    assert_eq!(here.client(&id).await.unwrap().unwrap().scopes().to_string(), "read", "still cached");
    clock.advance(StoredClients::TTL);
    assert_eq!(here.client(&id).await.unwrap().unwrap().scopes().to_string(), "read write");
    assert!(StoredClients::TTL <= time::Duration::seconds(10), "SPEC-2 allows 10 s");

    // A deletion: at once where made, within the TTL elsewhere.
    assert!(store.delete_client(&id).await.unwrap());
    there.forget(&id);
    assert!(there.client(&id).await.unwrap().is_none());
    assert!(here.client(&id).await.unwrap().is_some(), "still cached");
    clock.advance(StoredClients::TTL);
    assert!(here.client(&id).await.unwrap().is_none());
}
