//! A catalogue of known attacks on authorization servers, each by name, run
//! against a real server on 127.0.0.1. Attacks already driven over HTTP
//! elsewhere are named in `docs/security.md`; this file holds the rest.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth_core::{Account, Store};
use serde_json::Value;
use support::*;

async fn token(s: &TestServer, client: (&str, Option<&str>), form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = http().post(format!("{}/token", s.base));
    let mut body: Vec<(&str, &str)> = form.to_vec();
    match client.1 {
        Some(secret) => req = req.basic_auth(client.0, Some(secret)),
        None => body.push(("client_id", client.0)),
    }
    let r = req.form(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn code_for(s: &TestServer, client: &str) -> String {
    query(&browser_flow(s, &authorize_url(s, client, "")).await, "code").unwrap()
}

async fn userinfo(s: &TestServer, bearer: &str) -> u16 {
    http().get(format!("{}/userinfo", s.base)).bearer_auth(bearer).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn open_redirect_through_redirect_uri_look_alikes() {
    let s = start(Options::default()).await;
    for evil in [
        "http://127.0.0.1.evil.example:9000/callback",
        "http://evil.example@127.0.0.1:9000/callback",
        "http://127.0.0.1:9000@evil.example/callback",
        "http://127.0.0.1:9000\\@evil.example/callback",
        "http://127.0.0.1:9000/callback/../../evil",
        "http://127.0.0.1:9000/callback%2F..%2Fevil",
        "http://127.0.0.1:9000/CALLBACK",
        "http://127.0.0.1./callback",
        "http://127.0.0.1:9000/callback#@evil.example",
        "http://localhost:9000/callback",
        "http://[::ffff:127.0.0.1]:9000/callback",
        "http://2130706433:9000/callback",
        "http://0x7f.0.0.1:9000/callback",
        "http://127.0.0.1:-1/callback",
        "https://127.0.0.1:9000/callback",
        "//evil.example/callback",
    ] {
        let url = format!(
            "{}/authorize?response_type=code&client_id={CONFIDENTIAL}&redirect_uri={}&state=s",
            s.base,
            urlencode(evil)
        );
        let r = http().get(url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{evil}");
        assert!(r.headers().get("location").is_none(), "{evil} was redirected to");
    }
}

#[tokio::test]
async fn pkce_downgrade_both_ways() {
    let s = start(Options::default()).await;
    // Issued with a challenge, redeemed without the verifier.
    let code = code_for(&s, CONFIDENTIAL).await;
    let (status, body) = token(
        &s,
        (CONFIDENTIAL, Some(SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Redeemed with a verifier that is not the challenge's.
    let code = code_for(&s, CONFIDENTIAL).await;
    let wrong = "x".repeat(43);
    let (status, _) = token(
        &s,
        (CONFIDENTIAL, Some(SECRET)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &wrong)],
    )
    .await;
    assert_eq!(status, 400);
    // Asking without a challenge, then showing a verifier: refused at /authorize
    // already, since these clients must use PKCE.
    let url = authorize_url(&s, CONFIDENTIAL, "")
        .replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), "");
    let r = http().get(url).send().await.unwrap();
    assert_eq!(query(&location(&r), "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn code_injection_across_clients() {
    let s = start(Options::default()).await;
    let code = code_for(&s, CONFIDENTIAL).await;
    let (status, body) = token(&s, (PUBLIC, None), &code_exchange(&code)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn forged_jwts_alg_none_confusion_kid_injection_and_foreign_issuer() {
    let s = start(Options::default()).await;
    let (_, cc) = token(&s, (CONFIDENTIAL, Some(SECRET)), &[("grant_type", "client_credentials")]).await;
    let real = cc["access_token"].as_str().unwrap();
    let mut parts = real.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let header_json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let kid = header_json["kid"].as_str().unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let none = format!("{}.{payload}.", b64(&serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid})));
    let jwks = http().get(format!("{}/jwks.json", s.base)).send().await.unwrap().text().await.unwrap();
    let hs = {
        let key = jsonwebtoken::EncodingKey::from_secret(jwks.as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.into());
        header.typ = Some("at+jwt".into());
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let injected_kid = format!(
        "{}.{payload}.{}",
        b64(&serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "../../jwks.json"})),
        parts.next().unwrap()
    );
    let other = start(Options::default()).await;
    let (_, foreign) = token(&other, (CONFIDENTIAL, Some(SECRET)), &[("grant_type", "client_credentials")]).await;
    for (name, forged) in [
        ("alg none", none),
        ("HS256 with the public key", hs),
        ("kid injection", injected_kid),
        ("another issuer", foreign["access_token"].as_str().unwrap().to_owned()),
    ] {
        let r = http()
            .post(format!("{}/introspect", s.base))
            .basic_auth(CONFIDENTIAL, Some(SECRET))
            .form(&[("token", forged.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({"active": false}), "{name}");
        assert_eq!(userinfo(&s, &forged).await, 401, "{name}");
    }
}

#[tokio::test]
async fn token_type_swap_access_token_as_refresh_token() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    let (status, body) = token(
        &s,
        (CONFIDENTIAL, Some(SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", t["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn scope_escalation_on_refresh() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    assert_eq!(t["scope"], "read");
    let rt = t["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &s,
        (CONFIDENTIAL, Some(SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "read write")],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test]
async fn a_disabled_account_loses_its_tokens_at_once() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, access).await, 200);
    s.store.put_account(&Account { disabled: true, ..s.account.clone() }).await.unwrap();
    assert_eq!(userinfo(&s, access).await, 401);
    let (status, _) = token(
        &s,
        (CONFIDENTIAL, Some(SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(status, 400);
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    let r = post_login(&s, &b, USERNAME, PASSWORD).await;
    assert!(location(&r).contains("failed=1"), "a disabled account cannot log in");
}
