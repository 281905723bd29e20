//! The flows of `Authority`, driven as a front end would drive them, against the
//! memory store with a manual clock. One test per rule; names state the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::{Duration, OffsetDateTime};

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemStore::new()), None).await.unwrap()
}

fn store(f: &Fixture) -> &Arc<dyn Store> {
    &f.authority.services().store
}

async fn public(f: &Fixture) -> AuthenticatedClient {
    f.authority.authenticate_client(&Fixture::public_client(), None).await.unwrap()
}

async fn confidential(f: &Fixture) -> AuthenticatedClient {
    f.authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap()
}

fn redirect_of(r: AuthorizeRejection) -> (Error, String) {
    match r {
        AuthorizeRejection::Redirect { error, location } => (error, location),
        AuthorizeRejection::Page(e) => panic!("expected a redirect, got page {e:?}"),
    }
}

async fn reject(f: &Fixture, req: AuthorizeRequest<'_>) -> AuthorizeRejection {
    f.authority.authorize(&req, None, None).await.expect_err("request should be refused")
}

/// Runs the public client's code flow to a token response.
async fn code_tokens(f: &Fixture) -> TokenResponse {
    let (_, code) = f.issued_code().await.unwrap();
    f.authority.token(&public(f).await, &Fixture::code_request(&code), None, None).await.unwrap()
}

// --- the authorization request --------------------------------------------------

#[tokio::test]
async fn unknown_or_missing_client_gets_an_error_page_not_a_redirect() {
    let f = fixture().await;
    for client_id in [None, Some("nobody"), Some("")] {
        let r = reject(&f, AuthorizeRequest { client_id, ..Fixture::public_request() }).await;
        assert_eq!(r, AuthorizeRejection::Page(Error::UnknownClient));
    }
}

#[tokio::test]
async fn missing_or_unregistered_redirect_uri_gets_an_error_page() {
    let f = fixture().await;
    for redirect_uri in [None, Some("https://evil.example/cb"), Some("https://app.example/cb/")] {
        let r = reject(&f, AuthorizeRequest { redirect_uri, ..Fixture::public_request() }).await;
        assert_eq!(r, AuthorizeRejection::Page(Error::InvalidRedirectUri));
    }
}

#[tokio::test]
async fn client_is_checked_before_redirect_uri_and_both_before_the_rest() {
    let f = fixture().await;
    let r = reject(&f, AuthorizeRequest { client_id: Some("nobody"), redirect_uri: None, ..Default::default() }).await;
    assert_eq!(r, AuthorizeRejection::Page(Error::UnknownClient));
    let bad_everything = AuthorizeRequest {
        redirect_uri: Some("https://evil.example/"),
        response_type: Some("token"),
        scope: Some("admin"),
        ..Fixture::public_request()
    };
    assert_eq!(reject(&f, bad_everything).await, AuthorizeRejection::Page(Error::InvalidRedirectUri));
}

#[tokio::test]
async fn redirected_errors_carry_description_state_and_iss() {
    let f = fixture().await;
    let (error, location) =
        redirect_of(reject(&f, AuthorizeRequest { response_type: Some("token"), ..Fixture::public_request() }).await);
    assert_eq!(error, Error::UnsupportedResponseType);
    assert!(location.starts_with(REDIRECT_URI));
    assert_eq!(query_param(&location, "error").as_deref(), Some("unsupported_response_type"));
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(ISSUER));
}

#[tokio::test]
async fn invalid_state_is_redirected_without_state() {
    let f = fixture().await;
    let long = "x".repeat(513);
    for state in ["", "tab\there", long.as_str()] {
        let (error, location) =
            redirect_of(reject(&f, AuthorizeRequest { state: Some(state), ..Fixture::public_request() }).await);
        assert!(matches!(error, Error::InvalidRequest(_)));
        assert_eq!(query_param(&location, "state"), None);
        assert_eq!(query_param(&location, "iss").as_deref(), Some(ISSUER));
    }
}

#[tokio::test]
async fn state_is_echoed_byte_for_byte() {
    let f = fixture().await;
    let state = "a b+c%20&d=e";
    let req = AuthorizeRequest { state: Some(state), ..Fixture::public_request() };
    let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
    f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    let location = f.authority.decide(session.id(), true).await.unwrap();
    assert_eq!(query_param(&location, "state").as_deref(), Some(state));
}

#[tokio::test]
async fn missing_response_type_is_invalid_request() {
    let f = fixture().await;
    let (error, _) =
        redirect_of(reject(&f, AuthorizeRequest { response_type: None, ..Fixture::public_request() }).await);
    assert!(matches!(error, Error::InvalidRequest(_)));
}

#[tokio::test]
async fn scope_outside_the_clients_set_is_invalid_scope_never_narrowed() {
    let f = fixture().await;
    let (error, location) =
        redirect_of(reject(&f, AuthorizeRequest { scope: Some("read admin"), ..Fixture::public_request() }).await);
    assert!(matches!(error, Error::InvalidScope(_)));
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_scope"));
}

#[tokio::test]
async fn omitted_scope_means_the_clients_full_set() {
    let f = fixture().await;
    let (session, _) = f
        .authority
        .authorize(&AuthorizeRequest { scope: None, ..Fixture::public_request() }, None, None)
        .await
        .unwrap();
    assert_eq!(session.requested_scope(), &Scope::parse("read write").unwrap());
}

#[tokio::test]
async fn public_client_must_send_a_pkce_challenge() {
    let f = fixture().await;
    let req = AuthorizeRequest { code_challenge: None, code_challenge_method: None, ..Fixture::public_request() };
    let (error, _) = redirect_of(reject(&f, req).await);
    assert!(matches!(error, Error::InvalidRequest(_)));
}

#[tokio::test]
async fn plain_pkce_and_a_challenge_without_method_are_refused() {
    let f = fixture().await;
    for method in [Some("plain"), None] {
        let req = AuthorizeRequest { code_challenge_method: method, ..Fixture::public_request() };
        let (error, _) = redirect_of(reject(&f, req).await);
        assert!(matches!(error, Error::InvalidRequest(_)), "{method:?}");
    }
}

#[tokio::test]
async fn switched_off_code_grant_is_unsupported_response_type() {
    let f = fixture().await;
    let mut settings = f.authority.settings().clone();
    settings.grants.remove(&GrantType::AuthorizationCode);
    let authority = Authority::new(settings, f.authority.services().clone());
    let r = authority.authorize(&Fixture::public_request(), None, None).await.unwrap_err();
    assert_eq!(redirect_of(r).0, Error::UnsupportedResponseType);
}

#[tokio::test]
async fn host_bound_client_needs_exactly_one_of_its_scopes() {
    let f = fixture().await;
    let base = AuthorizeRequest {
        client_id: Some(HOST_CLIENT),
        redirect_uri: Some("https://pgo.example.org/callback"),
        response_type: Some("code"),
        scope: Some("1"),
        state: Some("s"),
        ..Default::default()
    };
    assert!(f.authority.authorize(&base, None, None).await.is_ok(), "no PKCE needed when the profile waives it");
    for scope in [None, Some("1 4"), Some("7")] {
        let (error, _) = redirect_of(reject(&f, AuthorizeRequest { scope, ..base }).await);
        assert!(matches!(error, Error::InvalidScope(_)), "{scope:?}");
    }
    let wrong_host = AuthorizeRequest { redirect_uri: Some("https://pgo.example.org.evil/cb"), ..base };
    assert_eq!(reject(&f, wrong_host).await, AuthorizeRejection::Page(Error::InvalidRedirectUri));
}

#[tokio::test]
async fn host_bound_client_that_sends_a_challenge_must_redeem_with_its_verifier() {
    let f = fixture().await;
    let req = AuthorizeRequest {
        client_id: Some(HOST_CLIENT),
        redirect_uri: Some("https://pgo.example.org/cb"),
        response_type: Some("code"),
        scope: Some("4"),
        code_challenge: Some(CHALLENGE),
        code_challenge_method: Some("S256"),
        ..Default::default()
    };
    let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
    f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    let code = query_param(&f.authority.decide(session.id(), true).await.unwrap(), "code").unwrap();
    let client = f
        .authority
        .authenticate_client(&ClientCredentials { client_id: Some(HOST_CLIENT), secret: None, assertion: None }, None);
    let token = TokenRequest {
        redirect_uri: Some("https://pgo.example.org/cb"),
        code_verifier: None,
        ..Fixture::code_request(&code)
    };
    let err = f.authority.token(&client.await.unwrap(), &token, None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)), "{err:?}");
}

// --- login, resource check, consent ---------------------------------------------

#[tokio::test]
async fn bad_credentials_leave_the_session_where_it_was() {
    let f = fixture().await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let err = f.authority.login(session.id(), USERNAME, "wrong", None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)));
    let (stored, _) = f.authority.session(session.id()).await.unwrap();
    assert_eq!(stored.state(), &SessionState::Requested);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_take_the_same_path() {
    let f = fixture().await;
    let client = confidential(&f).await;
    let before = f.verifier.calls.load(Ordering::SeqCst);
    let unknown = TokenRequest {
        grant_type: Some("password"),
        username: Some("mallory"),
        password: Some("x"),
        ..Default::default()
    };
    let wrong = TokenRequest { username: Some(USERNAME), ..unknown };
    let e1 = f.authority.token(&client, &unknown, None, None).await.unwrap_err();
    let e2 = f.authority.token(&client, &wrong, None, None).await.unwrap_err();
    assert_eq!(e1, e2);
    assert_eq!(f.verifier.calls.load(Ordering::SeqCst) - before, 2, "both spent one verification");
}

#[tokio::test]
async fn login_is_throttled_past_the_limit_even_with_the_right_password() {
    let f = fixture().await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    for _ in 0..10 {
        let e = f.authority.login(session.id(), USERNAME, "wrong", peer).await.unwrap_err();
        assert!(matches!(e, Error::InvalidGrant(_)), "up to the limit, the normal error: {e:?}");
    }
    let e = f.authority.login(session.id(), USERNAME, PASSWORD, peer).await.unwrap_err();
    let Error::Throttled { retry_after, code } = e else { panic!("expected throttling, got {e:?}") };
    assert_eq!(code, ErrorCode::InvalidGrant);
    assert!((1..=900).contains(&retry_after));
    f.clock.advance(Duration::seconds(901));
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    assert!(f.authority.login(session.id(), USERNAME, PASSWORD, peer).await.is_ok(), "the window cleared");
}

#[tokio::test]
async fn throttling_by_peer_address_covers_every_account() {
    let f = fixture().await;
    let mut settings = f.authority.settings().clone();
    settings.throttle.max_failures_per_ip = 3;
    let authority = Authority::new(settings, f.authority.services().clone());
    let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let client = confidential(&f).await;
    for name in ["u1", "u2", "u3"] {
        let req = TokenRequest {
            grant_type: Some("password"),
            username: Some(name),
            password: Some("x"),
            ..Default::default()
        };
        assert!(matches!(authority.token(&client, &req, None, peer).await, Err(Error::InvalidGrant(_))));
    }
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..Default::default()
    };
    assert!(matches!(authority.token(&client, &req, None, peer).await, Err(Error::Throttled { .. })));
    assert!(authority.token(&client, &req, None, None).await.is_ok(), "another peer is not affected");
}

struct Refuse;
#[async_trait]
impl ResourceCheck for Refuse {
    async fn check(&self, _: &Client, _: &Account, _: &Scope, _: OffsetDateTime) -> Result<ResourceDecision> {
        Ok(ResourceDecision::Deny)
    }
}

struct Narrow;
#[async_trait]
impl ResourceCheck for Narrow {
    async fn check(&self, _: &Client, _: &Account, _: &Scope, _: OffsetDateTime) -> Result<ResourceDecision> {
        Ok(ResourceDecision::Allow(Scope::parse("read").unwrap()))
    }
}

#[tokio::test]
async fn refused_resource_check_redirects_access_denied_with_state_and_iss() {
    let f = Fixture::new(Arc::new(MemStore::new()), Some(Arc::new(Refuse))).await.unwrap();
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let LoginOutcome::Denied(location) = f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap()
    else {
        panic!("expected a denial");
    };
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(ISSUER));
    let err = f.authority.decide(session.id(), true).await.unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { from: "Denied", .. }), "{err:?}");
}

#[tokio::test]
async fn resource_check_may_narrow_the_granted_scope() {
    let f = Fixture::new(Arc::new(MemStore::new()), Some(Arc::new(Narrow))).await.unwrap();
    let req = AuthorizeRequest { scope: Some("read write"), ..Fixture::public_request() };
    let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
    f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    let code = query_param(&f.authority.decide(session.id(), true).await.unwrap(), "code").unwrap();
    let tokens = f.authority.token(&public(&f).await, &Fixture::code_request(&code), None, None).await.unwrap();
    assert_eq!(tokens.scope, "read");
}

#[tokio::test]
async fn approval_redirects_with_code_state_and_iss() {
    let f = fixture().await;
    let session = f.checked_session().await.unwrap();
    let location = f.authority.decide(session.id(), true).await.unwrap();
    assert!(location.starts_with("https://app.example/cb?code="));
    assert_eq!(query_param(&location, "code").map(|c| c.len()), Some(43), "256 bits, base64url");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(ISSUER));
}

#[tokio::test]
async fn denial_redirects_access_denied() {
    let f = fixture().await;
    let session = f.checked_session().await.unwrap();
    let location = f.authority.decide(session.id(), false).await.unwrap();
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test]
async fn a_session_is_approved_once() {
    let f = fixture().await;
    let session = f.checked_session().await.unwrap();
    f.authority.decide(session.id(), true).await.unwrap();
    for approve in [true, false] {
        let err = f.authority.decide(session.id(), approve).await.unwrap_err();
        assert!(matches!(err, Error::IllegalTransition { from: "CodeIssued", .. }), "{err:?}");
    }
}

#[tokio::test]
async fn a_session_without_a_code_expires_after_600_seconds() {
    let f = fixture().await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    f.clock.advance(Duration::seconds(600));
    let err = f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap_err();
    assert_eq!(err, Error::SessionExpired);
}

#[tokio::test]
async fn login_cannot_run_twice_on_one_session() {
    let f = fixture().await;
    let session = f.checked_session().await.unwrap();
    let before = f.verifier.calls.load(Ordering::SeqCst);
    let err = f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err:?}");
    assert_eq!(f.verifier.calls.load(Ordering::SeqCst), before, "no hash spent on a finished step");
}

// --- client authentication ------------------------------------------------------

#[tokio::test]
async fn every_client_authentication_failure_is_invalid_client() {
    let f = fixture().await;
    for creds in [
        ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: None, assertion: None },
        ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: Some("wrong"), assertion: None },
        ClientCredentials { client_id: Some(PUBLIC_CLIENT), secret: Some("anything"), assertion: None },
        ClientCredentials { client_id: Some("nobody"), secret: Some("x"), assertion: None },
        ClientCredentials { client_id: Some(""), secret: None, assertion: None },
    ] {
        let err = f.authority.authenticate_client(&creds, None).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (401, ErrorCode::InvalidClient), "{creds:?}");
    }
}

#[tokio::test]
async fn client_authentication_is_throttled_per_client() {
    let f = fixture().await;
    let wrong = ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: Some("wrong"), assertion: None };
    for _ in 0..10 {
        assert_eq!(f.authority.authenticate_client(&wrong, None).await.unwrap_err(), Error::InvalidClient);
    }
    let err = f.authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap_err();
    assert!(matches!(err, Error::Throttled { code: ErrorCode::InvalidClient, .. }), "{err:?}");
}

// --- the code grant ---------------------------------------------------------------

#[tokio::test]
async fn code_exchange_returns_bearer_tokens_with_scope() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    assert_eq!((t.token_type, t.expires_in, t.scope.as_str()), ("Bearer", 900, "read"));
    assert!(t.refresh_token.is_some(), "the public client may refresh");
    let p = f.authority.authenticate_bearer(&t.access_token).await.unwrap();
    assert_eq!(p.claims.subject, f.account.id.to_string(), "sub is the account's opaque id");
    assert_eq!(p.account.map(|a| a.id), Some(f.account.id));
}

#[tokio::test]
async fn replayed_code_revokes_tokens_minted_from_it() {
    let f = fixture().await;
    let (_, code) = f.issued_code().await.unwrap();
    let client = public(&f).await;
    let first = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.unwrap();
    let err = f.authority.token(&client, &Fixture::code_request(&code), None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)));
    assert!(matches!(f.authority.authenticate_bearer(&first.access_token).await, Err(Error::InvalidToken(_))));
    let refresh = TokenRequest {
        grant_type: Some("refresh_token"),
        refresh_token: first.refresh_token.as_deref(),
        ..Default::default()
    };
    assert!(matches!(f.authority.token(&client, &refresh, None, None).await, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn code_needs_its_verifier_and_the_same_redirect_uri_and_client() {
    let f = fixture().await;
    let client = public(&f).await;
    let cases: [fn(&str) -> TokenRequest<'_>; 3] = [
        |c| TokenRequest { code_verifier: None, ..Fixture::code_request(c) },
        |c| TokenRequest {
            code_verifier: Some("a-wrong-verifier-a-wrong-verifier-a-wrong-verifier"),
            ..Fixture::code_request(c)
        },
        |c| TokenRequest { redirect_uri: Some("https://app.example/other"), ..Fixture::code_request(c) },
    ];
    for case in cases {
        let (_, code) = f.issued_code().await.unwrap();
        let err = f.authority.token(&client, &case(&code), None, None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidGrant(_)), "{err:?}");
    }
    let (_, code) = f.issued_code().await.unwrap();
    let err = f.authority.token(&confidential(&f).await, &Fixture::code_request(&code), None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)), "a code is bound to its client: {err:?}");
}

#[tokio::test]
async fn code_expires_exactly_at_its_ttl() {
    let f = fixture().await;
    let (_, code) = f.issued_code().await.unwrap();
    f.clock.advance(Duration::seconds(60));
    let err = f.authority.token(&public(&f).await, &Fixture::code_request(&code), None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)));
}

#[tokio::test]
async fn unknown_grant_type_and_disallowed_grant_are_refused() {
    let f = fixture().await;
    let client = public(&f).await;
    let req = |g| TokenRequest { grant_type: Some(g), ..Default::default() };
    assert_eq!(
        f.authority.token(&client, &req("implicit"), None, None).await.unwrap_err(),
        Error::UnsupportedGrantType
    );
    assert!(matches!(
        f.authority.token(&client, &req("password"), None, None).await,
        Err(Error::UnauthorizedClient(_))
    ));
    assert!(matches!(
        f.authority.token(&client, &TokenRequest::default(), None, None).await,
        Err(Error::InvalidRequest(_))
    ));
}

// --- password and client credentials ---------------------------------------------

#[tokio::test]
async fn password_grant_is_off_unless_switched_on() {
    let f = fixture().await;
    let mut settings = f.authority.settings().clone();
    settings.grants = Settings::new(ISSUER).grants;
    let authority = Authority::new(settings, f.authority.services().clone());
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..Default::default()
    };
    assert_eq!(
        authority.token(&confidential(&f).await, &req, None, None).await.unwrap_err(),
        Error::UnsupportedGrantType
    );
}

#[tokio::test]
async fn password_grant_issues_account_tokens_and_a_refresh_token() {
    let f = fixture().await;
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        scope: Some("read"),
        ..Default::default()
    };
    let t = f.authority.token(&confidential(&f).await, &req, None, None).await.unwrap();
    assert_eq!(t.scope, "read");
    assert!(t.refresh_token.is_some());
    let p = f.authority.authenticate_bearer(&t.access_token).await.unwrap();
    assert_eq!(p.claims.subject, f.account.id.to_string());
}

#[tokio::test]
async fn client_credentials_has_the_client_as_subject_and_no_refresh_token() {
    let f = fixture().await;
    let req = TokenRequest { grant_type: Some("client_credentials"), ..Default::default() };
    let t = f.authority.token(&confidential(&f).await, &req, None, None).await.unwrap();
    assert_eq!(t.scope, "admin read write", "omitted scope is the full set");
    assert_eq!(t.refresh_token, None);
    let p = f.authority.authenticate_bearer(&t.access_token).await.unwrap();
    assert_eq!((p.claims.subject.as_str(), p.account), (CONFIDENTIAL_CLIENT, None));
}

// --- refresh ---------------------------------------------------------------------------

fn refresh_req(token: &str) -> TokenRequest<'_> {
    TokenRequest { grant_type: Some("refresh_token"), refresh_token: Some(token), ..Default::default() }
}

#[tokio::test]
async fn refresh_rotates_and_keeps_the_first_granted_scope() {
    let f = fixture().await;
    let t0 = code_tokens(&f).await;
    let client = public(&f).await;
    let t1 = f.authority.token(&client, &refresh_req(t0.refresh_token.as_deref().unwrap()), None, None).await.unwrap();
    assert_eq!(t1.scope, "read");
    assert_ne!(t1.refresh_token, t0.refresh_token);
    let t2 = f.authority.token(&client, &refresh_req(t1.refresh_token.as_deref().unwrap()), None, None).await.unwrap();
    assert!(t2.refresh_token.is_some());
}

#[tokio::test]
async fn reused_refresh_token_revokes_its_whole_family() {
    let f = fixture().await;
    let t0 = code_tokens(&f).await;
    let client = public(&f).await;
    let old = t0.refresh_token.unwrap();
    let t1 = f.authority.token(&client, &refresh_req(&old), None, None).await.unwrap();
    assert!(matches!(f.authority.token(&client, &refresh_req(&old), None, None).await, Err(Error::InvalidGrant(_))));
    let newest = t1.refresh_token.unwrap();
    assert!(matches!(f.authority.token(&client, &refresh_req(&newest), None, None).await, Err(Error::InvalidGrant(_))));
    assert!(matches!(f.authority.authenticate_bearer(&t1.access_token).await, Err(Error::InvalidToken(_))));
}

#[tokio::test]
async fn refresh_may_narrow_but_never_widen_the_scope() {
    let f = fixture().await;
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        scope: Some("read write"),
        ..Default::default()
    };
    let client = confidential(&f).await;
    let t0 = f.authority.token(&client, &req, None, None).await.unwrap();
    let rt = t0.refresh_token.unwrap();
    let wide = TokenRequest { scope: Some("read admin"), ..refresh_req(&rt) };
    assert!(matches!(f.authority.token(&client, &wide, None, None).await, Err(Error::InvalidScope(_))));
    let narrow = TokenRequest { scope: Some("read"), ..refresh_req(&rt) };
    let t1 = f.authority.token(&client, &narrow, None, None).await.unwrap();
    assert_eq!(t1.scope, "read");
    let t2 = f.authority.token(&client, &refresh_req(t1.refresh_token.as_deref().unwrap()), None, None).await.unwrap();
    assert_eq!(t2.scope, "read write", "the family keeps the first granted scope");
}

#[tokio::test]
async fn refresh_token_is_bound_to_its_client() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let err =
        f.authority.token(&confidential(&f).await, &refresh_req(t.refresh_token.as_deref().unwrap()), None, None).await;
    assert!(matches!(err, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn refresh_family_dies_at_its_absolute_lifetime_despite_rotation() {
    let f = fixture().await;
    let client = public(&f).await;
    let mut rt = code_tokens(&f).await.refresh_token.unwrap();
    for _ in 0..6 {
        f.clock.advance(Duration::days(13)); // Each rotation inside its 14-day idle window.
        rt = f.authority.token(&client, &refresh_req(&rt), None, None).await.unwrap().refresh_token.unwrap();
    }
    f.clock.advance(Duration::days(13)); // Day 91: inside the idle window, past the 90-day family.
    assert!(matches!(f.authority.token(&client, &refresh_req(&rt), None, None).await, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn refresh_token_expires_exactly_at_its_idle_ttl() {
    let f = fixture().await;
    let rt = code_tokens(&f).await.refresh_token.unwrap();
    f.clock.advance(Duration::seconds(1_209_600));
    assert!(matches!(
        f.authority.token(&public(&f).await, &refresh_req(&rt), None, None).await,
        Err(Error::InvalidGrant(_))
    ));
}

#[tokio::test]
async fn disabled_account_tokens_stop_working_at_once() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let mut account = f.account.clone();
    account.disabled = true;
    store(&f).put_account(&account).await.unwrap();
    assert!(matches!(f.authority.authenticate_bearer(&t.access_token).await, Err(Error::InvalidToken(_))));
    let rt = t.refresh_token.unwrap();
    assert!(matches!(
        f.authority.token(&public(&f).await, &refresh_req(&rt), None, None).await,
        Err(Error::InvalidGrant(_))
    ));
    let i = f.authority.introspect(&confidential(&f).await, Some(&t.access_token)).await.unwrap();
    assert!(!i.active);
    let i = f.authority.introspect(&confidential(&f).await, Some(&rt)).await.unwrap();
    assert!(!i.active);
}

#[tokio::test]
async fn access_token_is_never_accepted_as_a_refresh_token() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let err = f.authority.token(&public(&f).await, &refresh_req(&t.access_token), None, None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidGrant(_)));
    let err = f.authority.authenticate_bearer(t.refresh_token.as_deref().unwrap()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidToken(_)), "nor a refresh token as a bearer token");
}

// --- revocation and introspection ---------------------------------------------------

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_access_tokens() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let client = public(&f).await;
    f.authority.revoke(&client, t.refresh_token.as_deref()).await.unwrap();
    assert!(matches!(f.authority.authenticate_bearer(&t.access_token).await, Err(Error::InvalidToken(_))));
    let rt = t.refresh_token.unwrap();
    assert!(matches!(f.authority.token(&client, &refresh_req(&rt), None, None).await, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn revoked_access_token_is_refused_by_jti() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    f.authority.revoke(&public(&f).await, Some(&t.access_token)).await.unwrap();
    assert!(matches!(f.authority.authenticate_bearer(&t.access_token).await, Err(Error::InvalidToken(_))));
    assert!(!f.authority.introspect(&confidential(&f).await, Some(&t.access_token)).await.unwrap().active);
    let rt = t.refresh_token.unwrap();
    assert!(f.authority.token(&public(&f).await, &refresh_req(&rt), None, None).await.is_ok(), "the family lives on");
}

#[tokio::test]
async fn revoking_another_clients_or_an_unknown_token_succeeds_and_does_nothing() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let other = confidential(&f).await;
    f.authority.revoke(&other, t.refresh_token.as_deref()).await.unwrap();
    f.authority.revoke(&other, Some(&t.access_token)).await.unwrap();
    f.authority.revoke(&other, Some("garbage")).await.unwrap();
    f.authority.revoke(&other, Some("a.b.c")).await.unwrap();
    assert!(f.authority.authenticate_bearer(&t.access_token).await.is_ok());
    assert!(matches!(f.authority.revoke(&other, None).await, Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn introspection_is_for_confidential_clients_only() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    assert_eq!(
        f.authority.introspect(&public(&f).await, Some(&t.access_token)).await.unwrap_err(),
        Error::InvalidClient
    );
}

#[tokio::test]
async fn introspection_describes_active_tokens_of_any_client() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    let client = confidential(&f).await;
    let a = f.authority.introspect(&client, Some(&t.access_token)).await.unwrap();
    assert!(a.active);
    // SPEC-2: token_type is the token's type as a token response gives it,
    // and token_use says which kind of token it is.
    assert_eq!((a.token_type, a.token_use, a.cnf_jkt.as_deref()), (Some("Bearer"), Some("access_token"), None));
    assert_eq!(a.client_id.as_deref(), Some(PUBLIC_CLIENT));
    assert_eq!(a.sub, Some(f.account.id.to_string()));
    assert_eq!((a.iss.as_deref(), a.aud.as_deref()), (Some(ISSUER), Some(ISSUER)));
    assert!(a.jti.is_some() && a.exp.is_some() && a.iat.is_some());
    let r = f.authority.introspect(&client, t.refresh_token.as_deref()).await.unwrap();
    assert!(r.active);
    assert_eq!((r.token_type, r.token_use, r.scope.as_deref()), (None, Some("refresh_token"), Some("read")));
    let none = f.authority.introspect(&client, Some("unknown")).await.unwrap();
    assert_eq!(none, Introspection::default());
}

#[tokio::test]
async fn expired_access_token_is_invalid_token() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    f.clock.advance(Duration::seconds(900));
    assert!(matches!(f.authority.authenticate_bearer(&t.access_token).await, Err(Error::InvalidToken(_))));
}

// --- what an outside attack found (issue 17) ------------------------------------------

/// A verifier that holds every verification until released, and counts them.
struct HeldVerifier {
    entered: std::sync::atomic::AtomicUsize,
    gate: tokio::sync::Semaphore,
}

impl Default for HeldVerifier {
    fn default() -> Self {
        HeldVerifier { entered: Default::default(), gate: tokio::sync::Semaphore::new(0) }
    }
}

impl HeldVerifier {
    fn release(&self) {
        self.gate.add_permits(1 << 20);
    }

    /// Waits until `n` verifications have started, then a little longer, so
    /// that more would have started too if they could.
    async fn wait_for(&self, n: usize) {
        for _ in 0..500 {
            if self.entered.load(Ordering::SeqCst) >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[async_trait]
impl SecretVerifier for HeldVerifier {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await.map_err(|_| Error::Internal("gate closed".into()))?;
        Ok(stored.and_then(|h| h.as_str().strip_prefix("plain:")).is_some_and(|s| s == presented))
    }
}

/// The fixture's authority with `verifier` and `settings` changed.
fn with(f: &Fixture, verifier: Arc<dyn SecretVerifier>, change: impl FnOnce(&mut Settings)) -> Arc<Authority> {
    let mut settings = f.authority.settings().clone();
    change(&mut settings);
    Arc::new(Authority::new(settings, Services { verifier, ..f.authority.services().clone() }))
}

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

#[tokio::test]
async fn a_burst_of_concurrent_logins_gets_at_most_the_limit_checked() {
    let f = fixture().await;
    let held = Arc::new(HeldVerifier::default());
    let authority = with(&f, held.clone(), |_| {});
    let (session, _) = authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let id = session.id();
    let attempt = |password: &'static str| {
        let a = authority.clone();
        tokio::spawn(async move { a.login(id, USERNAME, password, ip(1)).await })
    };
    // Thirty wrong guesses at once, the limit being 10...
    let first: Vec<_> = (0..30).map(|_| attempt("wrong")).collect();
    held.wait_for(10).await;
    assert_eq!(held.entered.load(Ordering::SeqCst), 10, "only the limit of them reach the verifier");
    // ...and the right password at position 31, while those are checked: it
    // is not checked either, but waits for them.
    let right = attempt(PASSWORD);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!right.is_finished(), "the right password waits while the limit is being checked");
    held.release();
    let (mut failed, mut refused) = (0, 0);
    for t in first {
        match t.await.unwrap() {
            Err(Error::InvalidGrant(_)) => failed += 1,
            Err(Error::Throttled { .. }) => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((failed, refused), (10, 20));
    // Once the ten have failed, the waiting right password is refused.
    let right = right.await.unwrap();
    assert!(matches!(right, Err(Error::Throttled { code: ErrorCode::InvalidGrant, .. })), "{right:?}");
    assert_eq!(held.entered.load(Ordering::SeqCst), 10, "nothing past the limit was ever verified");
    let again = authority.login(id, USERNAME, PASSWORD, ip(1)).await;
    assert!(matches!(again, Err(Error::Throttled { code: ErrorCode::InvalidGrant, .. })), "{again:?}");
}

#[tokio::test]
async fn a_burst_of_concurrent_client_authentications_gets_at_most_the_limit_checked() {
    let f = fixture().await;
    let held = Arc::new(HeldVerifier::default());
    let authority = with(&f, held.clone(), |_| {});
    let attempt = |secret: &'static str| {
        let a = authority.clone();
        tokio::spawn(async move {
            a.authenticate_client(
                &ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: Some(secret), assertion: None },
                ip(1),
            )
            .await
            .map(|_| ())
        })
    };
    let first: Vec<_> = (0..30).map(|_| attempt("wrong")).collect();
    held.wait_for(10).await;
    assert_eq!(held.entered.load(Ordering::SeqCst), 10);
    let right = attempt(CONFIDENTIAL_SECRET);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!right.is_finished(), "the right secret waits while the limit is being checked");
    held.release();
    for t in first {
        assert!(t.await.unwrap().is_err());
    }
    let right = right.await.unwrap();
    assert!(matches!(right, Err(Error::Throttled { code: ErrorCode::InvalidClient, .. })), "{right:?}");
    assert_eq!(held.entered.load(Ordering::SeqCst), 10);
    let again = attempt(CONFIDENTIAL_SECRET).await.unwrap();
    assert!(matches!(again, Err(Error::Throttled { code: ErrorCode::InvalidClient, .. })), "{again:?}");
}

#[tokio::test]
async fn attempts_past_the_limit_wait_while_others_are_checked_and_then_run() {
    let f = fixture().await;
    let held = Arc::new(HeldVerifier::default());
    let authority = with(&f, held.clone(), |_| {});
    let attempt = || {
        let a = authority.clone();
        tokio::spawn(async move {
            a.authenticate_client(&Fixture::confidential_client(), ip(1)).await.map(|c| c.client().id().clone())
        })
    };
    let first: Vec<_> = (0..10).map(|_| attempt()).collect();
    held.wait_for(10).await;
    let eleventh = attempt();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(held.entered.load(Ordering::SeqCst), 10, "the limit is full of checks");
    assert!(!eleventh.is_finished(), "the eleventh waits for them");
    held.release();
    for t in first {
        assert!(t.await.unwrap().is_ok());
    }
    assert!(eleventh.await.unwrap().is_ok(), "and then runs");
    assert!(attempt().await.unwrap().is_ok(), "correct secrets leave nothing counted");
}

#[tokio::test]
async fn a_check_cancelled_before_its_outcome_leaves_nothing_counted() {
    let f = fixture().await;
    let held = Arc::new(HeldVerifier::default());
    let authority = with(&f, held.clone(), |_| {});
    let (session, _) = authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    let id = session.id();
    // Ten guesses reach the verifier, and their requests are cancelled there.
    let cancelled: Vec<_> = (0..10)
        .map(|_| {
            let a = authority.clone();
            tokio::spawn(async move { a.login(id, USERNAME, "wrong", ip(1)).await })
        })
        .collect();
    held.wait_for(10).await;
    for t in &cancelled {
        t.abort();
    }
    for t in cancelled {
        assert!(t.await.unwrap_err().is_cancelled());
    }
    held.release();
    // Nothing of them is left: the limit of ten failures is all still there.
    for _ in 0..10 {
        let e = authority.login(id, USERNAME, "wrong", ip(1)).await.unwrap_err();
        assert!(matches!(e, Error::InvalidGrant(_)), "{e:?}");
    }
    let last = authority.login(id, USERNAME, PASSWORD, ip(1)).await;
    assert!(matches!(last, Err(Error::Throttled { .. })), "{last:?}");
}

#[tokio::test]
async fn a_correct_password_takes_its_count_back() {
    let f = fixture().await;
    let (session, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
    for _ in 0..9 {
        assert!(f.authority.login(session.id(), USERNAME, "wrong", ip(1)).await.is_err());
    }
    // Nine failures; successes in between do not add to them.
    for _ in 0..5 {
        let (s, _) = f.authority.authorize(&Fixture::public_request(), None, None).await.unwrap();
        assert!(f.authority.login(s.id(), USERNAME, PASSWORD, ip(1)).await.is_ok());
    }
    assert!(matches!(f.authority.login(session.id(), USERNAME, "wrong", ip(1)).await, Err(Error::InvalidGrant(_))));
    let last = f.authority.login(session.id(), USERNAME, PASSWORD, ip(1)).await;
    assert!(matches!(last, Err(Error::Throttled { .. })), "the tenth failure reached the limit: {last:?}");
}

#[tokio::test]
async fn a_stranger_elsewhere_cannot_lock_an_account_out() {
    let f = fixture().await;
    let authority = with(&f, f.authority.services().verifier.clone(), |s| {
        s.throttle.max_failures_per_account_total = 25;
    });
    let client = confidential(&f).await;
    let password = |pw: &'static str| TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(pw),
        ..Default::default()
    };
    for _ in 0..10 {
        assert!(matches!(
            authority.token(&client, &password("wrong"), None, ip(66)).await,
            Err(Error::InvalidGrant(_))
        ));
    }
    let from_attacker = authority.token(&client, &password(PASSWORD), None, ip(66)).await;
    assert!(matches!(from_attacker, Err(Error::Throttled { .. })), "{from_attacker:?}");
    assert!(authority.token(&client, &password(PASSWORD), None, ip(1)).await.is_ok(), "the user, elsewhere, logs in");
    // Many addresses together still meet the account's total.
    for last in 67..70 {
        for _ in 0..5 {
            assert!(authority.token(&client, &password("wrong"), None, ip(last)).await.is_err());
        }
    }
    let total = authority.token(&client, &password(PASSWORD), None, ip(1)).await;
    assert!(matches!(total, Err(Error::Throttled { .. })), "25 failures from all addresses: {total:?}");
}

#[tokio::test]
async fn requests_naming_a_public_client_never_lock_it_out() {
    let f = fixture().await;
    let bad =
        ClientCredentials { client_id: Some(PUBLIC_CLIENT), secret: Some("a public client has none"), assertion: None };
    for _ in 0..50 {
        assert_eq!(f.authority.authenticate_client(&bad, ip(66)).await.unwrap_err(), Error::InvalidClient);
    }
    assert!(f.authority.authenticate_client(&Fixture::public_client(), ip(1)).await.is_ok(), "from elsewhere");
    assert!(f.authority.authenticate_client(&Fixture::public_client(), ip(66)).await.is_ok(), "and from there");
    let (_, code) = f.issued_code().await.unwrap();
    let client = f.authority.authenticate_client(&Fixture::public_client(), ip(1)).await.unwrap();
    assert!(f.authority.token(&client, &Fixture::code_request(&code), None, ip(1)).await.is_ok());
}

#[tokio::test]
async fn authorization_sessions_past_max_pending_per_ip_get_the_429_page() {
    let f = fixture().await;
    let authority = with(&f, f.authority.services().verifier.clone(), |s| s.throttle.max_pending_per_ip = 3);
    let open = |peer| {
        let a = authority.clone();
        async move { a.authorize(&Fixture::public_request(), None, peer).await }
    };
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(open(ip(66)).await.unwrap().0);
    }
    let fourth = open(ip(66)).await;
    let Err(AuthorizeRejection::Page(Error::TooManyPending { retry_after })) = fourth else {
        panic!("the fourth pending session from one address is refused with a page: {fourth:?}")
    };
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert!(open(ip(1)).await.is_ok(), "another address is not affected");
    // A login ends a session's pending state and frees its place.
    authority.login(sessions[0].id(), USERNAME, PASSWORD, ip(66)).await.unwrap();
    assert!(open(ip(66)).await.is_ok());
    assert!(open(ip(66)).await.is_err());
    // Pending sessions expire with their lifetime.
    f.clock.advance(Duration::seconds(600));
    assert!(open(ip(66)).await.is_ok());
}

/// `prompt=none` without a browser session ends the session with
/// `login_required` (issue 19's early return in `proceed`): it must not keep
/// its place among the address's pending sessions.
#[tokio::test]
async fn a_prompt_none_request_ending_in_login_required_is_no_longer_pending() {
    let f = fixture().await;
    let authority = with(&f, f.authority.services().verifier.clone(), |s| s.throttle.max_pending_per_ip = 2);
    let none = AuthorizeRequest { prompt: Some("none"), ..Fixture::openid_request() };
    for _ in 0..5 {
        let (session, _) = authority.authorize(&none, None, ip(66)).await.unwrap();
        let Step::Redirect(location) = authority.proceed(session.id(), None).await.unwrap() else {
            panic!("prompt=none shows no page")
        };
        assert_eq!(query_param(&location, "error").as_deref(), Some("login_required"));
    }
    // Five ended without a login; the cap of two still has room for two.
    for _ in 0..2 {
        assert!(authority.authorize(&Fixture::openid_request(), None, ip(66)).await.is_ok());
    }
    assert!(authority.authorize(&Fixture::openid_request(), None, ip(66)).await.is_err(), "the cap still holds");
}

/// Single sign-on with a remembered consent answers a code without a page
/// (issue 19's early return in `after_authentication`): the session is no
/// longer pending for its address.
#[tokio::test]
async fn single_sign_on_with_remembered_consent_is_no_longer_pending() {
    let f = fixture().await;
    let authority = with(&f, f.authority.services().verifier.clone(), |s| s.throttle.max_pending_per_ip = 2);
    let (first, _) = authority.authorize(&Fixture::openid_request(), None, ip(66)).await.unwrap();
    let signed = authority.sign_in(first.id(), USERNAME, PASSWORD, ip(66), None).await.unwrap();
    let LoginOutcome::Consent(consent) = signed.outcome else { panic!("the consent page first") };
    authority.decide(consent.id(), true).await.unwrap();
    for _ in 0..5 {
        let (session, _) = authority.authorize(&Fixture::openid_request(), None, ip(66)).await.unwrap();
        let Step::Redirect(location) = authority.proceed(session.id(), Some(&signed.cookie)).await.unwrap() else {
            panic!("a remembered consent shows no page")
        };
        assert!(query_param(&location, "code").is_some(), "{location}");
    }
    for _ in 0..2 {
        assert!(authority.authorize(&Fixture::openid_request(), None, ip(66)).await.is_ok());
    }
    assert!(authority.authorize(&Fixture::openid_request(), None, ip(66)).await.is_err(), "the cap still holds");
}

#[tokio::test]
async fn oversized_redirect_uri_scope_are_refused() {
    let f = fixture().await;
    let host = |redirect: &'static str, scope: &'static str| AuthorizeRequest {
        client_id: Some(HOST_CLIENT),
        redirect_uri: Some(redirect),
        response_type: Some("code"),
        scope: Some(scope),
        state: Some("s"),
        ..Default::default()
    };
    let long: &'static str = Box::leak(format!("https://{HOST_CLIENT}/cb?q={}", "a".repeat(2040)).into_boxed_str());
    assert!(long.len() > 2048);
    let AuthorizeRejection::Page(e) = reject(&f, host(long, "1")).await else { panic!("a page, never a redirect") };
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    let fits: &'static str = &long[..2048];
    assert!(f.authority.authorize(&host(fits, "1"), None, None).await.is_ok(), "2048 bytes are allowed");
    let scope: &'static str = Box::leak("1 ".repeat(513).into_boxed_str());
    let (e, location) = redirect_of(reject(&f, host(fits, scope)).await);
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn a_redirect_uri_carrying_response_parameters_gets_the_error_page() {
    let f = fixture().await;
    let req = AuthorizeRequest {
        client_id: Some(HOST_CLIENT),
        redirect_uri: Some("https://pgo.example.org/cb?code=X&state=Y&iss=https://evil.example"),
        response_type: Some("code"),
        scope: Some("1"),
        state: Some("s"),
        ..Default::default()
    };
    assert!(matches!(reject(&f, req).await, AuthorizeRejection::Page(Error::InvalidRedirectUri)));
}

#[tokio::test]
async fn a_revoked_access_token_stays_revoked_for_the_leeway_past_its_expiry() {
    let f = fixture().await;
    let t = code_tokens(&f).await;
    f.authority.revoke(&public(&f).await, Some(&t.access_token)).await.unwrap();
    let claims = f.authority.services().tokens.verify(&t.access_token, f.clock.now()).await.unwrap();
    // A verifier with the leeway still accepts the token 29 s past `exp`: the
    // store must still say it is revoked then, and the sweep must keep it.
    let inside = claims.expires_at + Duration::seconds(29);
    store(&f).sweep(inside, inside).await.unwrap();
    assert!(store(&f).access_token_revoked(claims.jti, None, inside).await.unwrap());
    let past = claims.expires_at + Duration::seconds(30);
    assert!(!store(&f).access_token_revoked(claims.jti, None, past).await.unwrap(), "then it may go");
}

#[tokio::test]
async fn a_replayed_codes_grant_outlives_its_access_token_by_the_leeway() {
    // The host-bound client gets no refresh token: its grant lives as long as
    // its one access token, plus the leeway.
    let f = fixture().await;
    let req = AuthorizeRequest {
        client_id: Some(HOST_CLIENT),
        redirect_uri: Some("https://pgo.example.org/cb"),
        response_type: Some("code"),
        scope: Some("1"),
        ..Default::default()
    };
    let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
    f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
    let code = query_param(&f.authority.decide(session.id(), true).await.unwrap(), "code").unwrap();
    let client = f
        .authority
        .authenticate_client(&ClientCredentials { client_id: Some(HOST_CLIENT), secret: None, assertion: None }, None);
    let client = client.await.unwrap();
    let exchange = TokenRequest {
        grant_type: Some("authorization_code"),
        code: Some(&code),
        redirect_uri: Some("https://pgo.example.org/cb"),
        ..Default::default()
    };
    let t = f.authority.token(&client, &exchange, None, None).await.unwrap();
    assert!(f.authority.token(&client, &exchange, None, None).await.is_err(), "the replay revokes the grant");
    let claims = f.authority.services().tokens.verify(&t.access_token, f.clock.now()).await.unwrap();
    let inside = claims.expires_at + Duration::seconds(29);
    store(&f).sweep(inside, inside).await.unwrap();
    assert!(store(&f).access_token_revoked(claims.jti, claims.grant, inside).await.unwrap(), "the grant was kept");
}

#[tokio::test]
async fn introspection_judges_expiry_without_the_leeway() {
    // A codec that, like a JWT verifier, accepts a token for 30 s past `exp`.
    struct Lenient(JsonTokens);
    #[async_trait]
    impl AccessTokenCodec for Lenient {
        async fn mint(&self, c: &AccessTokenClaims) -> Result<String> {
            self.0.mint(c).await
        }
        async fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessTokenClaims> {
            self.0.verify(token, now - Duration::seconds(30)).await
        }
        fn is_access_token(&self, token: &str) -> bool {
            self.0.is_access_token(token)
        }
    }
    let f = fixture().await;
    let authority = Authority::new(
        f.authority.settings().clone(),
        Services { tokens: Arc::new(Lenient(JsonTokens)), ..f.authority.services().clone() },
    );
    let client = authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap();
    let cc = TokenRequest { grant_type: Some("client_credentials"), ..Default::default() };
    let t = authority.token(&client, &cc, None, None).await.unwrap();
    assert!(authority.introspect(&client, Some(&t.access_token)).await.unwrap().active);
    f.clock.advance(Duration::seconds(900));
    assert!(authority.authenticate_bearer(&t.access_token).await.is_ok(), "inside the leeway a verifier accepts it");
    assert!(!authority.introspect(&client, Some(&t.access_token)).await.unwrap().active, "introspection does not");
}

#[tokio::test]
async fn refresh_token_max_lifetime_bounds_the_family_even_below_the_access_token_ttl() {
    let f = fixture().await;
    let authority = with(&f, f.authority.services().verifier.clone(), |s| {
        s.refresh_token_max_lifetime = Duration::seconds(300);
        s.refresh_token_ttl = Duration::seconds(200);
    });
    let client = authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap();
    let pw = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..Default::default()
    };
    let mut rt = authority.token(&client, &pw, None, None).await.unwrap().refresh_token.unwrap();
    for step in [150, 149] {
        f.clock.advance(Duration::seconds(step));
        rt = authority.token(&client, &refresh_req(&rt), None, None).await.unwrap().refresh_token.unwrap();
    }
    f.clock.advance(Duration::seconds(2)); // 301 s: past the family's 300, inside the idle 200 and the access 900.
    let late = authority.token(&client, &refresh_req(&rt), None, None).await;
    assert!(matches!(late, Err(Error::InvalidGrant(_))), "{late:?}");
}
