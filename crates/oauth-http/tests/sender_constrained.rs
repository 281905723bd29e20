//! DPoP (RFC 9449) and PAR (RFC 9126) over real HTTP: the status, body and
//! headers a client sees. Proofs are built with `jsonwebtoken` over a test
//! key made by `openssl genpkey`. The flows' rules, case by case, are tested in
//! `oauth-core/tests/sender_constrained.rs`; oauth4webapi drives the whole of
//! it against the binary in `oauth-server/tests/interop.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::*;

const KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-a.pem");

fn key() -> EncodingKey {
    EncodingKey::from_ec_pem(KEY).unwrap()
}

fn jkt() -> String {
    Jwk::from_encoding_key(&key(), Algorithm::ES256).unwrap().thumbprint(ThumbprintHash::SHA256).unwrap()
}

/// The client's clock: the same wall clock as the server's (`SystemClock`).
fn now() -> i64 {
    oauth_core::Clock::now(&oauth_runtime::SystemClock).unix_timestamp()
}

/// A proof for `method` at `url`, with `ath` for `token` if given.
fn proof(method: &str, url: &str, token: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(Jwk::from_encoding_key(&key(), Algorithm::ES256).unwrap());
    let mut claims = json!({ "jti": uuid(), "htm": method, "htu": url, "iat": now() });
    if let Some(t) = token {
        claims["ath"] = json!(URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())));
    }
    jsonwebtoken::encode(&header, &claims, &key()).unwrap()
}

fn uuid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("jti-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

async fn client_credentials(s: &TestServer, dpop: Option<&str>) -> reqwest::Response {
    let mut r = http().post(format!("{}/token", s.base)).basic_auth(CONFIDENTIAL, Some(SECRET));
    if let Some(p) = dpop {
        r = r.header("dpop", p);
    }
    r.form(&[("grant_type", "client_credentials"), ("scope", "read")]).send().await.unwrap()
}

/// A DPoP-bound access token of alice's (password grant).
async fn bound_user_token(s: &TestServer) -> String {
    let r = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .header("dpop", proof("POST", &format!("{}/token", s.base), None))
        .form(&[("grant_type", "password"), ("username", USERNAME), ("password", PASSWORD), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    body["access_token"].as_str().unwrap().to_owned()
}

fn challenge(r: &reqwest::Response) -> String {
    r.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_proof_at_token_binds_the_access_token_to_its_key_as_token_type_dpop() {
    let s = start(Options::default()).await;
    let r = client_credentials(&s, Some(&proof("POST", &format!("{}/token", s.base), None))).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["cnf"], json!({ "jkt": jkt() }));
    let plain: Value = client_credentials(&s, None).await.json().await.unwrap();
    assert_eq!(plain["token_type"], "Bearer", "without a proof a token stays a bearer token");
}

#[tokio::test]
async fn a_bad_proof_at_token_is_400_invalid_dpop_proof() {
    let s = start(Options::default()).await;
    let token_url = format!("{}/token", s.base);
    for bad in
        [proof("GET", &token_url, None), proof("POST", &format!("{}/revoke", s.base), None), "not.a.proof".to_owned()]
    {
        let r = client_credentials(&s, Some(&bad)).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");
    }
    let twice = http()
        .post(&token_url)
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .header("dpop", proof("POST", &token_url, None))
        .header("dpop", proof("POST", &token_url, None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "two DPoP headers");
    assert_eq!(twice.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");
}

async fn replays_counted(s: &TestServer) -> String {
    let m = http().get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    m.lines().find(|l| l.starts_with("oauth_security_events_total{kind=\"dpop_proof_replay\"}")).unwrap().to_owned()
}

#[tokio::test]
async fn a_replayed_proof_at_token_is_400_invalid_dpop_proof_and_a_counted_security_event() {
    let s = start(Options::default()).await;
    let p = proof("POST", &format!("{}/token", s.base), None);
    assert_eq!(client_credentials(&s, Some(&p)).await.status(), 200);
    assert!(replays_counted(&s).await.ends_with(" 0"));
    let again = client_credentials(&s, Some(&p)).await;
    assert_eq!(again.status(), 400);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_dpop_proof");
    assert!(replays_counted(&s).await.ends_with(" 1"));
}

#[tokio::test]
async fn userinfo_accepts_a_bound_token_with_the_dpop_scheme_and_a_proof_with_ath() {
    let s = start(Options::default()).await;
    let token = bound_user_token(&s).await;
    let url = format!("{}/userinfo", s.base);
    let r = http()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof("GET", &url, Some(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], USERNAME);
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_401_invalid_token_with_a_dpop_challenge() {
    let s = start(Options::default()).await;
    let token = bound_user_token(&s).await;
    let r = http().get(format!("{}/userinfo", s.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let c = challenge(&r);
    assert!(c.starts_with("DPoP ") && c.contains("algs=\"ES256 EdDSA RS256 PS256\""), "{c}");
    assert!(c.contains("error=\"invalid_token\""), "{c}");
}

#[tokio::test]
async fn a_dpop_request_with_a_missing_or_wrong_proof_is_401_invalid_dpop_proof_with_a_dpop_challenge() {
    let s = start(Options::default()).await;
    let token = bound_user_token(&s).await;
    let url = format!("{}/userinfo", s.base);
    let other = bound_user_token(&s).await;
    let cases = [
        None,
        Some(proof("GET", &url, None)),                                 // no ath
        Some(proof("GET", &url, Some(&other))),                         // ath of another token
        Some(proof("POST", &url, Some(&token))),                        // another method
        Some(proof("GET", &format!("{}/token", s.base), Some(&token))), // another URL
    ];
    for (i, p) in cases.into_iter().enumerate() {
        let mut req = http().get(&url).header("authorization", format!("DPoP {token}"));
        if let Some(p) = p {
            req = req.header("dpop", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "case {i}");
        let c = challenge(&r);
        assert!(c.starts_with("DPoP ") && c.contains("error=\"invalid_dpop_proof\""), "case {i}: {c}");
    }
}

#[tokio::test]
async fn introspection_shows_cnf_token_type_dpop_and_token_use() {
    let s = start(Options::default()).await;
    let token = bound_user_token(&s).await;
    let r: Value = http()
        .post(format!("{}/introspect", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(r["token_type"], "DPoP");
    assert_eq!(r["token_use"], "access_token");
    assert_eq!(r["cnf"], json!({ "jkt": jkt() }));
}

fn pushed_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "read"),
        ("state", "xyz"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

async fn par(s: &TestServer, form: &[(&str, &str)]) -> reqwest::Response {
    http().post(format!("{}/par", s.base)).basic_auth(CONFIDENTIAL, Some(SECRET)).form(form).send().await.unwrap()
}

#[tokio::test]
async fn a_pushed_request_answers_201_and_its_request_uri_works_once() {
    let s = start(Options::default()).await;
    let r = par(&s, &pushed_form()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    let uri = body["request_uri"].as_str().unwrap();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"), "{uri}");
    assert_eq!(body["expires_in"], 60);
    let url = format!("{}/authorize?client_id={CONFIDENTIAL}&request_uri={}", s.base, urlencode(uri));
    let code = query(&browser_flow(&s, &url).await, "code").unwrap();
    let tokens = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&code_exchange(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 200, "the pushed PKCE challenge and redirect URI hold");
    let again = http().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 400, "a used request_uri gets the error page, not a redirect");
}

#[tokio::test]
async fn an_unknown_request_uri_gets_the_400_error_page() {
    let s = start(Options::default()).await;
    let url = format!(
        "{}/authorize?client_id={CONFIDENTIAL}&request_uri={}",
        s.base,
        urlencode("urn:ietf:params:oauth:request_uri:nothing-here")
    );
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn pushed_request_errors_are_json_at_par_never_redirects() {
    let s = start(Options::default()).await;
    let mut form = pushed_form();
    form[1] = ("redirect_uri", "https://evil.example/cb");
    let r = par(&s, &form).await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    let mut form = pushed_form();
    form[2] = ("scope", "admin");
    let r = par(&s, &form).await;
    assert_eq!((r.status().as_u16(), r.json::<Value>().await.unwrap()["error"].clone()), (400, json!("invalid_scope")));
    let anonymous = http().post(format!("{}/par", s.base)).form(&pushed_form()).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn the_metadata_lists_par_dpop_and_private_key_jwt() {
    let s = start(Options::default()).await;
    let m: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["pushed_authorization_request_endpoint"], format!("{}/par", s.base));
    assert_eq!(m["require_pushed_authorization_requests"], false);
    assert_eq!(m["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA", "RS256", "PS256"]));
    let methods = m["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("private_key_jwt")), "{methods:?}");
    assert_eq!(m["token_endpoint_auth_signing_alg_values_supported"], json!(["ES256", "EdDSA", "RS256", "PS256"]));
}

#[tokio::test]
async fn a_request_object_at_par_is_refused_as_invalid_request() {
    let s = start(Options::default()).await;
    let mut form = pushed_form();
    form.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    let r = par(&s, &form).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

/// An OpenID Connect code flow of the public `OIDC` client whose code is
/// redeemed with a DPoP proof: the bound tokens.
async fn bound_openid_tokens(s: &TestServer) -> Value {
    let url = format!(
        "{}/authorize?response_type=code&client_id={OIDC}&redirect_uri={}&scope={}&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256&nonce=n-1",
        s.base,
        urlencode(REDIRECT),
        urlencode("openid profile email"),
    );
    let code = query(&browser_flow(s, &url).await, "code").unwrap();
    let token_url = format!("{}/token", s.base);
    let mut form = code_exchange(&code).to_vec();
    form.push(("client_id", OIDC));
    let r = http().post(&token_url).header("dpop", proof("POST", &token_url, None)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert!(body["id_token"].is_string(), "{body}");
    body
}

#[tokio::test]
async fn userinfo_answers_openid_claims_for_a_dpop_bound_token_with_its_proof_by_get_and_post() {
    let s = start(Options::default()).await;
    let t = bound_openid_tokens(&s).await;
    let token = t["access_token"].as_str().unwrap();
    let url = format!("{}/userinfo", s.base);
    let by_get = http()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof("GET", &url, Some(token)))
        .send()
        .await
        .unwrap();
    assert_eq!(by_get.status(), 200);
    let by_get: Value = by_get.json().await.unwrap();
    assert_eq!(by_get["email"], "alice@example.org", "{by_get}");
    assert_eq!(by_get["sub"], s.account.id.to_string());
    assert!(by_get.get("username").is_none(), "with openid, no username member: {by_get}");
    let by_post = http()
        .post(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof("POST", &url, Some(token)))
        .send()
        .await
        .unwrap();
    assert_eq!(by_post.status(), 200);
    assert_eq!(by_post.json::<Value>().await.unwrap(), by_get);
}

#[tokio::test]
async fn a_bound_openid_token_at_userinfo_needs_its_proof_for_this_method_not_bearer_nor_the_body() {
    let s = start(Options::default()).await;
    let t = bound_openid_tokens(&s).await;
    let token = t["access_token"].as_str().unwrap();
    let url = format!("{}/userinfo", s.base);
    let as_bearer = http().get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(as_bearer.status(), 401);
    let c = challenge(&as_bearer);
    assert!(c.starts_with("DPoP ") && c.contains("error=\"invalid_token\""), "{c}");
    let in_body = http().post(&url).form(&[("access_token", token)]).send().await.unwrap();
    assert_eq!(in_body.status(), 401, "a token in the body is a bearer token");
    let c = challenge(&in_body);
    assert!(c.starts_with("DPoP ") && c.contains("error=\"invalid_token\""), "{c}");
    let other_method = http()
        .post(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof("GET", &url, Some(token)))
        .send()
        .await
        .unwrap();
    assert_eq!(other_method.status(), 401);
    assert!(challenge(&other_method).contains("error=\"invalid_dpop_proof\""), "{}", challenge(&other_method));
}
