//! The flows report security events to `Services::events` (the core does not
//! log): a replayed code, a reused refresh token and a throttle lockout each
//! report one event with what the operator needs, and an ordinary flow reports
//! none.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemStore::new()), None).await.unwrap()
}

async fn public(f: &Fixture) -> AuthenticatedClient {
    f.authority.authenticate_client(&Fixture::public_client(), None).await.unwrap()
}

fn client_id(s: &str) -> ClientId {
    ClientId::parse(s).unwrap()
}

#[tokio::test]
async fn an_ordinary_code_flow_with_a_refresh_reports_nothing() {
    let f = fixture().await;
    let (_, code) = f.issued_code().await.unwrap();
    let tokens = f.authority.token(&public(&f).await, &Fixture::code_request(&code), None, None).await.unwrap();
    let refresh = TokenRequest {
        grant_type: Some("refresh_token"),
        refresh_token: tokens.refresh_token.as_deref(),
        ..TokenRequest::default()
    };
    f.authority.token(&public(&f).await, &refresh, None, None).await.unwrap();
    assert_eq!(f.events.take(), vec![]);
}

#[tokio::test]
async fn a_replayed_code_reports_a_code_replay_naming_client_and_grant() {
    let f = fixture().await;
    let (_, code) = f.issued_code().await.unwrap();
    let client = public(&f).await;
    let tokens = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.unwrap();
    let grant = f.authority.services().tokens.verify(&tokens.access_token, f.clock.now()).await.unwrap().grant.unwrap();
    assert_eq!(f.events.take(), vec![]);

    let replay = f.authority.token(&client, &Fixture::code_request(&code), None, None).await;
    assert!(matches!(replay, Err(Error::InvalidGrant(_))), "{replay:?}");
    let events = f.events.take();
    assert_eq!(events, vec![SecurityEvent::CodeReplayed { client_id: client_id(PUBLIC_CLIENT), grant }]);
    assert_eq!(events[0].kind().as_str(), "code_replay");
}

#[tokio::test]
async fn a_reused_refresh_token_reports_a_refresh_token_reuse_naming_client_and_grant() {
    let f = fixture().await;
    let (_, code) = f.issued_code().await.unwrap();
    let client = public(&f).await;
    let tokens = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.unwrap();
    let grant = f.authority.services().tokens.verify(&tokens.access_token, f.clock.now()).await.unwrap().grant.unwrap();
    let refresh = TokenRequest {
        grant_type: Some("refresh_token"),
        refresh_token: tokens.refresh_token.as_deref(),
        ..TokenRequest::default()
    };
    f.authority.token(&client, &refresh, None, None).await.unwrap();
    let reuse = f.authority.token(&client, &refresh, None, None).await;
    assert!(matches!(reuse, Err(Error::InvalidGrant(_))), "{reuse:?}");
    let events = f.events.take();
    assert_eq!(events, vec![SecurityEvent::RefreshTokenReused { client_id: client_id(PUBLIC_CLIENT), grant }]);
    assert_eq!(events[0].kind().as_str(), "refresh_token_reuse");
}

#[tokio::test]
async fn a_throttled_attempt_reports_a_lockout_with_its_subject_and_peer() {
    let f = fixture().await;
    let peer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let client = f.authority.authenticate_client(&Fixture::confidential_client(), Some(peer)).await.unwrap();
    let guess = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some("wrong"),
        ..TokenRequest::default()
    };
    let limit = f.authority.settings().throttle.max_failures_per_account;
    for _ in 0..limit {
        let r = f.authority.token(&client, &guess, None, Some(peer)).await;
        assert!(matches!(r, Err(Error::InvalidGrant(_))), "{r:?}");
    }
    assert_eq!(f.events.take(), vec![], "failures below the limit are not events");
    let refused = f.authority.token(&client, &guess, None, Some(peer)).await;
    assert!(matches!(refused, Err(Error::Throttled { .. })), "{refused:?}");
    let events = f.events.take();
    assert_eq!(events, vec![SecurityEvent::ThrottleLockout { subject: ThrottleSubject::Account, peer: Some(peer) }]);
    assert_eq!(events[0].kind().as_str(), "throttle_lockout");
}

#[test]
fn every_kind_has_its_own_label() {
    let labels: std::collections::BTreeSet<&str> = SecurityEventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(labels.len(), SecurityEventKind::ALL.len());
}
