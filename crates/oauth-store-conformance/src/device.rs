//! Checks of the device authorization grant (RFC 8628) on the store, through
//! the real flows: a device code redeemed once however many polls race, a
//! poll's bookkeeping kept under racing polls, one decision per request, user
//! codes unique among live ones, and the sweep at expiry.

use std::sync::Arc;

use oauth_core::device::{DEVICE_CODE, DEVICE_USER_CODE};
use oauth_core::testing::{Fixture, PASSWORD, USERNAME};
use oauth_core::{
    AuthenticatedClient, AuthorizationSession, Clock, DeviceAuthorization, DeviceAuthorizationRequest, Error,
    LoginOutcome, Store, TokenHash, TokenRequest,
};
use time::Duration;

use crate::FLOW_RACERS;

async fn fixture(store: &Arc<dyn Store>) -> Arc<Fixture> {
    Arc::new(Fixture::new(store.clone(), None).await.expect("fixture"))
}

async fn device_client(f: &Fixture) -> AuthenticatedClient {
    f.authority.authenticate_client(&Fixture::device_client(), None).await.expect("client")
}

async fn start(f: &Fixture) -> DeviceAuthorization {
    let client = device_client(f).await;
    f.authority
        .device_authorization(&client, &DeviceAuthorizationRequest::default(), None)
        .await
        .expect("device request")
}

/// The user's browser up to the consent page of `started`'s request.
async fn to_consent(f: &Fixture, started: &DeviceAuthorization) -> AuthorizationSession {
    let typed = started.user_code.to_string();
    let (session, _) =
        f.authority.open_device_session(&typed, TokenHash::of("b"), None, false, None).await.expect("user code");
    match f.authority.login(session.id(), USERNAME, PASSWORD, None).await.expect("login") {
        LoginOutcome::Consent(s) => *s,
        other => panic!("a device request shows the consent page, not {other:?}"),
    }
}

/// `FLOW_RACERS` concurrent polls of `device_code`, all at the same instant.
async fn racing_polls(f: &Arc<Fixture>, device_code: &str) -> Vec<oauth_core::Result<oauth_core::TokenResponse>> {
    let client = device_client(f).await;
    let mut tasks = Vec::new();
    for _ in 0..FLOW_RACERS {
        let (f, code, client) = (f.clone(), device_code.to_owned(), client.clone());
        tasks.push(tokio::spawn(async move {
            let req = TokenRequest {
                grant_type: Some("urn:ietf:params:oauth:grant-type:device_code"),
                device_code: Some(&code),
                ..TokenRequest::default()
            };
            f.authority.token(&client, &req, None, None).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    answers
}

/// Of [`FLOW_RACERS`] concurrent polls after approval exactly one gets the
/// tokens; the others get `invalid_grant`, and so does every later poll.
pub async fn racing_device_polls_after_approval_give_one_token_response(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let started = start(&f).await;
    let consent = to_consent(&f, &started).await;
    f.authority.decide(consent.id(), true).await.expect("approve");
    let answers = racing_polls(&f, &started.device_code).await;
    let won = answers.iter().filter(|a| a.is_ok()).count();
    assert_eq!(won, 1, "exactly one poll gets tokens");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(matches!(a, Error::InvalidGrant(_)), "{a:?}");
    }
    let now = f.clock.now();
    assert!(store.record(DEVICE_CODE, &TokenHash::of(&started.device_code), now).await.expect("read").is_none());
}

/// Of [`FLOW_RACERS`] concurrent polls of a pending request at one instant,
/// one is on time and every other one is `slow_down`: each poll's
/// bookkeeping is a compare-and-swap that sees the others'.
pub async fn racing_pending_polls_are_each_counted(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let started = start(&f).await;
    let answers = racing_polls(&f, &started.device_code).await;
    let pending = answers.iter().filter(|a| matches!(a, Err(Error::AuthorizationPending))).count();
    let slow = answers.iter().filter(|a| matches!(a, Err(Error::SlowDown))).count();
    assert_eq!((pending, slow), (1, FLOW_RACERS - 1), "{answers:?}");
}

/// Of [`FLOW_RACERS`] browsers deciding one device request at once, exactly
/// one decision holds.
pub async fn racing_device_decisions_have_one_winner(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let started = start(&f).await;
    let mut sessions = Vec::new();
    for _ in 0..FLOW_RACERS {
        sessions.push(to_consent(&f, &started).await);
    }
    let mut tasks = Vec::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let f = f.clone();
        tasks.push(tokio::spawn(async move { f.authority.decide(s.id(), i % 2 == 0).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => won += 1,
            Err(e) => assert!(matches!(e, Error::IllegalTransition { .. }), "{e:?}"),
        }
    }
    assert_eq!(won, 1, "one decision per device request");
}

/// A user code is unique among live requests: many requests get distinct
/// codes, each index record names its own request, and both kinds of record
/// are swept after expiry (the user code at expiry, the request once it has
/// answered `expired_token` for a code lifetime more).
pub async fn device_user_codes_are_unique_and_swept_at_expiry(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let started = start(&f).await;
        assert!(seen.insert(started.user_code.to_string()), "a live user code handed out twice");
        let found = f.authority.pending_device(&started.user_code.to_string()).await.expect("lookup");
        assert_eq!(found.map(|(key, _)| key), Some(TokenHash::of(&started.device_code)));
    }
    let now = f.clock.now();
    assert_eq!(store.sweep(now + Duration::seconds(599), now).await.expect("sweep").records, 0);
    assert_eq!(store.sweep(now + Duration::seconds(600), now).await.expect("sweep").records, 20, "user codes");
    assert_eq!(store.sweep(now + Duration::seconds(1200), now).await.expect("sweep").records, 20, "requests");
    let later = now + Duration::seconds(1200);
    let any = seen.iter().next().expect("a code");
    let key = TokenHash::of(&format!("user_code\0{}", any.replace('-', "")));
    assert!(store.record(DEVICE_USER_CODE, &key, later).await.expect("read").is_none());
}
