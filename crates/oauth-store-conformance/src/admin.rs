//! Checks of what the admin API keeps in the store: clients (insert once,
//! replace, list by cursor in `client_id` order, count, delete), accounts
//! (list by cursor in id order, delete), and an account's live grants.

use std::collections::BTreeMap;
use std::sync::Arc;

use oauth_core::{
    Account, AccountId, AccountOrigin, ClientId, ClientOrigin, ClientRecord, GrantId, GrantType, RedirectUri, Scope,
    SecretHash, Store, StoreError, TokenHash,
};
use time::Duration;

use crate::{T0, grant};

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        id: ClientId::parse(id).expect("client id"),
        name: format!("{id} app"),
        secret: Some(SecretHash::new("$sha256$0000000000000000000000000000000000000000000000000000000000000000")),
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").expect("uri")],
        grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
        scopes: Scope::parse("read").expect("scope"),
        require_pkce: true,
        resources: Default::default(),
        allowed_cors_origins: Vec::new(),
        created_at: T0,
        origin: ClientOrigin::Registration,
        registration_token: Some(TokenHash::of("registration")),
        jwks: None,
        private_key_jwt: false,
        // Not the defaults, so every backend is seen to keep them.
        post_logout_redirect_uris: vec![RedirectUri::parse("https://app.example/bye").expect("uri")],
        id_token_alg: oauth_core::IdTokenAlg::ServerAlg,
        skip_consent: true,
    }
}

/// A client that authenticates with `private_key_jwt`: keys and no secret.
fn key_client(id: &str) -> ClientRecord {
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1"}]}"#;
    ClientRecord {
        secret: None,
        grant_types: [GrantType::ClientCredentials].into(),
        redirect_uris: Vec::new(),
        jwks: Some(jwks.into()),
        private_key_jwt: true,
        ..client(id)
    }
}

fn account(name: &str, id: u8) -> Account {
    Account {
        id: AccountId::from_bytes([id; 16]),
        username: name.into(),
        password_hash: None,
        disabled: false,
        attributes: BTreeMap::new(),
        origin: AccountOrigin::Admin,
    }
}

/// A `private_key_jwt` client keeps its keys and its method through insert,
/// replace and listing, and a client with keys beside a secret keeps them as
/// metadata: so a restart, or another node, authenticates it the same way.
pub async fn a_private_key_jwt_client_keeps_its_keys_and_method(store: Arc<dyn Store>) {
    let keyed = key_client("keyed-app");
    store.insert_client(&keyed).await.expect("insert");
    let read = store.client_record(&keyed.id).await.expect("read").expect("stored");
    assert_eq!(read, keyed);
    let authenticated = read.to_client().expect("a valid client");
    assert_eq!(authenticated.jwks(), keyed.jwks.as_deref(), "the keys authenticate it");
    assert!(authenticated.is_confidential() && authenticated.secret().is_none());

    let with_secret = ClientRecord { jwks: keyed.jwks.clone(), ..client("secret-app") };
    store.insert_client(&with_secret).await.expect("insert");
    let read = store.client_record(&with_secret.id).await.expect("read").expect("stored");
    assert_eq!(read, with_secret);
    assert_eq!(read.to_client().expect("a valid client").jwks(), None, "keys beside a secret are metadata");

    let rekeyed = ClientRecord { jwks: keyed.jwks.as_ref().map(|j| j.replace("\"k1\"", "\"k2\"")), ..keyed.clone() };
    assert!(store.replace_client(&rekeyed).await.expect("replace"));
    assert_eq!(store.client_record(&keyed.id).await.expect("read"), Some(rekeyed.clone()));
    let listed = store.client_records(None, 10).await.expect("list");
    assert!(listed.contains(&rekeyed), "{listed:?}");
}

/// A client is stored once per `client_id`, read back equal, replaced only
/// when it exists, counted, and deleted once.
pub async fn clients_insert_once_replace_and_delete(store: Arc<dyn Store>) {
    let first = client("app-1");
    store.insert_client(&first).await.expect("insert");
    let again = store.insert_client(&client("app-1")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a second insert of one client_id: {again:?}");
    assert_eq!(store.client_record(&first.id).await.expect("read"), Some(first.clone()));
    assert_eq!(store.client_record(&ClientId::parse("APP-1").expect("id")).await.expect("read"), None, "exact match");

    let renamed = ClientRecord { name: "Renamed".into(), registration_token: None, ..first.clone() };
    assert!(store.replace_client(&renamed).await.expect("replace"));
    assert_eq!(store.client_record(&first.id).await.expect("read"), Some(renamed));
    assert!(!store.replace_client(&client("never-stored")).await.expect("replace"), "replaced a client never stored");
    assert_eq!(store.client_record(&ClientId::parse("never-stored").expect("id")).await.expect("read"), None);
    assert_eq!(store.count_clients().await.expect("count"), 1);

    assert!(store.delete_client(&first.id).await.expect("delete"));
    assert!(!store.delete_client(&first.id).await.expect("delete"), "deleted twice");
    assert_eq!(store.client_record(&first.id).await.expect("read"), None);
    assert_eq!(store.count_clients().await.expect("count"), 0);
    store.insert_client(&first).await.expect("the client_id is free again");
}

/// Clients list in bytewise `client_id` order, a page at a time.
pub async fn clients_list_by_cursor_in_id_order(store: Arc<dyn Store>) {
    let ids = ["b", "a", "B", "a b", "c/d", "e~", "z"];
    for id in &ids {
        store.insert_client(&client(id)).await.expect("insert");
    }
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut seen = Vec::new();
    let mut after: Option<ClientId> = None;
    loop {
        let page = store.client_records(after.as_ref(), 3).await.expect("page");
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|c| c.id.to_string()));
        match page.last() {
            Some(last) if page.len() == 3 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    assert_eq!(seen, expected);
}

/// Accounts list in id order a page at a time; a deleted account is gone and
/// its username free.
pub async fn accounts_list_by_cursor_and_delete(store: Arc<dyn Store>) {
    for (i, name) in ["erin", "bob", "dave", "carol", "alice"].iter().enumerate() {
        store.put_account(&account(name, 10 + i as u8)).await.expect("put");
    }
    let first = store.accounts_after(None, 2).await.expect("page");
    let rest = store.accounts_after(Some(first[1].id), 10).await.expect("page");
    let ids: Vec<AccountId> = first.iter().chain(&rest).map(|a| a.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!((ids.len(), &ids), (5, &sorted), "every account once, in id order");

    let bob = store.account_by_username("bob").await.expect("get").expect("bob");
    assert!(store.delete_account(bob.id).await.expect("delete"));
    assert!(!store.delete_account(bob.id).await.expect("delete"), "deleted twice");
    assert_eq!(store.account(bob.id).await.expect("get"), None);
    assert_eq!(store.account_by_username("bob").await.expect("get"), None);
    store.put_account(&account("bob", 99)).await.expect("the username is free again");
    assert_eq!(store.accounts_after(None, 100).await.expect("all").len(), 5);
}

/// An account's grants are listed live only (not revoked, not expired), one
/// account's alone, in id order, a page at a time.
pub async fn grants_of_an_account_are_its_live_ones(store: Arc<dyn Store>) {
    let owner = AccountId::from_random_bytes([7; 16]);
    let mut made = Vec::new();
    for n in 1..=5u8 {
        let g = oauth_core::Grant { account: Some(owner), ..grant(n, T0 + Duration::DAY) };
        store.insert_grant(&g, None).await.expect("grant");
        made.push(g.id);
    }
    let other =
        oauth_core::Grant { account: Some(AccountId::from_random_bytes([8; 16])), ..grant(20, T0 + Duration::DAY) };
    store.insert_grant(&other, None).await.expect("grant");
    let expired = oauth_core::Grant { account: Some(owner), ..grant(21, T0 + Duration::MINUTE) };
    store.insert_grant(&expired, None).await.expect("grant");
    store.revoke_grant(made[2]).await.expect("revoke");
    made.remove(2);
    made.sort();

    let now = T0 + Duration::HOUR;
    let first = store.grants_of(owner, None, 2, now).await.expect("page");
    let rest = store.grants_of(owner, first.last().map(|g| g.id), 10, now).await.expect("page");
    let listed: Vec<GrantId> = first.iter().chain(&rest).map(|g| g.id).collect();
    assert_eq!(listed, made, "live grants of the owner, in id order");
    assert!(first.iter().chain(&rest).all(|g| g.account == Some(owner) && !g.revoked));
    assert_eq!(store.grants_of(AccountId::from_random_bytes([9; 16]), None, 10, now).await.expect("none"), vec![]);
}
