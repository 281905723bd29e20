//! The second stage's flows in the core: DPoP (RFC 9449), pushed
//! authorization requests (RFC 9126), `private_key_jwt` (RFC 7523), the
//! refresh options and the FAPI 2.0 switch, against the memory store with a
//! manual clock. Proofs and assertions are the unsigned test doubles of
//! `JsonProofs`, so these tests check the core's rules; signatures are
//! `oauth-jwt`'s (its tests, and the HTTP tests with real JOSE libraries).
//! One test per rule; names state the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::sync::Arc;

use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use serde_json::{Value, json};
use time::Duration;

const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const OTHER_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const TOKEN_URL: &str = "https://as.example/token";
const RESOURCE_URL: &str = "https://as.example/userinfo";

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemStore::new()), None).await.unwrap()
}

async fn fixture_with(edit: impl FnOnce(&mut Settings)) -> Fixture {
    Fixture::with_settings(Arc::new(MemStore::new()), None, edit).await.unwrap()
}

fn now(f: &Fixture) -> i64 {
    Clock::now(&*f.clock).unix_timestamp()
}

/// A proof for the token endpoint by key `jkt`, with claims changed by `edit`.
fn proof(f: &Fixture, jkt: &str, jti: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({"jkt": jkt, "jti": jti, "htm": "POST", "htu": TOKEN_URL, "iat": now(f)});
    edit(&mut claims);
    JsonProofs::proof(&claims)
}

fn at_token() -> DpopRequest<'static> {
    DpopRequest { method: "POST", url: TOKEN_URL, access_token: None, issuing: true }
}

async fn check(f: &Fixture, proof: String) -> Result<DpopVerified> {
    f.authority.check_dpop(&proof, &at_token(), None).await
}

async fn checked(f: &Fixture, jkt: &str, jti: &str) -> DpopVerified {
    f.authority.check_dpop(&proof(f, jkt, jti, |_| {}), &at_token(), None).await.unwrap()
}

async fn client(f: &Fixture, id: &str, secret: Option<&str>) -> AuthenticatedClient {
    let creds = ClientCredentials { client_id: Some(id), secret, assertion: None };
    f.authority.authenticate_client(&creds, None).await.unwrap()
}

fn cc() -> TokenRequest<'static> {
    TokenRequest { grant_type: Some("client_credentials"), ..TokenRequest::default() }
}

fn refresh_req(token: &str) -> TokenRequest<'_> {
    TokenRequest { grant_type: Some("refresh_token"), refresh_token: Some(token), ..TokenRequest::default() }
}

async fn confidential(f: &Fixture) -> AuthenticatedClient {
    client(f, CONFIDENTIAL_CLIENT, Some(CONFIDENTIAL_SECRET)).await
}

/// The public client's code flow up to its tokens, with `dpop` at the token
/// endpoint.
async fn public_tokens(f: &Fixture, dpop: Option<DpopVerified>) -> TokenResponse {
    let (_, code) = f.issued_code().await.unwrap();
    let public = client(f, PUBLIC_CLIENT, None).await;
    f.authority.token(&public, &Fixture::code_request(&code), dpop, None).await.unwrap()
}

fn invalid_proof<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(Error::InvalidDpopProof(_)))
}

// --- DPoP at the token endpoint ------------------------------------------------------

#[tokio::test]
async fn a_proof_binds_the_access_token_to_its_key() {
    let f = fixture().await;
    let t = f.authority.token(&confidential(&f).await, &cc(), Some(checked(&f, JKT, "j1").await), None).await.unwrap();
    assert_eq!(t.token_type, "DPoP");
    let claims = JsonTokens.verify(&t.access_token, Clock::now(&*f.clock)).await.unwrap();
    assert_eq!(claims.jkt.as_deref(), Some(JKT));
    let bearer = f.authority.token(&confidential(&f).await, &cc(), None, None).await.unwrap();
    assert_eq!(bearer.token_type, "Bearer", "no proof, no binding");
}

#[tokio::test]
async fn a_proof_for_another_method_or_url_is_invalid_dpop_proof() {
    let f = fixture().await;
    assert!(invalid_proof(check(&f, proof(&f, JKT, "m", |c| c["htm"] = json!("GET"))).await));
    assert!(invalid_proof(check(&f, proof(&f, JKT, "u", |c| c["htu"] = json!("https://as.example/par"))).await));
    assert!(invalid_proof(check(&f, proof(&f, JKT, "h", |c| c["htu"] = json!("https://evil.example/token"))).await));
    // RFC 9449 4.3: the URL is compared without its query and fragment.
    assert!(check(&f, proof(&f, JKT, "q", |c| c["htu"] = json!(format!("{TOKEN_URL}?x=1#y")))).await.is_ok());
}

#[tokio::test]
async fn a_stale_or_future_proof_is_invalid_dpop_proof() {
    let f = fixture().await;
    let t = now(&f);
    let at = |iat: i64, jti: &str| proof(&f, JKT, jti, |c| c["iat"] = json!(iat));
    assert!(invalid_proof(check(&f, at(t - 61, "old")).await), "max_age is 60 s");
    assert!(check(&f, at(t - 60, "edge")).await.is_ok());
    assert!(invalid_proof(check(&f, at(t + 31, "future")).await), "the leeway is 30 s");
    assert!(check(&f, at(t + 30, "soon")).await.is_ok());
}

#[tokio::test]
async fn a_replayed_proof_is_invalid_dpop_proof() {
    let f = fixture().await;
    let p = proof(&f, JKT, "once", |_| {});
    assert!(f.authority.check_dpop(&p, &at_token(), None).await.is_ok());
    assert!(invalid_proof(f.authority.check_dpop(&p, &at_token(), None).await));
    // The same jti under another key is another proof.
    assert!(f.authority.check_dpop(&proof(&f, OTHER_JKT, "once", |_| {}), &at_token(), None).await.is_ok());
}

#[tokio::test]
async fn a_replayed_proof_is_a_security_event() {
    let f = fixture().await;
    let p = proof(&f, JKT, "once", |_| {});
    f.authority.check_dpop(&p, &at_token(), None).await.unwrap();
    assert_eq!(f.events.take(), vec![], "a first use is no event");
    assert!(invalid_proof(f.authority.check_dpop(&p, &at_token(), None).await));
    let events = f.events.take();
    assert_eq!(events, vec![SecurityEvent::DpopProofReplayed { jkt: JKT.into() }]);
    assert_eq!(events[0].kind().as_str(), "dpop_proof_replay");
}

#[tokio::test]
async fn the_proof_replay_cache_lives_in_the_store_and_is_swept_at_expiry() {
    let store = Arc::new(MemStore::new());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let p = proof(&f, JKT, "kept", |_| {});
    f.authority.check_dpop(&p, &at_token(), None).await.unwrap();
    // A second authority on the same store (another node, or a restart)
    // knows the proof.
    let again = Fixture::new(store.clone(), None).await.unwrap();
    assert!(invalid_proof(again.authority.check_dpop(&p, &at_token(), None).await));
    let early = Clock::now(&*f.clock) + Duration::seconds(30);
    assert_eq!(store.sweep(early, early).await.unwrap().records, 0, "a live proof record stays");
    let late = Clock::now(&*f.clock) + Duration::seconds(62);
    assert_eq!(store.sweep(late, late).await.unwrap().records, 1, "swept once the proof is too old to use");
}

#[tokio::test]
async fn a_client_that_must_use_dpop_gets_nothing_without_a_proof() {
    let f = fixture().await;
    let (_, code) = {
        let (session, _) = f
            .authority
            .authorize(&AuthorizeRequest { client_id: Some(DPOP_CLIENT), ..Fixture::public_request() }, None, None)
            .await
            .unwrap();
        f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
        let location = f.authority.decide(session.id(), true).await.unwrap();
        (session, query_param(&location, "code").unwrap())
    };
    let dpop_client = client(&f, DPOP_CLIENT, None).await;
    let err = f.authority.token(&dpop_client, &Fixture::code_request(&code), None, None).await;
    assert!(invalid_proof(err));
}

#[tokio::test]
async fn a_code_bound_by_dpop_jkt_needs_a_proof_by_that_key() {
    for (sent, ok) in [(None, false), (Some(OTHER_JKT), false), (Some(JKT), true)] {
        let f = fixture().await;
        let req = AuthorizeRequest { dpop_jkt: Some(JKT), ..Fixture::public_request() };
        let (session, _) = f.authority.authorize(&req, None, None).await.unwrap();
        assert_eq!(session.dpop_jkt(), Some(JKT));
        f.authority.login(session.id(), USERNAME, PASSWORD, None).await.unwrap();
        let code = query_param(&f.authority.decide(session.id(), true).await.unwrap(), "code").unwrap();
        let dpop = match sent {
            Some(jkt) => Some(checked(&f, jkt, "c").await),
            None => None,
        };
        let public = client(&f, PUBLIC_CLIENT, None).await;
        let result = f.authority.token(&public, &Fixture::code_request(&code), dpop, None).await;
        assert_eq!(result.is_ok(), ok, "{sent:?}: {result:?}");
        if !ok {
            assert!(invalid_proof(result));
        }
    }
}

#[tokio::test]
async fn a_malformed_dpop_jkt_is_redirected_as_invalid_request() {
    let f = fixture().await;
    let req = AuthorizeRequest { dpop_jkt: Some("not-a-thumbprint"), ..Fixture::public_request() };
    match f.authority.authorize(&req, None, None).await.unwrap_err() {
        AuthorizeRejection::Redirect { error, .. } => assert!(matches!(error, Error::InvalidRequest(_))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn public_clients_refresh_tokens_are_bound_to_the_proofs_key() {
    let f = fixture().await;
    let t = public_tokens(&f, Some(checked(&f, JKT, "code").await)).await;
    assert_eq!(t.token_type, "DPoP");
    let public = client(&f, PUBLIC_CLIENT, None).await;
    let rt = t.refresh_token.as_deref().unwrap();
    let none = f.authority.token(&public, &refresh_req(rt), None, None).await;
    assert!(matches!(none, Err(Error::InvalidGrant(_))), "{none:?}");
    let other = f.authority.token(&public, &refresh_req(rt), Some(checked(&f, OTHER_JKT, "r1").await), None).await;
    assert!(matches!(other, Err(Error::InvalidGrant(_))), "{other:?}");
    // Refused presentations revoked nothing: the holder of the key goes on.
    let next = f.authority.token(&public, &refresh_req(rt), Some(checked(&f, JKT, "r2").await), None).await.unwrap();
    assert_eq!(next.token_type, "DPoP");
    let intro = f.authority.introspect(&confidential(&f).await, next.refresh_token.as_deref()).await.unwrap();
    assert_eq!((intro.active, intro.cnf_jkt.as_deref()), (true, Some(JKT)));
}

#[tokio::test]
async fn confidential_clients_refresh_tokens_are_not_bound_to_a_key() {
    let f = fixture().await;
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..TokenRequest::default()
    };
    let c = confidential(&f).await;
    let t = f.authority.token(&c, &req, Some(checked(&f, JKT, "p").await), None).await.unwrap();
    assert_eq!(t.token_type, "DPoP");
    let r = f.authority.token(&c, &refresh_req(t.refresh_token.as_deref().unwrap()), None, None).await.unwrap();
    assert_eq!(r.token_type, "Bearer", "RFC 9449 5: bound by the client's authentication instead");
}

// --- nonces --------------------------------------------------------------------------

#[tokio::test]
async fn a_required_nonce_is_asked_for_with_use_dpop_nonce() {
    let f = fixture_with(|s| s.dpop.require_nonce = true).await;
    let nonce = match f.authority.check_dpop(&proof(&f, JKT, "n0", |_| {}), &at_token(), None).await {
        Err(Error::UseDpopNonce { nonce }) => nonce,
        other => panic!("{other:?}"),
    };
    assert_eq!(nonce, f.authority.dpop_nonce().await.unwrap());
    let with = proof(&f, JKT, "n1", |c| c["nonce"] = json!(nonce));
    assert!(f.authority.check_dpop(&with, &at_token(), None).await.is_ok());
    let wrong = proof(&f, JKT, "n2", |c| c["nonce"] = json!("made-up"));
    assert!(matches!(f.authority.check_dpop(&wrong, &at_token(), None).await, Err(Error::UseDpopNonce { .. })));
    // Resources do not ask for nonces.
    let resource = DpopRequest { issuing: false, ..at_token() };
    assert!(f.authority.check_dpop(&proof(&f, JKT, "n3", |_| {}), &resource, None).await.is_ok());
}

#[tokio::test]
async fn a_nonce_from_nowhere_is_invalid_dpop_proof() {
    let f = fixture().await;
    let made_up = proof(&f, JKT, "x", |c| c["nonce"] = json!("never-given"));
    assert!(invalid_proof(f.authority.check_dpop(&made_up, &at_token(), None).await));
}

#[tokio::test]
async fn nodes_on_one_store_share_nonces_and_nonces_rotate_by_window() {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let a = Fixture::with_settings(store.clone(), None, |s| s.dpop.require_nonce = true).await.unwrap();
    let b = Fixture::with_settings(store.clone(), None, |s| s.dpop.require_nonce = true).await.unwrap();
    let nonce = a.authority.dpop_nonce().await.unwrap();
    assert_eq!(b.authority.dpop_nonce().await.unwrap(), nonce, "every node gives the same nonce");
    let with = |f: &Fixture, jti: &str, n: &str| proof(f, JKT, jti, |c| c["nonce"] = json!(n));
    assert!(b.authority.check_dpop(&with(&b, "b1", &nonce), &at_token(), None).await.is_ok());
    // The next window gives a new nonce, and still takes the last one.
    for f in [&a, &b] {
        f.clock.advance(NONCE_WINDOW);
    }
    let next = a.authority.dpop_nonce().await.unwrap();
    assert_ne!(next, nonce);
    assert!(b.authority.check_dpop(&with(&b, "b2", &nonce), &at_token(), None).await.is_ok());
    for f in [&a, &b] {
        f.clock.advance(NONCE_WINDOW);
    }
    let old = b.authority.check_dpop(&with(&b, "b3", &nonce), &at_token(), None).await;
    assert!(matches!(old, Err(Error::UseDpopNonce { .. })), "{old:?}");
}

// --- DPoP at a resource --------------------------------------------------------------

fn resource_proof(f: &Fixture, jkt: &str, jti: &str, token: &str, edit: impl FnOnce(&mut Value)) -> String {
    use base64::Engine;
    use sha2::Digest;
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes()));
    proof(f, jkt, jti, |c| {
        c["htm"] = json!("GET");
        c["htu"] = json!(RESOURCE_URL);
        c["ath"] = json!(ath);
        edit(c);
    })
}

#[tokio::test]
async fn a_bound_token_is_accepted_with_a_proof_by_its_key_for_this_request() {
    let f = fixture().await;
    let t = public_tokens(&f, Some(checked(&f, JKT, "code").await)).await;
    let at = t.access_token.as_str();
    let dpop = |p: String| {
        let f = &f;
        async move { f.authority.authenticate_dpop(at, &p, "GET", RESOURCE_URL).await }
    };
    assert!(dpop(resource_proof(&f, JKT, "ok", at, |_| {})).await.is_ok());
    assert!(invalid_proof(dpop(resource_proof(&f, OTHER_JKT, "key", at, |_| {})).await), "another key");
    assert!(invalid_proof(dpop(resource_proof(&f, JKT, "ath", at, |c| c["ath"] = json!("x"))).await), "wrong ath");
    let no_ath = resource_proof(&f, JKT, "noath", at, |c| {
        c.as_object_mut().unwrap().remove("ath");
    });
    assert!(invalid_proof(dpop(no_ath).await), "missing ath");
    assert!(invalid_proof(dpop(resource_proof(&f, JKT, "ok", at, |_| {})).await), "replayed");
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_invalid_token() {
    let f = fixture().await;
    let t = public_tokens(&f, Some(checked(&f, JKT, "code").await)).await;
    let err = f.authority.authenticate_bearer(&t.access_token).await.unwrap_err();
    assert_eq!((err.clone(), err.status(), err.code()), (Error::BoundTokenAsBearer, 401, ErrorCode::InvalidToken));
}

#[tokio::test]
async fn an_unbound_token_sent_with_the_dpop_scheme_is_invalid_token() {
    let f = fixture().await;
    let t = public_tokens(&f, None).await;
    let p = resource_proof(&f, JKT, "u", &t.access_token, |_| {});
    let err = f.authority.authenticate_dpop(&t.access_token, &p, "GET", RESOURCE_URL).await;
    assert!(matches!(err, Err(Error::InvalidToken(_))), "{err:?}");
}

#[tokio::test]
async fn introspection_shows_cnf_and_the_dpop_type_of_a_bound_token() {
    let f = fixture().await;
    let t = public_tokens(&f, Some(checked(&f, JKT, "code").await)).await;
    let i = f.authority.introspect(&confidential(&f).await, Some(&t.access_token)).await.unwrap();
    assert_eq!((i.active, i.token_type, i.token_use), (true, Some("DPoP"), Some("access_token")));
    assert_eq!(i.cnf_jkt.as_deref(), Some(JKT));
}

// --- pushed authorization requests ---------------------------------------------------

async fn push(f: &Fixture, client: &AuthenticatedClient, req: AuthorizeRequest<'_>) -> Result<PushedAuthorization> {
    f.authority.push_authorization_request(client, &req, None, None).await
}

fn by_uri<'a>(client_id: &'a str, uri: &'a str) -> AuthorizeRequest<'a> {
    AuthorizeRequest { client_id: Some(client_id), request_uri: Some(uri), ..AuthorizeRequest::default() }
}

fn page_error<T: std::fmt::Debug>(r: std::result::Result<T, AuthorizeRejection>) -> Error {
    match r.unwrap_err() {
        AuthorizeRejection::Page(e) => e,
        other => panic!("not an error page: {other:?}"),
    }
}

#[tokio::test]
async fn a_pushed_request_is_used_once_for_its_own_parameters() {
    let f = fixture().await;
    let public = client(&f, PUBLIC_CLIENT, None).await;
    let pushed = push(&f, &public, Fixture::public_request()).await.unwrap();
    assert!(pushed.request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(pushed.expires_in, 60);
    let (session, _) = f.authority.authorize(&by_uri(PUBLIC_CLIENT, &pushed.request_uri), None, None).await.unwrap();
    assert_eq!(session.client_state().map(State::as_str), Some("st4te"));
    assert_eq!(session.redirect_uri().as_str(), REDIRECT_URI);
    assert!(session.code_challenge().is_some());
    let again = f.authority.authorize(&by_uri(PUBLIC_CLIENT, &pushed.request_uri), None, None).await;
    assert!(matches!(page_error(again), Error::InvalidRequest(_)), "a request_uri works once");
}

#[tokio::test]
async fn an_expired_or_unknown_request_uri_gets_the_error_page() {
    let f = fixture().await;
    let pushed = push(&f, &client(&f, PUBLIC_CLIENT, None).await, Fixture::public_request()).await.unwrap();
    f.clock.advance(PUSHED_REQUEST_TTL);
    let late = f.authority.authorize(&by_uri(PUBLIC_CLIENT, &pushed.request_uri), None, None).await;
    assert!(matches!(page_error(late), Error::InvalidRequest(_)));
    for unknown in ["urn:ietf:params:oauth:request_uri:nope", "https://evil.example/req", ""] {
        let r = f.authority.authorize(&by_uri(PUBLIC_CLIENT, unknown), None, None).await;
        assert!(matches!(page_error(r), Error::InvalidRequest(_)), "{unknown}");
    }
}

#[tokio::test]
async fn another_clients_request_uri_is_refused_and_stays_usable_for_its_own() {
    let f = fixture().await;
    let pushed = push(
        &f,
        &confidential(&f).await,
        AuthorizeRequest { client_id: Some(CONFIDENTIAL_CLIENT), ..Fixture::public_request() },
    )
    .await
    .unwrap();
    let foreign = f.authority.authorize(&by_uri(PUBLIC_CLIENT, &pushed.request_uri), None, None).await;
    assert!(matches!(page_error(foreign), Error::InvalidRequest(_)));
    assert!(f.authority.authorize(&by_uri(CONFIDENTIAL_CLIENT, &pushed.request_uri), None, None).await.is_ok());
}

#[tokio::test]
async fn pushed_request_errors_are_answered_not_redirected() {
    let f = fixture().await;
    let public = client(&f, PUBLIC_CLIENT, None).await;
    let bad_scope = push(&f, &public, AuthorizeRequest { scope: Some("admin"), ..Fixture::public_request() }).await;
    assert!(matches!(bad_scope, Err(Error::InvalidScope(_))));
    let bad_redirect = push(
        &f,
        &public,
        AuthorizeRequest { redirect_uri: Some("https://evil.example/cb"), ..Fixture::public_request() },
    )
    .await;
    assert_eq!(bad_redirect.unwrap_err(), Error::InvalidRedirectUri);
    let other_id =
        push(&f, &public, AuthorizeRequest { client_id: Some(CONFIDENTIAL_CLIENT), ..Fixture::public_request() });
    assert!(matches!(other_id.await, Err(Error::InvalidRequest(_))), "client_id must be the authenticated client");
    let nested = push(&f, &public, AuthorizeRequest { request_uri: Some("urn:x"), ..Fixture::public_request() });
    assert!(matches!(nested.await, Err(Error::InvalidRequest(_))));
}

#[tokio::test]
async fn a_client_that_must_push_gets_invalid_request_redirected_at_authorize() {
    let f = fixture().await;
    let plain = AuthorizeRequest { client_id: Some(PAR_CLIENT), ..Fixture::public_request() };
    match f.authority.authorize(&plain, None, None).await.unwrap_err() {
        AuthorizeRejection::Redirect { error, location } => {
            assert!(matches!(error, Error::InvalidRequest(_)));
            assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
            assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
        }
        other => panic!("{other:?}"),
    }
    let pushed = push(&f, &client(&f, PAR_CLIENT, None).await, plain).await.unwrap();
    assert!(f.authority.authorize(&by_uri(PAR_CLIENT, &pushed.request_uri), None, None).await.is_ok());
}

#[tokio::test]
async fn the_server_wide_par_requirement_covers_every_client() {
    let f = fixture_with(|s| s.require_pushed_authorization_requests = true).await;
    let r = f.authority.authorize(&Fixture::public_request(), None, None).await;
    assert!(matches!(r, Err(AuthorizeRejection::Redirect { error: Error::InvalidRequest(_), .. })));
}

#[tokio::test]
async fn a_proof_at_par_binds_the_code_to_its_key() {
    let f = fixture().await;
    let public = client(&f, PUBLIC_CLIENT, None).await;
    let par_proof = checked(&f, JKT, "par").await;
    let pushed =
        f.authority.push_authorization_request(&public, &Fixture::public_request(), Some(par_proof), None).await;
    let (session, _) =
        f.authority.authorize(&by_uri(PUBLIC_CLIENT, &pushed.unwrap().request_uri), None, None).await.unwrap();
    assert_eq!(session.dpop_jkt(), Some(JKT));
    let mismatch = AuthorizeRequest { dpop_jkt: Some(OTHER_JKT), ..Fixture::public_request() };
    let refused =
        f.authority.push_authorization_request(&public, &mismatch, Some(checked(&f, JKT, "par2").await), None);
    assert!(invalid_proof(refused.await));
}

// --- private_key_jwt -----------------------------------------------------------------

fn assertion(f: &Fixture, jti: &str, edit: impl FnOnce(&mut Value)) -> String {
    let t = now(f);
    let mut claims =
        json!({"iss": KEYS_CLIENT, "sub": KEYS_CLIENT, "aud": ISSUER, "exp": t + 60, "iat": t, "jti": jti});
    edit(&mut claims);
    JsonProofs::assertion(KEYS_CLIENT_KEY, &claims)
}

async fn by_assertion(f: &Fixture, client_id: Option<&str>, a: &str) -> Result<AuthenticatedClient> {
    let creds = ClientCredentials { client_id, secret: None, assertion: Some(a) };
    f.authority.authenticate_client(&creds, None).await
}

#[tokio::test]
async fn a_client_assertion_authenticates_its_client_with_or_without_client_id() {
    let f = fixture().await;
    let c = by_assertion(&f, Some(KEYS_CLIENT), &assertion(&f, "a1", |_| {})).await.unwrap();
    assert_eq!((c.client().id().as_str(), c.method()), (KEYS_CLIENT, ClientAuthMethod::PrivateKeyJwt));
    let c = by_assertion(&f, None, &assertion(&f, "a2", |_| {})).await.unwrap();
    assert_eq!(c.client().id().as_str(), KEYS_CLIENT, "RFC 7521 4.2: the assertion's sub names the client");
    assert!(f.authority.token(&c, &cc(), None, None).await.is_ok());
}

#[tokio::test]
async fn every_bad_client_assertion_is_invalid_client() {
    // More cases than the throttle's default limit for one client.
    let f = fixture_with(|s| s.throttle.max_failures_per_account = 100).await;
    let t = now(&f);
    let cases: Vec<(&str, String)> = vec![
        ("another iss", assertion(&f, "b1", |c| c["iss"] = json!("someone"))),
        ("another sub", assertion(&f, "b2", |c| c["sub"] = json!(CONFIDENTIAL_CLIENT))),
        ("another aud", assertion(&f, "b3", |c| c["aud"] = json!("https://other.example"))),
        ("expired", assertion(&f, "b4", |c| c["exp"] = json!(t - 31))),
        ("exp over 5 minutes ahead", assertion(&f, "b5", |c| c["exp"] = json!(t + 300 + 31))),
        ("nbf in the future", assertion(&f, "b6", |c| c["nbf"] = json!(t + 31))),
        ("iat in the future", assertion(&f, "b7", |c| c["iat"] = json!(t + 31))),
        ("no jti", assertion(&f, "", |_| {})),
        (
            "unregistered key",
            JsonProofs::assertion(
                "key-2",
                &json!({"iss": KEYS_CLIENT, "sub": KEYS_CLIENT,
            "aud": ISSUER, "exp": t + 60, "jti": "b8"}),
            ),
        ),
        ("not a JWT", "garbage".to_owned()),
    ];
    for (what, a) in cases {
        let err = by_assertion(&f, Some(KEYS_CLIENT), &a).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (401, ErrorCode::InvalidClient), "{what}");
    }
    // A secret for a private_key_jwt client, an assertion for a secret client.
    let secret = ClientCredentials { client_id: Some(KEYS_CLIENT), secret: Some("s"), assertion: None };
    assert_eq!(f.authority.authenticate_client(&secret, None).await.unwrap_err(), Error::InvalidClient);
    let for_secret_client = assertion(&f, "b9", |c| {
        c["iss"] = json!(CONFIDENTIAL_CLIENT);
        c["sub"] = json!(CONFIDENTIAL_CLIENT);
    });
    assert_eq!(
        by_assertion(&f, Some(CONFIDENTIAL_CLIENT), &for_secret_client).await.unwrap_err(),
        Error::InvalidClient
    );
    let none = ClientCredentials { client_id: Some(KEYS_CLIENT), secret: None, assertion: None };
    assert_eq!(f.authority.authenticate_client(&none, None).await.unwrap_err(), Error::InvalidClient);
}

#[tokio::test]
async fn a_client_assertion_with_the_farthest_exp_is_invalid_client_not_a_panic() {
    // 9999-12-31T23:59:59Z, the last second the time type holds: adding the
    // leeway to it would overflow.
    let f = fixture().await;
    for (jti, exp) in [("far1", 253_402_300_799_i64), ("far2", 253_402_300_799 - 30)] {
        let a = assertion(&f, jti, |c| c["exp"] = json!(exp));
        let err = by_assertion(&f, Some(KEYS_CLIENT), &a).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (401, ErrorCode::InvalidClient), "exp {exp}");
    }
}

#[tokio::test]
async fn a_replayed_client_assertion_is_invalid_client() {
    let f = fixture().await;
    let a = assertion(&f, "once", |_| {});
    assert!(by_assertion(&f, Some(KEYS_CLIENT), &a).await.is_ok());
    assert_eq!(by_assertion(&f, Some(KEYS_CLIENT), &a).await.unwrap_err(), Error::InvalidClient);
}

#[tokio::test]
async fn a_replayed_client_assertion_is_a_security_event() {
    let f = fixture().await;
    let a = assertion(&f, "once", |_| {});
    by_assertion(&f, Some(KEYS_CLIENT), &a).await.unwrap();
    assert_eq!(f.events.take(), vec![], "a first use is no event");
    assert!(by_assertion(&f, Some(KEYS_CLIENT), &a).await.is_err());
    let events = f.events.take();
    let client_id = ClientId::parse(KEYS_CLIENT).unwrap();
    assert_eq!(events, vec![SecurityEvent::ClientAssertionReplayed { client_id }]);
    assert_eq!(events[0].kind().as_str(), "client_assertion_replay");
}

#[tokio::test]
async fn the_token_endpoint_url_is_an_accepted_audience_when_configured() {
    let f = fixture_with(|s| s.assertion_audiences.push(TOKEN_URL.into())).await;
    assert!(by_assertion(&f, None, &assertion(&f, "t1", |c| c["aud"] = json!(TOKEN_URL))).await.is_ok());
    let list = assertion(&f, "t2", |c| c["aud"] = json!(["https://other.example", ISSUER]));
    assert!(by_assertion(&f, None, &list).await.is_ok(), "one of an array of audiences is enough");
}

// --- refresh options -----------------------------------------------------------------

async fn password_tokens(f: &Fixture) -> TokenResponse {
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..TokenRequest::default()
    };
    f.authority.token(&confidential(f).await, &req, None, None).await.unwrap()
}

async fn refresh(f: &Fixture, token: &str) -> Result<TokenResponse> {
    f.authority.token(&confidential(f).await, &refresh_req(token), None, None).await
}

#[tokio::test]
async fn without_rotation_a_refresh_token_is_used_again_until_it_expires() {
    let f = fixture_with(|s| s.refresh_rotation = false).await;
    let rt = password_tokens(&f).await.refresh_token.unwrap();
    for _ in 0..3 {
        let t = refresh(&f, &rt).await.unwrap();
        assert_eq!(t.refresh_token.as_deref(), Some(rt.as_str()), "the same refresh token");
    }
    f.clock.advance(Duration::seconds(1_209_600));
    assert!(matches!(refresh(&f, &rt).await, Err(Error::InvalidGrant(_))), "until its idle lifetime ends");
}

#[tokio::test]
async fn with_rotation_and_no_grace_a_reused_token_revokes_its_family() {
    let f = fixture().await;
    let t0 = password_tokens(&f).await;
    let old = t0.refresh_token.unwrap();
    let t1 = refresh(&f, &old).await.unwrap();
    assert!(matches!(refresh(&f, &old).await, Err(Error::InvalidGrant(_))));
    assert!(matches!(refresh(&f, t1.refresh_token.as_deref().unwrap()).await, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn within_the_grace_a_reused_token_gets_a_second_successor_once() {
    let f = fixture_with(|s| s.refresh_reuse_grace = Duration::seconds(10)).await;
    let old = password_tokens(&f).await.refresh_token.unwrap();
    let first = refresh(&f, &old).await.unwrap().refresh_token.unwrap();
    f.clock.advance(Duration::seconds(5));
    let second = refresh(&f, &old).await.unwrap().refresh_token.unwrap();
    assert_ne!(first, second);
    // Both successors stay valid.
    let after_first = refresh(&f, &first).await.unwrap().refresh_token.unwrap();
    let after_second = refresh(&f, &second).await.unwrap().refresh_token.unwrap();
    // A second reuse revokes the family.
    assert!(matches!(refresh(&f, &old).await, Err(Error::InvalidGrant(_))));
    for t in [after_first, after_second] {
        assert!(matches!(refresh(&f, &t).await, Err(Error::InvalidGrant(_))), "the family is revoked");
    }
}

#[tokio::test]
async fn after_the_grace_a_reused_token_revokes_its_family() {
    let f = fixture_with(|s| s.refresh_reuse_grace = Duration::seconds(10)).await;
    let old = password_tokens(&f).await.refresh_token.unwrap();
    let first = refresh(&f, &old).await.unwrap().refresh_token.unwrap();
    f.clock.advance(Duration::seconds(10));
    assert!(matches!(refresh(&f, &old).await, Err(Error::InvalidGrant(_))));
    assert!(matches!(refresh(&f, &first).await, Err(Error::InvalidGrant(_))));
}

#[tokio::test]
async fn racing_refreshes_within_the_grace_give_two_successors_and_revoke_on_the_third() {
    let f = Arc::new(fixture_with(|s| s.refresh_reuse_grace = Duration::seconds(10)).await);
    let old = password_tokens(&f).await.refresh_token.unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (f, old) = (f.clone(), old.clone());
            tokio::spawn(async move { refresh(&f, &old).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert!(ok <= 2, "at most the rotation and one grace successor: {ok}");
}

// --- FAPI 2.0 ------------------------------------------------------------------------

#[tokio::test]
async fn fapi2_asks_for_par_pkce_dpop_and_private_key_jwt_and_stops_rotation() {
    let f = fixture_with(|s| s.fapi2 = true).await;
    // PAR, for every client.
    let r = f.authority.authorize(&Fixture::public_request(), None, None).await;
    assert!(matches!(r, Err(AuthorizeRejection::Redirect { error: Error::InvalidRequest(_), .. })));
    // private_key_jwt only.
    let secret =
        ClientCredentials { client_id: Some(CONFIDENTIAL_CLIENT), secret: Some(CONFIDENTIAL_SECRET), assertion: None };
    assert_eq!(f.authority.authenticate_client(&secret, None).await.unwrap_err(), Error::InvalidClient);
    let keys = by_assertion(&f, None, &assertion(&f, "f1", |_| {})).await.unwrap();
    // PKCE, even for a client registered without it.
    let no_pkce = AuthorizeRequest {
        client_id: Some(KEYS_CLIENT),
        code_challenge: None,
        code_challenge_method: None,
        ..Fixture::public_request()
    };
    let refused = f.authority.push_authorization_request(&keys, &no_pkce, None, None).await;
    assert!(matches!(refused, Err(Error::InvalidRequest(_))), "{refused:?}");
    // DPoP.
    assert!(invalid_proof(f.authority.token(&keys, &cc(), None, None).await));
    let t = f.authority.token(&keys, &cc(), Some(checked(&f, JKT, "f2").await), None).await.unwrap();
    assert_eq!(t.token_type, "DPoP");
    // No rotation: the refresh token is used again.
    let req = TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(PASSWORD),
        ..TokenRequest::default()
    };
    let keys = by_assertion(&f, None, &assertion(&f, "f3", |_| {})).await.unwrap();
    let t = f.authority.token(&keys, &req, Some(checked(&f, JKT, "f4").await), None).await.unwrap();
    let rt = t.refresh_token.unwrap();
    let r = f.authority.token(&keys, &refresh_req(&rt), Some(checked(&f, JKT, "f5").await), None).await.unwrap();
    assert_eq!(r.refresh_token.as_deref(), Some(rt.as_str()));
}

/// The `openid` code flow of [`KEYS_OIDC_CLIENT`], pushed and DPoP-bound as
/// FAPI 2.0 asks, up to its tokens; `tag` keeps the `jti`s apart.
async fn keys_oidc_tokens(f: &Fixture, tag: &str) -> TokenResponse {
    let assertion = |jti: &str| {
        let t = now(f);
        let claims = json!({"iss": KEYS_OIDC_CLIENT, "sub": KEYS_OIDC_CLIENT, "aud": ISSUER,
            "exp": t + 60, "iat": t, "jti": format!("{tag}-{jti}")});
        JsonProofs::assertion(KEYS_CLIENT_KEY, &claims)
    };
    let keys = by_assertion(f, None, &assertion("par")).await.unwrap();
    let request = AuthorizeRequest {
        client_id: Some(KEYS_OIDC_CLIENT),
        scope: Some("openid read"),
        nonce: Some("n-fapi"),
        ..Fixture::public_request()
    };
    let pushed = f.authority.push_authorization_request(&keys, &request, None, None).await.unwrap();
    let by_uri = AuthorizeRequest {
        client_id: Some(KEYS_OIDC_CLIENT),
        request_uri: Some(&pushed.request_uri),
        ..AuthorizeRequest::default()
    };
    let (session, _) = f.authority.authorize(&by_uri, None, None).await.unwrap();
    let signed = f.authority.sign_in(session.id(), USERNAME, PASSWORD, None, None).await.unwrap();
    let LoginOutcome::Consent(session) = signed.outcome else { panic!("the consent page first") };
    let location = f.authority.decide(session.id(), true).await.unwrap();
    let code = query_param(&location, "code").unwrap();
    let keys = by_assertion(f, None, &assertion("token")).await.unwrap();
    let dpop = checked(f, JKT, &format!("{tag}-proof")).await;
    f.authority.token(&keys, &Fixture::code_request(&code), Some(dpop), None).await.unwrap()
}

#[tokio::test]
async fn fapi2_signs_id_tokens_with_the_servers_signing_alg_not_rs256() {
    let plain = fixture().await;
    let t = keys_oidc_tokens(&plain, "plain").await;
    let claims = id_token_claims(t.id_token.as_deref().expect("an ID token")).unwrap();
    assert_eq!(claims["alg"], "Rs256", "without the profile, the client's registered RS256");

    let f = fixture_with(|s| s.fapi2 = true).await;
    let t = keys_oidc_tokens(&f, "fapi2").await;
    assert_eq!(t.token_type, "DPoP");
    let claims = id_token_claims(t.id_token.as_deref().expect("an ID token")).unwrap();
    assert_eq!(claims["alg"], "ServerAlg", "FAPI 2.0 allows no RS256: the server's signing_alg");
    assert_eq!(claims["nonce"], "n-fapi", "the pushed request's nonce");
    // The refresh's ID token too.
    let assertion = JsonProofs::assertion(
        KEYS_CLIENT_KEY,
        &json!({"iss": KEYS_OIDC_CLIENT, "sub": KEYS_OIDC_CLIENT, "aud": ISSUER,
            "exp": now(&f) + 60, "iat": now(&f), "jti": "fapi2-refresh"}),
    );
    let keys = by_assertion(&f, None, &assertion).await.unwrap();
    let rt = t.refresh_token.expect("a refresh token");
    let dpop = checked(&f, JKT, "fapi2-refresh-proof").await;
    let r = f.authority.token(&keys, &refresh_req(&rt), Some(dpop), None).await.unwrap();
    let claims = id_token_claims(r.id_token.as_deref().expect("a refreshed ID token")).unwrap();
    assert_eq!(claims["alg"], "ServerAlg");
}
