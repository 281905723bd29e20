//! CORS over HTTP (SPEC-2, "Adoption"): preflights and answers of `/token`,
//! `/revoke`, `/userinfo`, the JWKS and both metadata documents carry
//! `Access-Control-Allow-Origin` for the origins the rule allows, never with
//! credentials; other origins and the other endpoints get no CORS header.
//!
//! The clients: `spa-app` (redirect URI on `https://spa.example`, and
//! `http://127.0.0.1:5173` listed in `allowed_cors_origins`), and `native-app`
//! and `demo-app` (redirect URI on `http://127.0.0.1:9000`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::collections::BTreeMap;

use support::*;

const STRANGER: &str = "https://evil.example";

/// The `access-control-*` headers of a response, and `vary`.
fn cors(resp: &reqwest::Response) -> BTreeMap<String, String> {
    resp.headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-") || k.as_str() == "vary")
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect()
}

fn allow_origin(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

fn never_with_credentials(resp: &reqwest::Response) {
    assert!(resp.headers().get("access-control-allow-credentials").is_none(), "{:?}", cors(resp));
}

async fn preflight(s: &TestServer, path: &str, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", s.base))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

/// A refresh at `/token` as the public client `client` from `origin` (the
/// token is made up, so the answer is 400 `invalid_grant`: a page must be able
/// to read errors too).
async fn token_from(s: &TestServer, origin: &str, client: &str) -> reqwest::Response {
    http()
        .post(format!("{}/token", s.base))
        .header("origin", origin)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "made-up"), ("client_id", client)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_a_clients_origin_allows_its_method_and_headers_without_credentials() {
    let s = start(Options::default()).await;
    for (path, method) in [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET")] {
        for origin in [SPA_ORIGIN, SPA_LISTED_ORIGIN, "http://127.0.0.1:9000"] {
            let r = preflight(&s, path, origin, method, "authorization,content-type").await;
            assert_eq!(r.status(), 204, "{path} {origin}");
            let h = cors(&r);
            assert_eq!(h.get("access-control-allow-origin").map(String::as_str), Some(origin), "{path}: {h:?}");
            assert_eq!(h.get("access-control-allow-methods").map(String::as_str), Some(method), "{h:?}");
            let headers = &h["access-control-allow-headers"];
            assert!(headers.contains("authorization") && headers.contains("content-type"), "{h:?}");
            assert!(h["vary"].contains("origin"), "{h:?}");
            never_with_credentials(&r);
        }
    }
}

#[tokio::test]
async fn an_origin_no_client_has_gets_no_cors_headers() {
    let s = start(Options::default()).await;
    for (path, method) in [("/token", "POST"), ("/revoke", "POST"), ("/userinfo", "GET")] {
        for origin in [STRANGER, "https://spa.example:8443", "http://127.0.0.1:5174", "null"] {
            let r = preflight(&s, path, origin, method, "authorization").await;
            assert_eq!(allow_origin(&r), None, "{path} {origin}");
            assert!(!cors(&r).keys().any(|k| k.starts_with("access-control-")), "{path} {origin}: {:?}", cors(&r));
        }
    }
    let r = token_from(&s, STRANGER, SPA).await;
    assert_eq!(r.status(), 400);
    assert_eq!(allow_origin(&r), None);
}

#[tokio::test]
async fn a_preflight_for_a_method_the_endpoint_does_not_take_gets_no_cors_headers() {
    let s = start(Options::default()).await;
    let r = preflight(&s, "/token", SPA_ORIGIN, "PUT", "content-type").await;
    assert_eq!(r.status(), 204);
    assert_eq!(allow_origin(&r), None);
    assert_eq!(r.headers()["allow"], "OPTIONS, POST");
}

#[tokio::test]
async fn the_token_endpoint_answers_cors_only_to_the_origins_of_the_client_the_request_names() {
    let s = start(Options::default()).await;
    for (origin, client, allowed) in [
        (SPA_ORIGIN, SPA, true),
        (SPA_LISTED_ORIGIN, SPA, true),
        ("http://127.0.0.1:9000", PUBLIC, true),
        // Another client's origin: a page there may not act as this client.
        (SPA_ORIGIN, PUBLIC, false),
        ("http://127.0.0.1:9000", SPA, false),
        (SPA_ORIGIN, "no-such-client", false),
    ] {
        let r = token_from(&s, origin, client).await;
        let status = if client == "no-such-client" { 401 } else { 400 };
        assert_eq!(r.status(), status, "{origin} {client}");
        assert_eq!(allow_origin(&r).as_deref(), allowed.then_some(origin), "{origin} as {client}");
        assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
        never_with_credentials(&r);
        if allowed {
            let exposed = r.headers()["access-control-expose-headers"].to_str().unwrap();
            assert!(exposed.contains("www-authenticate"), "{exposed}");
        }
    }
    // A confidential client's origin, with its credentials in Basic.
    let r = http()
        .post(format!("{}/token", s.base))
        .header("origin", "http://127.0.0.1:9000")
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r).as_deref(), Some("http://127.0.0.1:9000"));
    never_with_credentials(&r);
}

#[tokio::test]
async fn revocation_answers_cors_only_to_the_origins_of_the_client_the_request_names() {
    let s = start(Options::default()).await;
    for (origin, client, allowed) in [(SPA_ORIGIN, SPA, true), (SPA_ORIGIN, PUBLIC, false), (STRANGER, SPA, false)] {
        let r = http()
            .post(format!("{}/revoke", s.base))
            .header("origin", origin)
            .form(&[("token", "made-up"), ("client_id", client)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{origin} {client}");
        assert_eq!(allow_origin(&r).as_deref(), allowed.then_some(origin), "{origin} as {client}");
        never_with_credentials(&r);
    }
}

#[tokio::test]
async fn userinfo_answers_cors_to_the_origin_of_any_client() {
    let s = start(Options::default()).await;
    let tokens = code_tokens(&s).await;
    let token = tokens["access_token"].as_str().unwrap();
    for (origin, allowed) in [(SPA_ORIGIN, true), ("http://127.0.0.1:9000", true), (STRANGER, false)] {
        let r = http()
            .get(format!("{}/userinfo", s.base))
            .header("origin", origin)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(allow_origin(&r).as_deref(), allowed.then_some(origin), "{origin}");
        never_with_credentials(&r);
    }
    // A 401 is readable too, with its challenge exposed.
    let r = http()
        .get(format!("{}/userinfo", s.base))
        .header("origin", SPA_ORIGIN)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(allow_origin(&r).as_deref(), Some(SPA_ORIGIN));
    assert!(r.headers()["access-control-expose-headers"].to_str().unwrap().contains("www-authenticate"));
}

#[tokio::test]
async fn metadata_and_the_jwks_answer_any_origin_with_a_star() {
    let s = start(Options::default()).await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks.json"] {
        let r = http().get(format!("{}{path}", s.base)).header("origin", STRANGER).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(allow_origin(&r).as_deref(), Some("*"), "{path}");
        never_with_credentials(&r);
        let r = preflight(&s, path, STRANGER, "GET", "").await;
        assert_eq!((r.status().as_u16(), allow_origin(&r).as_deref()), (204, Some("*")), "{path}");
    }
}

#[tokio::test]
async fn the_endpoints_that_are_not_for_browser_apps_have_no_cors() {
    let s = start(Options::default()).await;
    for path in ["/introspect", "/authorize", "/authorize/login", "/metrics", "/healthz"] {
        let r = preflight(&s, path, SPA_ORIGIN, "POST", "content-type").await;
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(allow_origin(&r), None, "{path}");
    }
    let r = http()
        .post(format!("{}/introspect", s.base))
        .header("origin", "http://127.0.0.1:9000")
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("token", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(cors(&r).is_empty(), "{:?}", cors(&r));
}
