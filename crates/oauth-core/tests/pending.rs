//! The one count of what unauthenticated requests leave pending per peer
//! address (`max_pending_per_ip`), with a manual clock and the memory store:
//! sessions, a public client's device requests and pushed requests count
//! together, each for its own lifetime. One test per rule; names state the
//! rule. The same rules over real HTTP are in `oauth-http/tests/device.rs`
//! and `oauth-http/tests/attacks.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::Duration;

const SESSION_TTL: i64 = 600;
const DEVICE_TTL: i64 = 60;

/// A fixture whose addresses may each have `cap` things pending, sessions
/// living 600 s and device codes 60 s.
async fn capped(cap: u32) -> Fixture {
    Fixture::with_settings(Arc::new(MemStore::new()), None, |s| {
        s.throttle.max_pending_per_ip = cap;
        s.session_ttl = Duration::seconds(SESSION_TTL);
        s.device_code_ttl = Duration::seconds(DEVICE_TTL);
    })
    .await
    .unwrap()
}

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

async fn open_session(f: &Fixture, peer: Option<IpAddr>) -> Result<AuthorizationSession, AuthorizeRejection> {
    f.authority.authorize(&Fixture::public_request(), None, peer).await.map(|(s, _)| s)
}

async fn device_request(f: &Fixture, peer: Option<IpAddr>) -> Result<DeviceAuthorization> {
    let client = f.authority.authenticate_client(&Fixture::device_client(), peer).await.unwrap();
    let req = DeviceAuthorizationRequest { scope: Some("read"), ..DeviceAuthorizationRequest::default() };
    f.authority.device_authorization(&client, &req, peer).await
}

fn too_many(result: &Result<impl std::fmt::Debug, AuthorizeRejection>) -> Option<u64> {
    match result {
        Err(AuthorizeRejection::Page(Error::TooManyPending { retry_after })) => Some(*retry_after),
        _ => None,
    }
}

#[tokio::test]
async fn sessions_and_device_requests_of_one_address_share_max_pending_per_ip() {
    let f = capped(2).await;
    device_request(&f, ip(7)).await.unwrap();
    open_session(&f, ip(7)).await.unwrap();
    let session = open_session(&f, ip(7)).await;
    assert!(too_many(&session).is_some(), "a session past the shared cap: {session:?}");
    let device = device_request(&f, ip(7)).await;
    assert!(matches!(device, Err(Error::TooManyPending { .. })), "a device request past the shared cap: {device:?}");
    assert!(open_session(&f, ip(8)).await.is_ok(), "another address has its own count");
}

/// The fault of one count per kind with one window each (issue 17's open
/// item): a device session counted for `session_ttl` while its device code,
/// and so the session, expired much sooner.
#[tokio::test]
async fn a_device_session_stops_counting_when_its_device_code_expires() {
    let f = capped(1).await;
    // The device asks from its own address; the user's browser is elsewhere.
    let started = device_request(&f, ip(20)).await.unwrap();
    let (session, _) = f
        .authority
        .open_device_session(&started.user_code.to_string(), TokenHash::of("b"), ip(21), false, None)
        .await
        .unwrap();
    assert_eq!(session.expires_at() - f.clock.now(), Duration::seconds(DEVICE_TTL), "the session ends with the code");
    f.clock.advance(Duration::seconds(DEVICE_TTL / 2));
    let refused = open_session(&f, ip(21)).await;
    assert_eq!(too_many(&refused), Some(u64::try_from(DEVICE_TTL / 2).unwrap()), "free when the session ends");
    f.clock.advance(Duration::seconds(DEVICE_TTL / 2));
    assert!(open_session(&f, ip(21)).await.is_ok(), "the expired device session no longer counts");
    assert!(device_request(&f, ip(20)).await.is_ok(), "nor does the expired device request");
}

#[tokio::test]
async fn retry_after_past_the_pending_cap_is_when_the_earliest_entry_expires() {
    let f = capped(2).await;
    open_session(&f, ip(9)).await.unwrap();
    f.clock.advance(Duration::seconds(10));
    // Opened later, but it expires first: a device request lives 60 s.
    device_request(&f, ip(9)).await.unwrap();
    let refused = open_session(&f, ip(9)).await;
    assert_eq!(too_many(&refused), Some(u64::try_from(DEVICE_TTL).unwrap()), "the device request leaves first");
    f.clock.advance(Duration::seconds(DEVICE_TTL));
    open_session(&f, ip(9)).await.unwrap();
    let refused = open_session(&f, ip(9)).await;
    assert_eq!(
        too_many(&refused),
        Some(u64::try_from(SESSION_TTL - DEVICE_TTL - 10).unwrap()),
        "then the first session"
    );
}

#[tokio::test]
async fn a_refused_addition_takes_its_entry_back() {
    let f = capped(1).await;
    open_session(&f, ip(10)).await.unwrap();
    for _ in 0..5 {
        assert!(too_many(&open_session(&f, ip(10)).await).is_some());
    }
    f.clock.advance(Duration::seconds(SESSION_TTL));
    open_session(&f, ip(10)).await.unwrap();
    assert!(too_many(&open_session(&f, ip(10)).await).is_some(), "the refused ones left nothing behind");
}

async fn push(f: &Fixture, credentials: &ClientCredentials<'_>, peer: Option<IpAddr>) -> Result<PushedAuthorization> {
    let client = f.authority.authenticate_client(credentials, peer).await.unwrap();
    let request = AuthorizeRequest { client_id: None, ..Fixture::public_request() };
    f.authority.push_authorization_request(&client, &request, None, peer).await
}

#[tokio::test]
async fn a_public_clients_pushed_requests_count_as_pending_for_its_address() {
    let f = capped(2).await;
    push(&f, &Fixture::public_client(), ip(30)).await.unwrap();
    open_session(&f, ip(30)).await.unwrap();
    let refused = push(&f, &Fixture::public_client(), ip(30)).await;
    let Err(Error::TooManyPending { retry_after }) = refused else { panic!("past the shared cap: {refused:?}") };
    assert_eq!(retry_after, 60, "when the push, the earliest entry, expires");
    assert!(push(&f, &Fixture::public_client(), ip(31)).await.is_ok(), "another address");
}

#[tokio::test]
async fn a_pushed_request_that_expires_frees_its_place() {
    let f = capped(1).await;
    push(&f, &Fixture::public_client(), ip(32)).await.unwrap();
    assert!(matches!(push(&f, &Fixture::public_client(), ip(32)).await, Err(Error::TooManyPending { .. })));
    f.clock.advance(PUSHED_REQUEST_TTL - Duration::SECOND);
    assert!(push(&f, &Fixture::public_client(), ip(32)).await.is_err(), "still live");
    f.clock.advance(Duration::SECOND);
    assert!(push(&f, &Fixture::public_client(), ip(32)).await.is_ok(), "expired, its place is free");
}

#[tokio::test]
async fn using_a_request_uri_frees_its_place_and_a_confidential_clients_pushes_do_not_count() {
    let f = capped(1).await;
    let pushed = push(&f, &Fixture::public_client(), ip(33)).await.unwrap();
    let confidential = push(&f, &Fixture::confidential_client(), ip(33)).await;
    assert!(confidential.is_ok(), "an authenticated client's push: {confidential:?}");
    assert!(push(&f, &Fixture::public_client(), ip(33)).await.is_err(), "the cap of one is full");
    // The browser, elsewhere, uses the request_uri.
    let by_uri = AuthorizeRequest {
        client_id: Some(PUBLIC_CLIENT),
        request_uri: Some(&pushed.request_uri),
        ..AuthorizeRequest::default()
    };
    f.authority.authorize(&by_uri, None, ip(34)).await.unwrap();
    assert!(push(&f, &Fixture::public_client(), ip(33)).await.is_ok(), "the used push freed its place");
}
