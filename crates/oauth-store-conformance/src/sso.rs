//! Checks of single sign-on on the store, through the real flows: the
//! browser-session and consent records, ending an account's sessions at
//! once, and the OpenID Connect facts a session and a grant carry.

use std::sync::Arc;

use oauth_core::testing::{Fixture, OIDC_CLIENT, PASSWORD, USERNAME, id_token_claims, query_param};
use oauth_core::{BROWSER_SESSION, Clock, LoginOutcome, Step, Store, TokenHash};

async fn fixture(store: &Arc<dyn Store>) -> Fixture {
    Fixture::new(store.clone(), None).await.expect("fixture")
}

/// Signs in through the OpenID client's request; the browser session's
/// cookie and the outcome.
async fn sign_in(f: &Fixture, replacing: Option<&str>) -> (String, LoginOutcome) {
    let (session, _) = f.authority.authorize(&Fixture::openid_request(), None, None).await.expect("authorize");
    let signed = f.authority.sign_in(session.id(), USERNAME, PASSWORD, None, replacing).await.expect("sign in");
    (signed.cookie, signed.outcome)
}

/// A login's browser session is stored by the cookie's hash only, found by
/// the cookie, and skips the login page of the next request; a remembered
/// consent then skips the consent page too.
pub async fn a_browser_session_and_a_consent_carry_the_next_authorization(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (cookie, outcome) = sign_in(&f, None).await;
    let LoginOutcome::Consent(session) = outcome else { panic!("the first login shows the consent page") };
    f.authority.decide(session.id(), true).await.expect("approve");
    let now = f.clock.now();
    let record = store.record(BROWSER_SESSION, &TokenHash::of(&cookie), now).await.expect("read").expect("stored");
    assert_eq!(record.owner, Some(f.account.id));
    assert!(!String::from_utf8_lossy(&record.value).contains(&cookie), "the cookie itself is not stored");

    let (next, _) = f.authority.authorize(&Fixture::openid_request(), None, None).await.expect("authorize");
    let Step::Redirect(location) = f.authority.proceed(next.id(), Some(&cookie)).await.expect("proceed") else {
        panic!("a live session and a remembered consent show no page")
    };
    assert!(query_param(&location, "code").is_some(), "{location}");
}

/// Ending an account's sessions removes every one of them at once, on
/// every backend: the cookies log in nobody after it.
pub async fn ending_an_accounts_sessions_logs_every_browser_out(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (first, _) = sign_in(&f, None).await;
    let (second, _) = sign_in(&f, None).await;
    assert!(f.authority.browser_session(&first).await.expect("lookup").is_some());
    assert_eq!(f.authority.end_sessions_of(f.account.id).await.expect("end"), 2);
    for cookie in [&first, &second] {
        assert!(f.authority.browser_session(cookie).await.expect("lookup").is_none());
    }
    let (next, _) = f.authority.authorize(&Fixture::openid_request(), None, None).await.expect("authorize");
    let step = f.authority.proceed(next.id(), Some(&first)).await.expect("proceed");
    assert!(matches!(step, Step::Login(_)), "{step:?}");
}

/// The OpenID Connect facts (the login's time and sid, the nonce) survive
/// the store in the session and in the grant, so the code's ID token and a
/// refresh's repeat them.
pub async fn a_login_and_nonce_survive_the_store_into_the_id_tokens(store: Arc<dyn Store>) {
    let f = fixture(&store).await;
    let (cookie, outcome) = sign_in(&f, None).await;
    let LoginOutcome::Consent(session) = outcome else { panic!("the first login shows the consent page") };
    let (stored, _) = f.authority.session(session.id()).await.expect("read");
    assert_eq!(stored.authentication(), session.authentication());
    assert_eq!(stored.nonce().map(|n| n.as_str()), Some("n-0S6_WzA2Mj"));
    let live = f.authority.browser_session(&cookie).await.expect("lookup").expect("live");
    assert_eq!(stored.authentication().and_then(|a| a.sid), Some(live.sid()));

    let location = f.authority.decide(session.id(), true).await.expect("approve");
    let code = query_param(&location, "code").expect("a code");
    let client = f
        .authority
        .authenticate_client(
            &oauth_core::ClientCredentials { client_id: Some(OIDC_CLIENT), secret: None, assertion: None },
            None,
        )
        .await
        .expect("client");
    let tokens = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.expect("exchange");
    let id = id_token_claims(tokens.id_token.as_deref().expect("an ID token")).expect("claims");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["sid"], live.sid().to_string());
    assert_eq!(id["auth_time"], live.auth_time().unix_timestamp());

    let refresh = oauth_core::TokenRequest {
        grant_type: Some("refresh_token"),
        refresh_token: tokens.refresh_token.as_deref(),
        ..oauth_core::TokenRequest::default()
    };
    let refreshed = f.authority.token(&client, &refresh, None, None).await.expect("refresh");
    let again = id_token_claims(refreshed.id_token.as_deref().expect("a refreshed ID token")).expect("claims");
    assert_eq!((&again["sub"], &again["auth_time"], &again["sid"]), (&id["sub"], &id["auth_time"], &id["sid"]));
    assert!(again["nonce"].is_null(), "a refresh's ID token has no nonce");
}
