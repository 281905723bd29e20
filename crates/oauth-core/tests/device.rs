//! The device authorization grant (RFC 8628) through the flows, with a manual
//! clock and the memory store: the device's request, the user's session,
//! the polls. One test per rule; names state the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::sync::Arc;

use oauth_core::device::DEVICE_CODE;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::Duration;

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemStore::new()), None).await.unwrap()
}

async fn device_client(f: &Fixture) -> AuthenticatedClient {
    f.authority.authenticate_client(&Fixture::device_client(), None).await.unwrap()
}

async fn start(f: &Fixture, scope: &str) -> DeviceAuthorization {
    let req = DeviceAuthorizationRequest { scope: Some(scope), ..DeviceAuthorizationRequest::default() };
    f.authority.device_authorization(&device_client(f).await, &req, None).await.unwrap()
}

async fn poll(f: &Fixture, device_code: &str) -> Result<TokenResponse> {
    let req = TokenRequest {
        grant_type: Some("urn:ietf:params:oauth:grant-type:device_code"),
        device_code: Some(device_code),
        ..TokenRequest::default()
    };
    f.authority.token(&device_client(f).await, &req, None, None).await
}

/// Types the user code, logs in, and answers the consent page's session.
/// Types `typed` on the device page in browser `b` from `peer`.
async fn type_code(f: &Fixture, typed: &str, peer: Option<std::net::IpAddr>) -> Result<AuthorizationSession> {
    Ok(f.authority.open_device_session(typed, TokenHash::of("b"), peer, false, None).await?.0)
}

async fn to_consent(f: &Fixture, typed: &str) -> AuthorizationSession {
    let (session, _) =
        f.authority.open_device_session(typed, TokenHash::of("browser"), None, false, None).await.unwrap();
    assert!(matches!(f.authority.proceed(session.id(), None).await.unwrap(), Step::Login(_)));
    match f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap() {
        LoginOutcome::Consent(s) => *s,
        other => panic!("the consent page, not {other:?}"),
    }
}

#[tokio::test]
async fn a_device_gets_tokens_once_after_the_user_approves_on_the_consent_page() {
    let f = fixture().await;
    let started = start(&f, "openid read").await;
    assert_eq!(started.verification_uri, "https://as.example/device");
    assert_eq!(started.verification_uri_complete, format!("https://as.example/device?user_code={}", started.user_code));
    assert_eq!((started.expires_in, started.interval), (600, 5));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::AuthorizationPending));
    let consent = to_consent(&f, &started.user_code.to_string().to_lowercase()).await;
    assert_eq!(consent.device_user_code(), Some(&started.user_code), "the consent page can show the code");
    f.clock.advance(Duration::seconds(5));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::AuthorizationPending));
    let location = f.authority.decide(consent.id(), true).await.unwrap();
    assert_eq!(location, "https://as.example/device/done?result=approved");
    f.clock.advance(Duration::seconds(5));
    let tokens = poll(&f, &started.device_code).await.unwrap();
    assert!(tokens.refresh_token.is_some(), "the client may refresh");
    let id_token = id_token_claims(tokens.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(id_token["aud"], DEVICE_CLIENT);
    f.clock.advance(Duration::seconds(5));
    assert!(matches!(poll(&f, &started.device_code).await, Err(Error::InvalidGrant(_))), "redeemed once");
}

#[tokio::test]
async fn a_device_code_is_stored_only_as_its_hash() {
    let store = Arc::new(MemStore::new());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let started = start(&f, "read").await;
    let now = f.clock.now();
    let record = store.record(DEVICE_CODE, &TokenHash::of(&started.device_code), now).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&record.value).contains(&started.device_code));
}

#[tokio::test]
async fn a_poll_sooner_than_the_interval_is_slow_down_and_adds_five_seconds() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::AuthorizationPending), "the first is never too soon");
    f.clock.advance(Duration::seconds(4));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::SlowDown));
    f.clock.advance(Duration::seconds(5));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::SlowDown), "the interval is 10 s now");
    f.clock.advance(Duration::seconds(15));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::AuthorizationPending), "15 s kept");
}

#[tokio::test]
async fn a_denied_device_request_gets_access_denied_and_never_tokens() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let consent = to_consent(&f, &started.user_code.to_string()).await;
    let location = f.authority.decide(consent.id(), false).await.unwrap();
    assert_eq!(location, "https://as.example/device/done?result=denied");
    assert!(matches!(poll(&f, &started.device_code).await, Err(Error::AccessDenied(_))));
    let again = type_code(&f, &started.user_code.to_string(), None).await;
    assert!(matches!(again, Err(Error::InvalidGrant(_))), "a decided code opens nothing");
}

#[tokio::test]
async fn a_device_request_is_approved_once_whatever_the_browsers() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let first = to_consent(&f, &started.user_code.to_string()).await;
    let second = to_consent(&f, &started.user_code.to_string()).await;
    f.authority.decide(first.id(), false).await.unwrap();
    let late = f.authority.decide(second.id(), true).await;
    assert!(matches!(late, Err(Error::IllegalTransition { .. })), "no approval after a deny: {late:?}");
    assert!(matches!(poll(&f, &started.device_code).await, Err(Error::AccessDenied(_))));
}

#[tokio::test]
async fn a_device_request_shows_the_consent_page_even_when_consent_is_skipped_or_remembered() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let (session, _) = f
        .authority
        .open_device_session(&started.user_code.to_string(), TokenHash::of("b"), None, false, None)
        .await
        .unwrap();
    let signed = f.authority.sign_in(session.id(), USERNAME, PASSWORD, None, None).await.unwrap();
    let LoginOutcome::Consent(consent) = signed.outcome else { panic!("a skip_consent client still asks") };
    f.authority.decide(consent.id(), true).await.unwrap();
    let next = start(&f, "read").await;
    let (session, _) = f
        .authority
        .open_device_session(&next.user_code.to_string(), TokenHash::of("b"), None, false, None)
        .await
        .unwrap();
    let step = f.authority.proceed(session.id(), Some(&signed.cookie)).await.unwrap();
    assert!(matches!(step, Step::Consent(_)), "a session and a remembered consent still ask: {step:?}");
}

#[tokio::test]
async fn an_expired_device_code_gets_expired_token_and_its_user_code_opens_nothing() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let consent = to_consent(&f, &started.user_code.to_string()).await;
    f.clock.advance(Duration::seconds(600));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::ExpiredToken));
    let late = f.authority.decide(consent.id(), true).await;
    assert!(late.is_err(), "no approval after expiry: {late:?}");
    let again = type_code(&f, &started.user_code.to_string(), None).await;
    assert!(matches!(again, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn an_approval_just_before_expiry_is_redeemable_only_until_expiry() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let consent = to_consent(&f, &started.user_code.to_string()).await;
    f.clock.advance(Duration::seconds(599));
    f.authority.decide(consent.id(), true).await.unwrap();
    f.clock.advance(Duration::seconds(1));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::ExpiredToken), "approved, but polled too late");
}

#[tokio::test]
async fn a_device_code_presented_by_another_client_is_invalid_grant_and_spends_nothing() {
    let f = fixture().await;
    let started = start(&f, "read").await;
    let other = f.authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap();
    let req = TokenRequest {
        grant_type: Some("urn:ietf:params:oauth:grant-type:device_code"),
        device_code: Some(&started.device_code),
        ..TokenRequest::default()
    };
    assert!(matches!(f.authority.token(&other, &req, None, None).await, Err(Error::InvalidGrant(_))));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::AuthorizationPending), "not counted as a poll");
}

#[tokio::test]
async fn a_client_without_the_device_grant_is_unauthorized_client() {
    let f = fixture().await;
    let public = f.authority.authenticate_client(&Fixture::public_client(), None).await.unwrap();
    let r = f.authority.device_authorization(&public, &DeviceAuthorizationRequest::default(), None).await;
    assert!(matches!(r, Err(Error::UnauthorizedClient(_))), "{r:?}");
}

#[tokio::test]
async fn the_server_switch_turns_the_device_grant_off_as_unauthorized_client() {
    let f = Fixture::with_settings(Arc::new(MemStore::new()), None, |s| {
        s.grants.remove(&GrantType::DeviceCode);
    })
    .await
    .unwrap();
    let r =
        f.authority.device_authorization(&device_client(&f).await, &DeviceAuthorizationRequest::default(), None).await;
    assert!(matches!(r, Err(Error::UnauthorizedClient(_))), "{r:?}");
}

#[tokio::test]
async fn device_requests_check_scope_and_resource_as_authorize_does() {
    let f = fixture().await;
    let client = device_client(&f).await;
    let wide = DeviceAuthorizationRequest { scope: Some("read admin"), ..DeviceAuthorizationRequest::default() };
    assert!(matches!(f.authority.device_authorization(&client, &wide, None).await, Err(Error::InvalidScope(_))));
    let foreign =
        DeviceAuthorizationRequest { resource: Some(OTHER_RESOURCE), ..DeviceAuthorizationRequest::default() };
    assert!(matches!(f.authority.device_authorization(&client, &foreign, None).await, Err(Error::InvalidTarget(_))));
    let other_id =
        DeviceAuthorizationRequest { client_id: Some(PUBLIC_CLIENT), ..DeviceAuthorizationRequest::default() };
    assert!(matches!(f.authority.device_authorization(&client, &other_id, None).await, Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn a_resource_named_at_the_device_request_becomes_the_tokens_audience() {
    let f = fixture().await;
    let client = device_client(&f).await;
    let req = DeviceAuthorizationRequest { resource: Some(RESOURCE), ..DeviceAuthorizationRequest::default() };
    let started = f.authority.device_authorization(&client, &req, None).await.unwrap();
    let consent = to_consent(&f, &started.user_code.to_string()).await;
    assert_eq!(consent.requested_scope().to_string(), "read", "the client's scopes the resource has");
    f.authority.decide(consent.id(), true).await.unwrap();
    let tokens = poll(&f, &started.device_code).await.unwrap();
    let claims = f.authority.services().tokens.verify(&tokens.access_token, f.clock.now()).await.unwrap();
    assert_eq!(claims.audience, RESOURCE);
}

#[tokio::test]
async fn wrong_user_codes_count_per_peer_and_lock_the_peer_out() {
    let f =
        Fixture::with_settings(Arc::new(MemStore::new()), None, |s| s.throttle.max_failures_per_ip = 3).await.unwrap();
    let started = start(&f, "read").await;
    let peer = Some("192.0.2.7".parse().unwrap());
    for typed in ["BBBB-BBBB", "not a code", "CCCC-CCCC"] {
        let r = type_code(&f, typed, peer).await;
        assert!(matches!(r, Err(Error::InvalidGrant(_))), "{r:?}");
    }
    let right = type_code(&f, &started.user_code.to_string(), peer).await;
    assert!(matches!(right, Err(Error::Throttled { .. })), "past the limit even the right code is refused");
    let elsewhere = Some("192.0.2.8".parse().unwrap());
    assert!(type_code(&f, &started.user_code.to_string(), elsewhere).await.is_ok(), "another peer is not locked out");
}

/// Randomness that hands out a script of byte patterns, one per call, then
/// counts like [`CountingSecrets`].
#[derive(Debug, Default)]
struct Scripted(std::sync::Mutex<std::collections::VecDeque<u8>>, CountingSecrets);

impl SecretSource for Scripted {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        match self.0.lock().unwrap().pop_front() {
            Some(b) => buf.fill(b),
            None => self.1.fill(buf)?,
        }
        Ok(())
    }
}

#[tokio::test]
async fn user_codes_are_unique_among_live_ones_and_free_again_after_expiry() {
    let f = fixture().await;
    // Byte 1 makes the user code CCCC-CCCC; the other patterns are device codes and a second user code.
    let script = Scripted::default();
    script.0.lock().unwrap().extend([10, 1, 11, 1, 2, 12, 1]);
    let services = Services { secrets: Arc::new(script), ..f.authority.services().clone() };
    let authority = Authority::new(f.authority.settings().clone(), services);
    let client = device_client(&f).await;
    let req = DeviceAuthorizationRequest::default();
    let first = authority.device_authorization(&client, &req, None).await.unwrap();
    assert_eq!(first.user_code.to_string(), "CCCC-CCCC");
    let second = authority.device_authorization(&client, &req, None).await.unwrap();
    assert_eq!(second.user_code.to_string(), "DDDD-DDDD", "CCCC-CCCC is live: drawn again");
    f.clock.advance(Duration::seconds(600));
    let third = authority.device_authorization(&client, &req, None).await.unwrap();
    assert_eq!(third.user_code.to_string(), "CCCC-CCCC", "free again once the first expired");
    let (session, _) = authority.open_device_session("cccc cccc", TokenHash::of("b"), None, false, None).await.unwrap();
    assert_eq!(session.device_user_code(), Some(&third.user_code), "the live request owns the code now");
}

#[tokio::test]
async fn expired_device_requests_are_swept() {
    let store = Arc::new(MemStore::new());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let started = start(&f, "read").await;
    let now = f.clock.now();
    assert_eq!(store.sweep(now + Duration::seconds(599), now).await.unwrap().records, 0, "live");
    assert_eq!(store.sweep(now + Duration::seconds(601), now).await.unwrap().records, 1, "the user code at expiry");
    f.clock.advance(Duration::seconds(601));
    assert_eq!(poll(&f, &started.device_code).await, Err(Error::ExpiredToken), "the request answers a while longer");
    assert_eq!(store.sweep(now + Duration::seconds(1201), now).await.unwrap().records, 1, "then it goes too");
    let gone = poll(&f, &started.device_code).await;
    assert!(matches!(gone, Err(Error::InvalidGrant(_))), "{gone:?}");
    assert!(store.record(DEVICE_CODE, &TokenHash::of(&started.device_code), now).await.unwrap().is_none());
}
