//! Single sign-on through the flows, with a manual clock: the session's
//! lifetime and idle timeout, the resource check on every authorization,
//! clients that always ask for consent, and forgetting consents. One test per
//! rule; names state the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::{Duration, OffsetDateTime};

async fn fixture(resources: Option<Arc<dyn ResourceCheck>>) -> Fixture {
    Fixture::new(Arc::new(MemStore::new()), resources).await.unwrap()
}

/// Opens `request`'s session; answers its id.
async fn open(f: &Fixture, request: &AuthorizeRequest<'_>) -> SessionId {
    match f.authority.authorize(request, None, None).await {
        Ok((session, _)) => session.id(),
        Err(_) => panic!("the request is refused"),
    }
}

/// Signs in through `request` and approves; the session cookie.
async fn signed_in(f: &Fixture, request: &AuthorizeRequest<'_>) -> String {
    let id = open(f, request).await;
    let signed = f.authority.sign_in(id, USERNAME, PASSWORD, None, None).await.unwrap();
    let LoginOutcome::Consent(session) = signed.outcome else { panic!("the consent page first") };
    f.authority.decide(session.id(), true).await.unwrap();
    signed.cookie
}

/// What the browser with `cookie` sees for `request`.
async fn step(f: &Fixture, request: &AuthorizeRequest<'_>, cookie: &str) -> Step {
    let id = open(f, request).await;
    f.authority.proceed(id, Some(cookie)).await.unwrap()
}

fn is_code(step: &Step) -> bool {
    matches!(step, Step::Redirect(l) if query_param(l, "code").is_some())
}

#[tokio::test]
async fn a_session_ends_after_its_idle_timeout_without_use() {
    let f = fixture(None).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    f.clock.advance(Duration::minutes(29));
    assert!(is_code(&step(&f, &Fixture::openid_request(), &cookie).await), "used within 30 minutes");
    // That use restarted the idle timer.
    f.clock.advance(Duration::minutes(29));
    assert!(is_code(&step(&f, &Fixture::openid_request(), &cookie).await));
    f.clock.advance(Duration::minutes(31));
    let s = step(&f, &Fixture::openid_request(), &cookie).await;
    assert!(matches!(s, Step::Login(_)), "idle for 31 minutes: {s:?}");
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_busy() {
    let f = fixture(None).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    let started: OffsetDateTime = f.clock.now();
    while f.clock.now() - started < Duration::hours(10) - Duration::minutes(20) {
        f.clock.advance(Duration::minutes(20));
        assert!(is_code(&step(&f, &Fixture::openid_request(), &cookie).await), "at {}", f.clock.now() - started);
    }
    f.clock.advance(Duration::minutes(20));
    let s = step(&f, &Fixture::openid_request(), &cookie).await;
    assert!(matches!(s, Step::Login(_)), "ten hours after the login: {s:?}");
}

/// Allows the first check and denies every later one, counting them.
#[derive(Default)]
struct AllowOnce(AtomicUsize);

#[async_trait]
impl ResourceCheck for AllowOnce {
    async fn check(&self, _: &Client, _: &Account, scope: &Scope, _: OffsetDateTime) -> Result<ResourceDecision> {
        Ok(match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => ResourceDecision::Allow(scope.clone()),
            _ => ResourceDecision::Deny,
        })
    }
}

#[tokio::test]
async fn the_resource_check_runs_on_every_authorization_with_a_session_too() {
    let check = Arc::new(AllowOnce::default());
    let f = fixture(Some(check.clone())).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    // A live session and a remembered consent, but the check now denies.
    let s = step(&f, &Fixture::openid_request(), &cookie).await;
    let Step::Redirect(location) = s else { panic!("{s:?}") };
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(check.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_that_always_asks_shows_consent_every_time_and_remembers_nothing() {
    let f = fixture(None).await;
    // The public client's rule is ConsentRule::Always, as for MedMij OCL clients.
    let cookie = signed_in(&f, &Fixture::public_request()).await;
    let s = step(&f, &Fixture::public_request(), &cookie).await;
    assert!(matches!(s, Step::Consent(_)), "with a session, still the consent page: {s:?}");
    let none = AuthorizeRequest { prompt: Some("none"), ..Fixture::public_request() };
    let s = step(&f, &none, &cookie).await;
    let Step::Redirect(location) = s else { panic!("{s:?}") };
    assert_eq!(query_param(&location, "error").as_deref(), Some("consent_required"));
    assert_eq!(f.authority.forget_consents_of(f.account.id).await.unwrap(), 0, "nothing was remembered");
}

#[tokio::test]
async fn forgetting_an_accounts_consents_shows_the_consent_page_again() {
    let f = fixture(None).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    assert!(is_code(&step(&f, &Fixture::openid_request(), &cookie).await));
    assert_eq!(f.authority.forget_consents_of(f.account.id).await.unwrap(), 1);
    let s = step(&f, &Fixture::openid_request(), &cookie).await;
    assert!(matches!(s, Step::Consent(_)), "{s:?}");
}

#[tokio::test]
async fn approvals_add_up_in_the_remembered_consent() {
    let f = fixture(None).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    let profile = AuthorizeRequest { scope: Some("openid profile"), ..Fixture::openid_request() };
    let Step::Consent(session) = step(&f, &profile, &cookie).await else { panic!("profile is new") };
    f.authority.decide(session.id(), true).await.unwrap();
    let both = AuthorizeRequest { scope: Some("openid profile read"), ..Fixture::openid_request() };
    assert!(is_code(&step(&f, &both, &cookie).await), "read, then profile: both remembered");
}

/// Pushes `request` for the public OpenID client (RFC 9126) and opens the
/// session its `request_uri` names; answers the session's id.
async fn open_pushed(f: &Fixture, request: AuthorizeRequest<'_>) -> SessionId {
    let creds = ClientCredentials { client_id: Some(OIDC_CLIENT), secret: None, assertion: None };
    let client = f.authority.authenticate_client(&creds, None).await.unwrap();
    let pushed = f.authority.push_authorization_request(&client, &request, None, None).await.unwrap();
    let by_uri = AuthorizeRequest {
        client_id: Some(OIDC_CLIENT),
        request_uri: Some(&pushed.request_uri),
        ..AuthorizeRequest::default()
    };
    open(f, &by_uri).await
}

#[tokio::test]
async fn a_pushed_request_goes_through_single_sign_on_prompt_and_consent_like_any_other() {
    let f = fixture(None).await;
    let cookie = signed_in(&f, &Fixture::openid_request()).await;
    // A live session and a remembered consent: a code at once.
    let id = open_pushed(&f, Fixture::openid_request()).await;
    let s = f.authority.proceed(id, Some(&cookie)).await.unwrap();
    assert!(is_code(&s), "{s:?}");
    let (session, _) = f.authority.session(id).await.unwrap();
    assert_eq!(session.nonce().map(|n| n.as_str()), Some("n-0S6_WzA2Mj"), "the pushed nonce");
    // The pushed `prompt` holds: login asks for the password again.
    let id = open_pushed(&f, AuthorizeRequest { prompt: Some("login"), ..Fixture::openid_request() }).await;
    let s = f.authority.proceed(id, Some(&cookie)).await.unwrap();
    assert!(matches!(s, Step::Login(_)), "{s:?}");
    // And `none` without a session is login_required, redirected.
    let id = open_pushed(&f, AuthorizeRequest { prompt: Some("none"), ..Fixture::openid_request() }).await;
    let Step::Redirect(location) = f.authority.proceed(id, None).await.unwrap() else { panic!("a redirect") };
    assert_eq!(query_param(&location, "error").as_deref(), Some("login_required"));
    // The pushed `max_age` too: a login older than it asks again.
    f.clock.advance(Duration::minutes(5));
    let id = open_pushed(&f, AuthorizeRequest { max_age: Some("60"), ..Fixture::openid_request() }).await;
    let s = f.authority.proceed(id, Some(&cookie)).await.unwrap();
    assert!(matches!(s, Step::Login(_)), "{s:?}");
}
