//! The one behaviour suite every [`Store`] backend runs.
//!
//! Each check is a public async function that takes a fresh store and panics
//! (through `assert!`) when the backend breaks the contract written on
//! [`Store`]. A backend runs them all with one macro call in a test file:
//!
//! ```text
//! oauth_store_conformance::conformance_tests!(async {
//!     (std::sync::Arc::new(MyStore::new()) as std::sync::Arc<dyn oauth_core::Store>, ())
//! });
//! ```
//!
//! The expression is evaluated once per check and yields the store and a guard
//! (a temporary directory, say) that lives as long as the check. The backend's
//! test crate needs `tokio` with the `macros` and `rt-multi-thread` features.
//! Backends never skip a check: where they differ, the difference is a
//! parameter.
//!
//! Sessions are produced by running the real flows of `oauth-core` (through its
//! `testing` fixture) against the store under test, so the store sees exactly
//! the records production writes.
//!
//! # Examples
//!
//! Two runnable programs show how the crates fit together when embedded
//! (`cargo xtask test` builds both):
//! - [`oauth-core/examples/medmij_steps.rs`](https://example.invalid/oauth-rs/crates/oauth-core/examples/medmij_steps.rs)
//!   (`cargo run -p oauth-core --example medmij_steps`): only the core, over a
//!   store of its own, driving the MedMij steps (create session, check
//!   resource, decide, exchange);
//! - [`oauth-http/examples/embed_http.rs`](https://example.invalid/oauth-rs/crates/oauth-http/examples/embed_http.rs)
//!   (`cargo run -p oauth-http --example embed_http`): every endpoint served
//!   by `oauth-http` on the memory store, with a resource check of its own.

#![forbid(unsafe_code)]
#![allow(clippy::expect_used, reason = "a conformance check fails by panicking, like any test")]

mod admin;
pub mod bench;
mod device;
mod records;
mod sso;

pub use admin::{
    a_private_key_jwt_client_keeps_its_keys_and_method, accounts_list_by_cursor_and_delete,
    clients_insert_once_replace_and_delete, clients_list_by_cursor_in_id_order, grants_of_an_account_are_its_live_ones,
};
pub use device::{
    device_user_codes_are_unique_and_swept_at_expiry, racing_device_decisions_have_one_winner,
    racing_device_polls_after_approval_give_one_token_response, racing_pending_polls_are_each_counted,
};
pub use records::{
    an_owners_records_are_deleted_by_kind, expired_records_are_gone_and_their_keys_free,
    racing_record_inserts_have_one_winner, racing_record_takes_have_one_winner, record_kinds_are_separate,
    records_insert_once_swap_and_take_once, sweep_removes_expired_records,
};
pub use sso::{
    a_browser_session_and_a_consent_carry_the_next_authorization,
    a_login_and_nonce_survive_the_store_into_the_id_tokens, ending_an_accounts_sessions_logs_every_browser_out,
};

use std::collections::BTreeMap;
use std::sync::Arc;

use oauth_core::testing::{Fixture, PASSWORD, USERNAME};
use oauth_core::{
    AccessTokenId, Account, AccountId, ClientId, CodeRedemption, Grant, GrantId, RefreshRecord, Rotation, Scope,
    SecretHash, SessionState, SigningKeyRecord, Store, StoreError, ThrottleKey, TokenHash,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Concurrent callers in the store race checks.
pub const RACERS: usize = 32;

/// Concurrent callers in the flow race checks.
pub const FLOW_RACERS: usize = 64;

pub(crate) const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

/// Runs every check against a store factory; see the crate docs.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            session_round_trip,
            replace_session_is_compare_and_swap,
            expired_sessions_are_not_returned,
            code_redeems_once,
            replayed_code_names_its_grant,
            expired_code_is_not_redeemed,
            unknown_code_is_not_found,
            refresh_rotation_detects_reuse_and_revokes_family,
            concurrent_rotation_has_one_winner,
            revoked_grant_refuses_rotation_and_access_tokens,
            refresh_tokens_expire_with_token_or_family,
            access_token_revocation_lasts_until_expiry,
            accounts_insert_lookup_disable_rename,
            usernames_are_unique,
            signing_keys_round_trip,
            throttle_records_failures_within_the_window,
            throttle_record_failure_is_atomic_under_a_burst,
            throttle_forgets_one_failure_at_a_time,
            throttle_records_against_every_key,
            throttle_keeps_expiry_entries_in_order_and_forgets_passed_ones,
            racing_pending_additions_admit_exactly_the_cap,
            sweep_removes_dead_records_and_nothing_live,
            ping_answers,
            racing_code_exchanges_give_one_token_response,
            racing_refreshes_rotate_once_then_the_family_dies,
            revocation_racing_a_refresh_leaves_nothing_usable,
            a_refresh_token_joins_only_a_live_family,
            a_familys_dpop_key_is_kept,
            a_refresh_lookup_carries_its_familys_account,
            a_disabled_accounts_refresh_is_refused_and_rotates_nothing,
            records_insert_once_swap_and_take_once,
            record_kinds_are_separate,
            expired_records_are_gone_and_their_keys_free,
            racing_record_inserts_have_one_winner,
            racing_record_takes_have_one_winner,
            an_owners_records_are_deleted_by_kind,
            sweep_removes_expired_records,
            clients_insert_once_replace_and_delete,
            a_private_key_jwt_client_keeps_its_keys_and_method,
            clients_list_by_cursor_in_id_order,
            accounts_list_by_cursor_and_delete,
            grants_of_an_account_are_its_live_ones,
            a_browser_session_and_a_consent_carry_the_next_authorization,
            ending_an_accounts_sessions_logs_every_browser_out,
            a_login_and_nonce_survive_the_store_into_the_id_tokens,
            racing_device_polls_after_approval_give_one_token_response,
            racing_pending_polls_are_each_counted,
            racing_device_decisions_have_one_winner,
            device_user_codes_are_unique_and_swept_at_expiry);
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, _guard) = $make.await;
                $crate::$check(store).await;
            }
        )*
    };
}

async fn fixture(store: &Arc<dyn Store>) -> Fixture {
    Fixture::new(store.clone(), None).await.expect("fixture")
}

pub(crate) fn grant(id: u8, expires_at: OffsetDateTime) -> Grant {
    Grant {
        id: GrantId::from_random_bytes([id; 16]),
        client_id: ClientId::parse("client").expect("client id"),
        account: Some(AccountId::from_random_bytes([id; 16])),
        scope: Scope::parse("read").expect("scope"),
        created_at: T0,
        expires_at,
        revoked: false,
        resource: None,
        dpop_jkt: None,
        authentication: None,
    }
}

pub(crate) fn refresh(secret: &str, grant: &Grant, generation: u32, expires_at: OffsetDateTime) -> RefreshRecord {
    RefreshRecord {
        hash: TokenHash::of(secret),
        grant: grant.id,
        generation,
        issued_at: T0,
        expires_at,
        rotated: false,
    }
}

fn account(name: &str, id: u8) -> Account {
    Account {
        id: AccountId::from_random_bytes([id; 16]),
        username: name.into(),
        password_hash: Some(SecretHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")),
        disabled: false,
        attributes: BTreeMap::from([("birthdate".into(), "1990-01-01".into())]),
        origin: oauth_core::AccountOrigin::Configuration,
    }
}

/// A session is stored, read back equal, and replaced.
pub async fn session_round_trip(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");
    let now = now(&f);
    assert_eq!(store.session(session.id(), now).await.expect("get"), Some(session.clone()));
    let next = session.authenticate(f.account.id, login(now), now).expect("transition");
    assert!(store.replace_session(&session, &next).await.expect("replace"));
    assert_eq!(store.session(session.id(), now).await.expect("get"), Some(next));
}

/// Replacing with a stale `old` does nothing and says so.
pub async fn replace_session_is_compare_and_swap(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");
    let now = now(&f);
    let a = session.authenticate(f.account.id, login(now), now).expect("transition");
    let b = session.deny(now).expect("transition");
    assert!(store.replace_session(&session, &a).await.expect("first"));
    assert!(!store.replace_session(&session, &b).await.expect("stale"));
    assert_eq!(store.session(session.id(), now).await.expect("get"), Some(a));
}

/// A session past its lifetime is not returned.
pub async fn expired_sessions_are_not_returned(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");
    assert!(store.session(session.id(), session.expires_at() - Duration::SECOND).await.expect("get").is_some());
    assert_eq!(store.session(session.id(), session.expires_at()).await.expect("get"), None);
}

/// Of [`RACERS`] concurrent redemptions of one code, exactly one wins and the
/// rest see a replay of the winner's grant.
pub async fn code_redeems_once(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (_, code) = f.issued_code().await.expect("issued code");
    let hash = TokenHash::of(&code);
    let now = now(&f);
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        let grant = GrantId::from_random_bytes([i as u8; 16]);
        tasks
            .push(tokio::spawn(async move { (grant, store.take_code(&hash, grant, now + Duration::HOUR, now).await) }));
    }
    let mut winners = Vec::new();
    let mut replays = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            (g, Ok(CodeRedemption::Redeemed(s))) => {
                assert!(matches!(s.state(), SessionState::CodeIssued { .. }), "{:?}", s.state());
                winners.push(g);
            }
            (_, Ok(CodeRedemption::Replayed(g))) => replays.push(g),
            (_, other) => panic!("unexpected redemption result {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    assert!(replays.iter().all(|g| *g == winners[0]), "replays name the winner's grant");
}

/// A second redemption names the grant of the first, until the record's
/// retention ends.
pub async fn replayed_code_names_its_grant(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (session, code) = f.issued_code().await.expect("issued code");
    let hash = TokenHash::of(&code);
    let now = now(&f);
    let first = GrantId::from_random_bytes([1; 16]);
    let retain = now + Duration::HOUR;
    let taken = store.take_code(&hash, first, retain, now).await.expect("take");
    assert!(matches!(taken, CodeRedemption::Redeemed(ref s) if s.id() == session.id()), "{taken:?}");
    let again = store.take_code(&hash, GrantId::from_random_bytes([2; 16]), retain, now).await.expect("take");
    assert_eq!(again, CodeRedemption::Replayed(first));
    let stored = store.session(session.id(), now).await.expect("get").expect("kept for replay detection");
    assert!(matches!(stored.state(), SessionState::Exchanged { grant, .. } if *grant == first));
    assert!(stored.is_replayed(), "a second redemption marks the session replayed");
    let late = store.take_code(&hash, first, retain, retain).await.expect("take");
    assert_eq!(late, CodeRedemption::NotFound);
}

/// A code past its lifetime is not redeemed.
pub async fn expired_code_is_not_redeemed(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (session, code) = f.issued_code().await.expect("issued code");
    let at = session.expires_at();
    let hash = TokenHash::of(&code);
    let r = store.take_code(&hash, GrantId::from_random_bytes([1; 16]), at + Duration::HOUR, at).await;
    assert_eq!(r.expect("take"), CodeRedemption::NotFound);
}

/// A code never issued is not found.
pub async fn unknown_code_is_not_found(store: Arc<dyn Store>) {
    let hash = TokenHash::of("nope");
    let r = store.take_code(&hash, GrantId::from_random_bytes([1; 16]), T0 + Duration::HOUR, T0).await;
    assert_eq!(r.expect("take"), CodeRedemption::NotFound);
}

/// Rotation marks the old token, stores the new one; presenting the old one
/// again revokes the family.
pub async fn refresh_rotation_detects_reuse_and_revokes_family(store: Arc<dyn Store>) {
    let g = grant(1, T0 + Duration::days(90));
    let r0 = refresh("r0", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    assert_eq!(store.grant(g.id, T0).await.expect("grant"), Some(g.clone()));
    let found = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("found");
    assert_eq!((found.record, found.grant), (r0.clone(), g.clone()));

    let r1 = refresh("r1", &g, 1, T0 + Duration::days(14));
    assert_eq!(store.rotate_refresh(&r0.hash, &r1, T0).await.expect("rotate"), Rotation::Rotated);
    let old = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("found");
    assert!(old.record.rotated);
    assert!(!store.refresh_token(&r1.hash, T0).await.expect("lookup").expect("found").record.rotated);

    let r2 = refresh("r2", &g, 1, T0 + Duration::days(14));
    assert_eq!(store.rotate_refresh(&r0.hash, &r2, T0).await.expect("reuse"), Rotation::Reused(g.id));
    assert!(store.grant(g.id, T0).await.expect("grant").expect("kept").revoked);
    assert_eq!(store.rotate_refresh(&r1.hash, &r2, T0).await.expect("after revoke"), Rotation::NotFound);
    assert_eq!(store.refresh_token(&r2.hash, T0).await.expect("lookup"), None, "reuse stored nothing");
}

/// A second successor (the reuse grace) joins a live family and works like
/// any of its tokens; a revoked, expired or unknown family takes none.
pub async fn a_refresh_token_joins_only_a_live_family(store: Arc<dyn Store>) {
    let g = grant(40, T0 + Duration::days(90));
    let r0 = refresh("r0", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    let r1 = refresh("r1", &g, 1, T0 + Duration::days(14));
    assert_eq!(store.rotate_refresh(&r0.hash, &r1, T0).await.expect("rotate"), Rotation::Rotated);
    let sibling = refresh("sibling", &g, 1, T0 + Duration::days(14));
    assert!(store.add_refresh_token(&sibling, T0).await.expect("add"));
    let found = store.refresh_token(&sibling.hash, T0).await.expect("lookup").expect("found");
    assert_eq!((found.record, found.grant), (sibling.clone(), g.clone()));
    assert!(store.refresh_token(&r1.hash, T0).await.expect("lookup").is_some(), "the first successor stays");
    let r2 = refresh("r2", &g, 2, T0 + Duration::days(14));
    assert_eq!(store.rotate_refresh(&sibling.hash, &r2, T0).await.expect("rotate"), Rotation::Rotated);

    store.revoke_grant(g.id).await.expect("revoke");
    assert!(!store.add_refresh_token(&refresh("late", &g, 3, T0 + Duration::days(14)), T0).await.expect("add"));
    assert_eq!(store.refresh_token(&TokenHash::of("late"), T0).await.expect("lookup"), None);

    let short = grant(41, T0 + Duration::HOUR);
    store.insert_grant(&short, None).await.expect("insert");
    let after = T0 + Duration::HOUR;
    assert!(!store.add_refresh_token(&refresh("x", &short, 1, after + Duration::DAY), after).await.expect("add"));
    let unknown = grant(42, T0 + Duration::days(90));
    assert!(!store.add_refresh_token(&refresh("y", &unknown, 1, T0 + Duration::DAY), T0).await.expect("add"));
}

/// A family bound to a DPoP key (a public client's) keeps its key.
pub async fn a_familys_dpop_key_is_kept(store: Arc<dyn Store>) {
    let g =
        Grant { dpop_jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()), ..grant(43, T0 + Duration::DAY) };
    let r0 = refresh("bound", &g, 0, T0 + Duration::HOUR);
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    assert_eq!(store.grant(g.id, T0).await.expect("grant"), Some(g.clone()));
    assert_eq!(store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("found").grant, g);
}

/// A refresh token's lookup brings its family's account as stored now:
/// disabled once disabled, gone once deleted, none for a family without one.
pub async fn a_refresh_lookup_carries_its_familys_account(store: Arc<dyn Store>) {
    let mut owner = account("owner", 44);
    store.put_account(&owner).await.expect("put");
    let g = grant(44, T0 + Duration::days(90));
    assert_eq!(g.account, Some(owner.id));
    let r0 = refresh("owned", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    let found = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("found");
    assert_eq!(found.account, Some(owner.clone()));

    owner.disabled = true;
    store.put_account(&owner).await.expect("disable");
    let found = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("found");
    assert_eq!(found.account, Some(owner.clone()), "the lookup reads the account as it is now");

    assert!(store.delete_account(owner.id).await.expect("delete"));
    let found = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("the token outlives its account");
    assert_eq!(found.account, None);

    let ownerless = Grant { account: None, ..grant(45, T0 + Duration::days(90)) };
    let r1 = refresh("ownerless", &ownerless, 0, T0 + Duration::days(14));
    store.insert_grant(&ownerless, Some(&r1)).await.expect("insert");
    assert_eq!(store.refresh_token(&r1.hash, T0).await.expect("lookup").expect("found").account, None);
}

/// A refresh for a disabled account is refused before anything is written:
/// the token is not rotated, so once the account is enabled again the same
/// token refreshes, and is not taken for a reuse.
pub async fn a_disabled_accounts_refresh_is_refused_and_rotates_nothing(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (refresh, client) = first_tokens(&f).await;
    let mut account = f.account.clone();
    account.disabled = true;
    store.put_account(&account).await.expect("disable");
    let refused = f.authority.token(&client, &refresh_request(&refresh), None, None).await;
    assert!(matches!(refused, Err(oauth_core::Error::InvalidGrant(_))), "{refused:?}");
    let now = now(&f);
    let found = store.refresh_token(&TokenHash::of(&refresh), now).await.expect("lookup").expect("found");
    assert!(!found.record.rotated, "the refused refresh rotated nothing");
    assert!(!found.grant.revoked);
    account.disabled = false;
    store.put_account(&account).await.expect("enable");
    let tokens = f.authority.token(&client, &refresh_request(&refresh), None, None).await.expect("refreshes again");
    assert!(tokens.refresh_token.is_some());
}

/// Of [`RACERS`] concurrent rotations of one token exactly one succeeds.
pub async fn concurrent_rotation_has_one_winner(store: Arc<dyn Store>) {
    let g = grant(2, T0 + Duration::days(90));
    let r0 = refresh("r0", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = store.clone();
        let next = refresh(&format!("next{i}"), &g, 1, T0 + Duration::days(14));
        tasks.push(tokio::spawn(async move { store.rotate_refresh(&TokenHash::of("r0"), &next, T0).await }));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.expect("task").expect("rotate") {
            Rotation::Rotated => rotated += 1,
            Rotation::Reused(id) => assert_eq!(id, g.id),
            // Once a reuse has revoked the family, later attempts find nothing.
            Rotation::NotFound => {}
            other => panic!("unexpected rotation result {other:?}"),
        }
    }
    assert_eq!(rotated, 1, "exactly one rotation wins");
    assert!(store.grant(g.id, T0).await.expect("grant").expect("kept").revoked, "the losers' reuse revoked the family");
}

/// A revoked grant refuses rotation and the access tokens that carry it.
pub async fn revoked_grant_refuses_rotation_and_access_tokens(store: Arc<dyn Store>) {
    let g = grant(3, T0 + Duration::days(90));
    let r0 = refresh("r0", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    let jti = AccessTokenId::from_random_bytes([9; 16]);
    assert!(!store.access_token_revoked(jti, Some(g.id), T0).await.expect("check"));
    store.revoke_grant(g.id).await.expect("revoke");
    store.revoke_grant(g.id).await.expect("revoking twice is fine");
    assert!(store.access_token_revoked(jti, Some(g.id), T0).await.expect("check"));
    assert!(!store.access_token_revoked(jti, None, T0).await.expect("check"));
    let next = refresh("r1", &g, 1, T0 + Duration::days(14));
    assert_eq!(store.rotate_refresh(&r0.hash, &next, T0).await.expect("rotate"), Rotation::NotFound);
    let found = store.refresh_token(&r0.hash, T0).await.expect("lookup").expect("revoked is still returned");
    assert!(found.grant.revoked);
}

/// A refresh token stops at its own expiry, or at its family's, whichever is
/// first; neither is returned nor rotated after.
pub async fn refresh_tokens_expire_with_token_or_family(store: Arc<dyn Store>) {
    let g = grant(4, T0 + Duration::days(10));
    let r0 = refresh("r0", &g, 0, T0 + Duration::days(14));
    store.insert_grant(&g, Some(&r0)).await.expect("insert");
    let family_end = g.expires_at;
    assert!(store.refresh_token(&r0.hash, family_end - Duration::SECOND).await.expect("lookup").is_some());
    assert_eq!(store.refresh_token(&r0.hash, family_end).await.expect("lookup"), None);
    assert_eq!(store.grant(g.id, family_end).await.expect("grant"), None);
    let next = refresh("r1", &g, 1, family_end);
    assert_eq!(store.rotate_refresh(&r0.hash, &next, family_end).await.expect("rotate"), Rotation::NotFound);

    let g2 = grant(5, T0 + Duration::days(90));
    let short = refresh("short", &g2, 0, T0 + Duration::HOUR);
    store.insert_grant(&g2, Some(&short)).await.expect("insert");
    assert_eq!(store.refresh_token(&short.hash, T0 + Duration::HOUR).await.expect("lookup"), None);
}

/// A revoked `jti` is refused until its token's expiry, then forgotten.
pub async fn access_token_revocation_lasts_until_expiry(store: Arc<dyn Store>) {
    let jti = AccessTokenId::from_random_bytes([7; 16]);
    let other = AccessTokenId::from_random_bytes([8; 16]);
    let exp = T0 + Duration::minutes(15);
    store.revoke_access_token(jti, exp).await.expect("revoke");
    assert!(store.access_token_revoked(jti, None, T0).await.expect("check"));
    assert!(!store.access_token_revoked(other, None, T0).await.expect("check"));
    assert!(!store.access_token_revoked(jti, None, exp).await.expect("check"));
}

/// Accounts are stored, found by id and username, disabled, and renamed.
pub async fn accounts_insert_lookup_disable_rename(store: Arc<dyn Store>) {
    let mut alice = account("alice", 1);
    store.put_account(&alice).await.expect("put");
    store.put_account(&account("bob", 2)).await.expect("put");
    assert_eq!(store.account(alice.id).await.expect("get"), Some(alice.clone()));
    assert_eq!(store.account_by_username("alice").await.expect("get"), Some(alice.clone()));
    assert_eq!(store.account_by_username("Alice").await.expect("get"), None, "usernames are case-sensitive");
    alice.disabled = true;
    store.put_account(&alice).await.expect("disable");
    assert!(store.account(alice.id).await.expect("get").expect("kept").disabled);
    alice.username = "alice2".into();
    store.put_account(&alice).await.expect("rename");
    assert_eq!(store.account_by_username("alice").await.expect("get"), None);
    assert_eq!(store.account_by_username("alice2").await.expect("get"), Some(alice.clone()));
    let names: Vec<String> = store.accounts().await.expect("all").into_iter().map(|a| a.username).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"alice2".to_owned()) && names.contains(&"bob".to_owned()));
}

/// Two accounts cannot share a username.
pub async fn usernames_are_unique(store: Arc<dyn Store>) {
    store.put_account(&account("carol", 1)).await.expect("put");
    let err = store.put_account(&account("carol", 2)).await.expect_err("duplicate");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.account(AccountId::from_random_bytes([2; 16])).await.expect("get"), None);
}

/// Signing keys are stored, replaced by `kid`, and listed.
pub async fn signing_keys_round_trip(store: Arc<dyn Store>) {
    let mut key = SigningKeyRecord {
        kid: "k1".into(),
        algorithm: "ES256".into(),
        secret: vec![1, 2, 3],
        public: vec![4, 5],
        created_at: T0,
        retired_at: None,
    };
    store.put_signing_key(&key).await.expect("put");
    key.retired_at = Some(T0 + Duration::DAY);
    store.put_signing_key(&key).await.expect("replace");
    let k2 = SigningKeyRecord { kid: "k2".into(), ..key.clone() };
    store.put_signing_key(&k2).await.expect("put");
    let mut keys = store.signing_keys().await.expect("list");
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    assert_eq!(keys, vec![key, k2]);
}

/// A failure is added at its time and the add answers the key's failures in
/// the window, oldest first; failures before `since` are forgotten; keys are
/// independent.
pub async fn throttle_records_failures_within_the_window(store: Arc<dyn Store>) {
    let key = ThrottleKey::for_test("alice");
    let other = ThrottleKey::for_test("bob");
    let window = Duration::minutes(15);
    let at = |s: i64| T0 + Duration::seconds(s);
    assert!(store.failures(&key, T0 - window).await.expect("read").is_empty());
    for s in 0..3 {
        let answer = store.record_failure(&[key], at(s), at(s) - window).await.expect("record");
        assert_eq!(answer, vec![(0..=s).map(at).collect::<Vec<_>>()], "the add answers every failure so far");
    }
    assert_eq!(store.failures(&key, T0 - window).await.expect("read"), [at(0), at(1), at(2)]);
    assert_eq!(store.failures(&key, at(1)).await.expect("read"), [at(1), at(2)], "a later window start");
    assert!(store.failures(&other, T0 - window).await.expect("read").is_empty(), "keys are independent");
    let later = at(1) + window;
    let answer = store.record_failure(&[key], later, later - window).await.expect("record");
    assert_eq!(answer, vec![vec![at(1), at(2), later]], "the first failure left the window");
}

/// Of [`RACERS`] times two concurrent adds on one key (and each on a key of
/// its own), every add sees all the adds before it: their counts are 1 to N,
/// each once. This is what lets a node learn its own failure from the add's
/// answer.
pub async fn throttle_record_failure_is_atomic_under_a_burst(store: Arc<dyn Store>) {
    let key = ThrottleKey::for_test("burst");
    let n = RACERS * 2;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            let own = ThrottleKey::for_test(&format!("own-{i}"));
            let at = T0 + Duration::milliseconds(i as i64);
            tokio::spawn(async move { store.record_failure(&[own, key], at, T0 - Duration::HOUR).await })
        })
        .collect();
    let mut counts = Vec::new();
    for t in tasks {
        let answer = t.await.expect("task").expect("record");
        assert_eq!(answer.len(), 2, "one answer per key, in order");
        assert_eq!(answer[0].len(), 1, "the key of its own");
        counts.push(answer[1].len());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=n).collect::<Vec<_>>(), "each count exactly once");
    assert_eq!(store.failures(&key, T0 - Duration::HOUR).await.expect("read").len(), n);
}

/// Forgetting takes one failure at the given time back, one of several equal
/// ones, and nothing when there is none.
pub async fn throttle_forgets_one_failure_at_a_time(store: Arc<dyn Store>) {
    let key = ThrottleKey::for_test("pending");
    let since = T0 - Duration::HOUR;
    let later = T0 + Duration::SECOND;
    store.record_failure(&[key], T0, since).await.expect("record");
    store.record_failure(&[key], T0, since).await.expect("record");
    store.record_failure(&[key], later, since).await.expect("record");
    store.forget_failure(&[key], T0 + Duration::MINUTE).await.expect("forget");
    assert_eq!(store.failures(&key, since).await.expect("read").len(), 3, "nothing at that time");
    store.forget_failure(&[key], T0).await.expect("forget");
    assert_eq!(store.failures(&key, since).await.expect("read"), [T0, later], "one of the two");
    store.forget_failure(&[key, ThrottleKey::for_test("nobody")], T0).await.expect("forget");
    assert_eq!(store.failures(&key, since).await.expect("read"), [later]);
    store.forget_failure(&[key], T0).await.expect("forget again");
    assert_eq!(store.failures(&key, since).await.expect("read"), [later]);
}

/// One add counts against every key it names, each with its own failures.
pub async fn throttle_records_against_every_key(store: Arc<dyn Store>) {
    let (a, b) = (ThrottleKey::for_test("a"), ThrottleKey::for_test("b"));
    let since = T0 - Duration::HOUR;
    let later = T0 + Duration::SECOND;
    store.record_failure(&[a], T0, since).await.expect("record");
    let answer = store.record_failure(&[b, a], later, since).await.expect("record");
    assert_eq!(answer, vec![vec![later], vec![T0, later]], "answers follow the order of the keys");
    assert_eq!(store.failures(&a, since).await.expect("read"), [T0, later]);
    assert_eq!(store.failures(&b, since).await.expect("read"), [later]);
}

/// The pending count (`max_pending_per_ip`) keeps in a key's list the
/// instant each entry expires: times in the future, added in any order, so an
/// add may come before entries already there. The add-and-read keeps the list
/// in order, forgets the entries at or before `since` (now), and forgetting
/// takes one entry of several equal ones; a sweep keeps a counter whose
/// entries lie ahead.
pub async fn throttle_keeps_expiry_entries_in_order_and_forgets_passed_ones(store: Arc<dyn Store>) {
    let key = ThrottleKey::for_test("pending-until");
    let s = Duration::SECOND;
    let after = |now: OffsetDateTime| now + Duration::NANOSECOND;
    let answer = store.record_failure(&[key], T0 + 600 * s, after(T0)).await.expect("record");
    assert_eq!(answer, vec![vec![T0 + 600 * s]]);
    let answer = store.record_failure(&[key], T0 + 60 * s, after(T0)).await.expect("record");
    assert_eq!(answer, vec![vec![T0 + 60 * s, T0 + 600 * s]], "an earlier expiry goes first");
    let answer = store.record_failure(&[key], T0 + 60 * s, after(T0 + s)).await.expect("record");
    assert_eq!(answer, vec![vec![T0 + 60 * s, T0 + 60 * s, T0 + 600 * s]], "equal expiries are kept apart");
    store.forget_failure(&[key], T0 + 60 * s).await.expect("forget");
    assert_eq!(store.failures(&key, after(T0)).await.expect("read"), [T0 + 60 * s, T0 + 600 * s], "one of the two");
    // At 60 s the entry expiring then no longer counts.
    let answer = store.record_failure(&[key], T0 + 300 * s, after(T0 + 60 * s)).await.expect("record");
    assert_eq!(answer, vec![vec![T0 + 300 * s, T0 + 600 * s]], "the passed entry is forgotten");
    assert_eq!(store.failures(&key, after(T0 + 300 * s)).await.expect("read"), [T0 + 600 * s]);
    let now = T0 + 400 * s;
    store.sweep(now, now - Duration::minutes(15)).await.expect("sweep");
    assert_eq!(store.failures(&key, after(now)).await.expect("read"), [T0 + 600 * s], "a sweep keeps live entries");
}

/// Of [`RACERS`] concurrent authorization requests from one address, whose
/// `max_pending_per_ip` is 5, exactly 5 open a session: the pending count is
/// atomic in the store, and a refused request takes its entry back.
pub async fn racing_pending_additions_admit_exactly_the_cap(store: Arc<dyn Store>) {
    let f = Arc::new(
        Fixture::with_settings(store.clone(), None, |s| s.throttle.max_pending_per_ip = 5).await.expect("fixture"),
    );
    let peer = Some(std::net::IpAddr::from([198, 51, 100, 7]));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.authority.authorize(&Fixture::public_request(), None, peer).await.ok() })
        })
        .collect();
    let mut opened = Vec::new();
    for racer in racers {
        opened.extend(racer.await.expect("racer").map(|(session, _)| session));
    }
    assert_eq!(opened.len(), 5, "exactly the cap of sessions opened");
    let request = Fixture::public_request();
    let open = || f.authority.authorize(&request, None, peer);
    assert!(open().await.is_err(), "the five count");
    // A login frees exactly one place: the refused racers left no entry.
    f.authority.login(opened[0].id(), USERNAME, PASSWORD, peer).await.expect("login");
    assert!(open().await.is_ok(), "the place the login freed");
    assert!(open().await.is_err(), "and only that one");
}

/// Sweeping removes expired sessions, grants, refresh tokens, revocations and
/// idle throttle counters, and leaves every live record readable.
pub async fn sweep_removes_dead_records_and_nothing_live(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (old_session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");
    let now = old_session.expires_at();
    let dead_grant = grant(1, now - Duration::SECOND);
    let live_grant = grant(2, now + Duration::days(1));
    let dead_refresh = refresh("dead", &live_grant, 0, now - Duration::SECOND);
    let live_refresh = refresh("live", &live_grant, 1, now + Duration::HOUR);
    store
        .insert_grant(&dead_grant, Some(&refresh("in-dead-family", &dead_grant, 0, now + Duration::HOUR)))
        .await
        .expect("insert");
    store.insert_grant(&live_grant, Some(&dead_refresh)).await.expect("insert");
    store.insert_grant(&live_grant, Some(&live_refresh)).await.expect("insert");
    let dead_jti = AccessTokenId::from_random_bytes([1; 16]);
    let live_jti = AccessTokenId::from_random_bytes([2; 16]);
    store.revoke_access_token(dead_jti, now - Duration::SECOND).await.expect("revoke");
    store.revoke_access_token(live_jti, now + Duration::HOUR).await.expect("revoke");
    let idle = ThrottleKey::for_test("idle");
    let busy = ThrottleKey::for_test("busy");
    store.record_failure(&[idle], now - Duration::HOUR, now - Duration::days(1)).await.expect("record");
    store.record_failure(&[busy], now, now - Duration::days(1)).await.expect("record");

    // A live session opened later, so it outlives `now`.
    f.clock.advance(Duration::seconds(300));
    let (live_session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");

    let swept = store.sweep(now, now - Duration::minutes(15)).await.expect("sweep");
    assert_eq!(swept.sessions, 1, "{swept:?}");
    assert_eq!(swept.grants, 1, "{swept:?}");
    assert!(swept.refresh_tokens >= 1, "{swept:?}");
    assert_eq!(swept.revoked_tokens, 1, "{swept:?}");
    assert_eq!(swept.throttle_keys, 1, "{swept:?}");

    assert_eq!(store.session(old_session.id(), now - Duration::SECOND).await.expect("get"), None);
    assert!(store.session(live_session.id(), now).await.expect("get").is_some());
    assert_eq!(store.grant(dead_grant.id, T0).await.expect("get"), None);
    assert!(store.grant(live_grant.id, now).await.expect("get").is_some());
    assert_eq!(store.refresh_token(&dead_refresh.hash, T0).await.expect("get"), None);
    assert_eq!(store.refresh_token(&TokenHash::of("in-dead-family"), T0).await.expect("get"), None);
    assert!(store.refresh_token(&live_refresh.hash, now).await.expect("get").is_some());
    assert!(store.access_token_revoked(live_jti, None, now).await.expect("check"));
    let since = now - Duration::days(2);
    assert!(store.failures(&idle, since).await.expect("read").is_empty(), "the idle counter was forgotten");
    assert_eq!(store.failures(&busy, since).await.expect("read"), [now], "the busy counter was kept");
    assert!(store.account_by_username("alice").await.expect("get").is_some(), "accounts are never swept");
}

/// A healthy store answers a ping.
pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

/// Of [`FLOW_RACERS`] concurrent exchanges of one code through the flows, at
/// most one gets tokens; the others count as replays, so whatever the winner
/// got ends up revoked too (RFC 6749 4.1.2), however the calls interleave.
pub async fn racing_code_exchanges_give_one_token_response(store: Arc<dyn Store>) {
    let f = Arc::new(fixture(&store).await);
    let (_, code) = f.issued_code().await.expect("issued code");
    let client = f.authority.authenticate_client(&Fixture::public_client(), None).await.expect("client");
    let mut tasks = Vec::new();
    for _ in 0..FLOW_RACERS {
        let (f, code, client) = (f.clone(), code.clone(), client.clone());
        tasks.push(tokio::spawn(
            async move { f.authority.token(&client, &Fixture::code_request(&code), None, None).await },
        ));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(tokens) => won.push(tokens),
            Err(e) => assert!(matches!(e, oauth_core::Error::InvalidGrant(_)), "{e:?}"),
        }
    }
    // The winner may itself learn of a replay before answering, and refuse.
    assert!(won.len() <= 1, "at most one token response");
    for tokens in &won {
        let revoked = f.authority.authenticate_bearer(&tokens.access_token).await;
        assert!(matches!(revoked, Err(oauth_core::Error::InvalidToken(_))), "the replays revoked the winner's tokens");
    }
}

/// Of [`FLOW_RACERS`] concurrent refreshes of one token, at most one rotates;
/// the rest are reuse, so the whole family, the winner's new token included,
/// ends up revoked.
pub async fn racing_refreshes_rotate_once_then_the_family_dies(store: Arc<dyn Store>) {
    let f = Arc::new(fixture(&store).await);
    let (refresh, client) = first_tokens(&f).await;
    let mut tasks = Vec::new();
    for _ in 0..FLOW_RACERS {
        let (f, refresh, client) = (f.clone(), refresh.clone(), client.clone());
        tasks.push(tokio::spawn(
            async move { f.authority.token(&client, &refresh_request(&refresh), None, None).await },
        ));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(tokens) => won.push(tokens),
            Err(e) => assert!(matches!(e, oauth_core::Error::InvalidGrant(_)), "{e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one rotation");
    let next = won[0].refresh_token.clone().expect("a new refresh token");
    let again = f.authority.token(&client, &refresh_request(&next), None, None).await;
    assert!(matches!(again, Err(oauth_core::Error::InvalidGrant(_))), "the family is revoked");
}

/// A revocation racing a refresh of the same token: whichever wins, nothing
/// of the family stays usable afterwards.
pub async fn revocation_racing_a_refresh_leaves_nothing_usable(store: Arc<dyn Store>) {
    let f = Arc::new(fixture(&store).await);
    for _ in 0..8 {
        let (refresh, client) = first_tokens(&f).await;
        let refreshing = {
            let (f, refresh, client) = (f.clone(), refresh.clone(), client.clone());
            tokio::spawn(async move { f.authority.token(&client, &refresh_request(&refresh), None, None).await })
        };
        let revoking = {
            let (f, refresh, client) = (f.clone(), refresh.clone(), client.clone());
            tokio::spawn(async move { f.authority.revoke(&client, Some(&refresh)).await })
        };
        revoking.await.expect("task").expect("revocation answers 200");
        if let Ok(tokens) = refreshing.await.expect("task") {
            let next = tokens.refresh_token.expect("a new refresh token");
            let again = f.authority.token(&client, &refresh_request(&next), None, None).await;
            assert!(
                matches!(again, Err(oauth_core::Error::InvalidGrant(_))),
                "a token rotated during revocation died with its family"
            );
            let bearer = f.authority.authenticate_bearer(&tokens.access_token).await;
            assert!(matches!(bearer, Err(oauth_core::Error::InvalidToken(_))), "and its access token with it");
        }
        let after = f.authority.token(&client, &refresh_request(&refresh), None, None).await;
        assert!(after.is_err());
    }
}

/// Runs the public client's code flow to tokens; returns the refresh token.
async fn first_tokens(f: &Fixture) -> (String, oauth_core::AuthenticatedClient) {
    let (_, code) = f.issued_code().await.expect("issued code");
    let client = f.authority.authenticate_client(&Fixture::public_client(), None).await.expect("client");
    let tokens = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.expect("tokens");
    (tokens.refresh_token.expect("a refresh token"), client)
}

fn refresh_request(token: &str) -> oauth_core::TokenRequest<'_> {
    oauth_core::TokenRequest { grant_type: Some("refresh_token"), refresh_token: Some(token), ..Default::default() }
}

/// A login at `now`, without a browser session.
fn login(now: OffsetDateTime) -> oauth_core::Authentication {
    oauth_core::Authentication { auth_time: now, sid: None }
}

fn now(f: &Fixture) -> OffsetDateTime {
    oauth_core::Clock::now(&*f.clock)
}
