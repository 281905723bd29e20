//! Every endpoint over real HTTP on 127.0.0.1, driven as a browser or a client
//! would drive it. Test names state the rule.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use serde_json::Value;
use support::*;

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

async fn token(s: &TestServer, form: &[(&str, &str)]) -> reqwest::Response {
    http().post(format!("{}/token", s.base)).basic_auth(CONFIDENTIAL, Some(SECRET)).form(form).send().await.unwrap()
}

// --- discovery ----------------------------------------------------------------------

#[tokio::test]
async fn metadata_names_every_endpoint_and_iss_support() {
    let s = start(Options::default()).await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m = json(http().get(format!("{}{path}", s.base)).send().await.unwrap()).await;
        assert_eq!(m["issuer"], s.base.as_str());
        assert_eq!(m["token_endpoint"], format!("{}/token", s.base));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    }
}

#[tokio::test]
async fn routes_live_under_the_issuer_path() {
    let s = start(Options { issuer_path: "/tenant-a", ..Options::default() }).await;
    let m = json(http().get(format!("{}/.well-known/oauth-authorization-server", s.base)).send().await.unwrap()).await;
    assert_eq!(m["jwks_uri"], format!("{}/jwks.json", s.base));
    let root = format!("http://{}/.well-known/oauth-authorization-server/tenant-a", s.addr);
    assert_eq!(http().get(root).send().await.unwrap().status(), 200, "RFC 8414 3.1 location");
    assert_eq!(http().get(format!("http://{}/token", s.addr)).send().await.unwrap().status(), 404);
    let redirect = browser_flow(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    assert!(query(&redirect, "code").is_some());
}

#[tokio::test]
async fn jwks_lists_the_public_signing_key() {
    let s = start(Options::default()).await;
    let jwks = json(http().get(format!("{}/jwks.json", s.base)).send().await.unwrap()).await;
    // The ES256 access-token key and the RS256 ID-token key, public halves only.
    let keys = jwks["keys"].as_array().unwrap();
    let mut kinds: Vec<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["EC", "RSA"], "{jwks}");
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(key.get(private).is_none(), "{private} in {key}");
        }
    }
}

// --- the browser flow -------------------------------------------------------------------

#[tokio::test]
async fn code_flow_with_pkce_driven_like_a_browser() {
    let s = start(Options::default()).await;
    let redirect = browser_flow(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    assert!(redirect.starts_with(REDIRECT));
    assert_eq!(query(&redirect, "state").as_deref(), Some("xyz"));
    assert_eq!(query(&redirect, "iss").as_deref(), Some(s.base.as_str()));
    let code = query(&redirect, "code").unwrap();
    let resp = token(&s, &code_exchange(&code)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let t = json(resp).await;
    assert_eq!(
        (t["token_type"].as_str(), t["expires_in"].as_i64(), t["scope"].as_str()),
        (Some("Bearer"), Some(900), Some("read"))
    );
    let info = http()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info = json(info).await;
    assert_eq!(info, serde_json::json!({"sub": s.account.id.to_string(), "username": USERNAME}));
}

#[tokio::test]
async fn bad_credentials_go_back_to_the_login_page() {
    let s = start(Options::default()).await;
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    let resp = post_login(&s, &b, USERNAME, "wrong").await;
    assert_eq!(resp.status(), 303);
    let again = location(&resp);
    assert!(again.starts_with("/authorize/login?session="), "{again}");
    let page = http().get(format!("http://{}{again}", s.addr)).header("cookie", &b.cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Wrong username or password"));
    let resp = post_login(&s, &b, USERNAME, PASSWORD).await;
    assert!(location(&resp).contains("/authorize/consent?session="), "the session did not advance before");
}

#[tokio::test]
async fn login_is_refused_without_the_browser_cookie_or_the_csrf_token() {
    let s = start(Options::default()).await;
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    let other = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    let cases = [
        Browser { cookie: String::new(), session: b.session.clone(), csrf: b.csrf.clone() },
        Browser { cookie: b.cookie.clone(), session: b.session.clone(), csrf: "forged".into() },
        Browser { cookie: other.cookie.clone(), session: b.session.clone(), csrf: b.csrf.clone() },
        Browser { cookie: other.cookie.clone(), session: b.session.clone(), csrf: other.csrf.clone() },
    ];
    for case in &cases {
        let resp = post_login(&s, case, USERNAME, PASSWORD).await;
        assert_eq!(resp.status(), 400, "cookie {:?} csrf {}", case.cookie, case.csrf);
    }
}

#[tokio::test]
async fn consent_without_the_browser_cookie_is_refused() {
    let s = start(Options::default()).await;
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    post_login(&s, &b, USERNAME, PASSWORD).await;
    let resp = http()
        .post(format!("{}/authorize/consent", s.base))
        .form(&[("session", b.session.as_str()), ("csrf", b.csrf.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn pages_forbid_framing_and_referrers() {
    let s = start(Options::default()).await;
    let resp = http().get(authorize_url(&s, CONFIDENTIAL, "")).send().await.unwrap();
    let h = resp.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["content-security-policy"], "frame-ancestors 'none'; default-src 'self'");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "an http issuer gets no Secure cookie: {cookie}");
}

#[tokio::test]
async fn the_consent_page_escapes_the_client_name() {
    let s = start(Options::default()).await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={PUBLIC}&redirect_uri={}&code_challenge={CHALLENGE}&code_challenge_method=S256",
        s.base,
        urlencode(REDIRECT)
    );
    let html = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Native &lt;App&gt;") && !html.contains("Native <App>"));
}

#[tokio::test]
async fn denial_redirects_access_denied_with_state_and_iss() {
    let s = start(Options::default()).await;
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    post_login(&s, &b, USERNAME, PASSWORD).await;
    let resp = http()
        .post(format!("{}/authorize/consent", s.base))
        .header("cookie", &b.cookie)
        .form(&[("session", b.session.as_str()), ("csrf", b.csrf.as_str()), ("decision", "deny")])
        .send()
        .await
        .unwrap();
    let loc = location(&resp);
    assert_eq!(query(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(query(&loc, "iss").as_deref(), Some(s.base.as_str()));
}

#[tokio::test]
async fn unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect() {
    let s = start(Options::default()).await;
    for url in [
        authorize_url(&s, "nobody", ""),
        format!(
            "{}/authorize?response_type=code&client_id={CONFIDENTIAL}&redirect_uri=https%3A%2F%2Fevil.example%2F",
            s.base
        ),
    ] {
        let resp = http().get(url).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}

#[tokio::test]
async fn authorize_errors_are_redirected_with_state_and_iss() {
    let s = start(Options::default()).await;
    let url = authorize_url(&s, CONFIDENTIAL, "").replace("scope=read", "scope=admin");
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert_eq!(query(&loc, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(query(&loc, "state").as_deref(), Some("xyz"));
    assert_eq!(query(&loc, "iss").as_deref(), Some(s.base.as_str()));
}

#[tokio::test]
async fn repeated_authorize_parameters_are_refused() {
    let s = start(Options::default()).await;
    let resp = http().get(authorize_url(&s, CONFIDENTIAL, "&scope=read")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn login_throttling_answers_429_html_with_retry_after() {
    let s = start(Options { max_failures_per_account: 2, ..Options::default() }).await;
    let b = open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    for _ in 0..2 {
        assert_eq!(post_login(&s, &b, USERNAME, "wrong").await.status(), 303);
    }
    let resp = post_login(&s, &b, USERNAME, PASSWORD).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(resp.text().await.unwrap().contains("Try again in"));
}

// --- the token endpoint -------------------------------------------------------------------

#[tokio::test]
async fn client_credentials_by_basic_by_post_and_as_json() {
    let s = start(Options::default()).await;
    let basic = token(&s, &[("grant_type", "client_credentials")]).await;
    assert_eq!(basic.status(), 200);
    let t = json(basic).await;
    assert_eq!(t["scope"], "profile read write");
    assert!(t.get("refresh_token").is_none());
    let post = http()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CONFIDENTIAL),
            ("client_secret", SECRET),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json(post).await["scope"], "read");
    let body =
        serde_json::json!({"grant_type": "client_credentials", "client_id": CONFIDENTIAL, "client_secret": SECRET});
    let as_json = http().post(format!("{}/token", s.base)).json(&body).send().await.unwrap();
    assert_eq!(as_json.status(), 200);
}

#[tokio::test]
async fn every_client_authentication_failure_is_401_with_a_basic_challenge() {
    let s = start(Options::default()).await;
    let cases: Vec<reqwest::RequestBuilder> = vec![
        http().post(format!("{}/token", s.base)).basic_auth(CONFIDENTIAL, Some("wrong")),
        http().post(format!("{}/token", s.base)).basic_auth("nobody", Some("x")),
        http().post(format!("{}/token", s.base)).basic_auth(PUBLIC, Some("secret-for-a-public-client")),
        http().post(format!("{}/token", s.base)).query(&[("ignored", "1")]),
        http().post(format!("{}/token", s.base)).basic_auth(CONFIDENTIAL, None::<&str>),
    ];
    for req in cases {
        let resp = req.form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], format!("Basic realm=\"{}\"", s.base));
        assert_eq!(json(resp).await["error"], "invalid_client");
    }
}

#[tokio::test]
async fn credentials_in_header_and_body_are_invalid_request() {
    let s = start(Options::default()).await;
    let resp = token(&s, &[("grant_type", "client_credentials"), ("client_secret", SECRET)]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json(resp).await["error"], "invalid_request");
}

#[tokio::test]
async fn repeated_token_parameters_are_invalid_request() {
    let s = start(Options::default()).await;
    let resp = token(&s, &[("grant_type", "client_credentials"), ("grant_type", "client_credentials")]).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(json(resp).await["error"], "invalid_request");
    let bad_json =
        [r#"{"grant_type":"client_credentials","grant_type":"password"}"#, r#"{"grant_type":1}"#, "not json"];
    for body in bad_json {
        let resp = http()
            .post(format!("{}/token", s.base))
            .basic_auth(CONFIDENTIAL, Some(SECRET))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(json(resp).await["error"], "invalid_request");
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let s = start(Options::default()).await;
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(70_000));
    let resp = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_its_tokens() {
    let s = start(Options::default()).await;
    let redirect = browser_flow(&s, &authorize_url(&s, CONFIDENTIAL, "")).await;
    let code = query(&redirect, "code").unwrap();
    let form = code_exchange(&code);
    let first = json(token(&s, &form).await).await;
    let again = token(&s, &form).await;
    assert_eq!(again.status(), 400);
    assert_eq!(json(again).await["error"], "invalid_grant");
    let info = http()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 401);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_kills_the_family() {
    let s = start(Options::default()).await;
    let t0 = code_tokens(&s).await;
    let r0 = t0["refresh_token"].as_str().unwrap();
    let t1 = json(token(&s, &[("grant_type", "refresh_token"), ("refresh_token", r0)]).await).await;
    let r1 = t1["refresh_token"].as_str().unwrap();
    assert_ne!(r0, r1);
    assert_eq!(token(&s, &[("grant_type", "refresh_token"), ("refresh_token", r0)]).await.status(), 400);
    assert_eq!(token(&s, &[("grant_type", "refresh_token"), ("refresh_token", r1)]).await.status(), 400);
}

#[tokio::test]
async fn password_grant_works_when_switched_on_and_is_off_by_default() {
    let s = start(Options::default()).await;
    let ok = token(&s, &[("grant_type", "password"), ("username", USERNAME), ("password", PASSWORD)]).await;
    assert_eq!(ok.status(), 200);
    let wrong = token(&s, &[("grant_type", "password"), ("username", USERNAME), ("password", "x")]).await;
    let unknown = token(&s, &[("grant_type", "password"), ("username", "mallory"), ("password", "x")]).await;
    assert_eq!(
        (wrong.status(), unknown.status()),
        (reqwest::StatusCode::BAD_REQUEST, reqwest::StatusCode::BAD_REQUEST)
    );
    assert_eq!(json(wrong).await, json(unknown).await, "unknown user and wrong password look the same");

    let off = start(Options { password_grant: false, ..Options::default() }).await;
    let resp = token(&off, &[("grant_type", "password"), ("username", USERNAME), ("password", PASSWORD)]).await;
    assert_eq!(json(resp).await["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn throttled_client_authentication_is_429_invalid_client_with_retry_after() {
    let s = start(Options { max_failures_per_account: 2, ..Options::default() }).await;
    for _ in 0..2 {
        let r = http()
            .post(format!("{}/token", s.base))
            .basic_auth(CONFIDENTIAL, Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let resp = token(&s, &[("grant_type", "client_credentials")]).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(json(resp).await["error"], "invalid_client");
}

// --- revocation, introspection, userinfo ---------------------------------------------

#[tokio::test]
async fn revocation_and_introspection() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    let access = t["access_token"].as_str().unwrap();
    let introspect = |tok: String| {
        let base = s.base.clone();
        async move {
            let r = http()
                .post(format!("{base}/introspect"))
                .basic_auth(CONFIDENTIAL, Some(SECRET))
                .form(&[("token", tok)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["cache-control"], "no-store");
            json(r).await
        }
    };
    let i = introspect(access.to_owned()).await;
    // SPEC-2, "Changes to SPEC.md": `token_type` as in a token response, and
    // `token_use` says which kind of token it is.
    assert_eq!(
        (i["active"].as_bool(), i["token_type"].as_str(), i["token_use"].as_str()),
        (Some(true), Some("Bearer"), Some("access_token"))
    );
    for k in ["client_id", "scope", "sub", "exp", "iat", "iss", "aud", "jti"] {
        assert!(i.get(k).is_some(), "{k} in {i}");
    }
    let revoke = http()
        .post(format!("{}/revoke", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("token", t["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(introspect(access.to_owned()).await, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn public_clients_may_not_introspect() {
    let s = start(Options::default()).await;
    let resp = http()
        .post(format!("{}/introspect", s.base))
        .form(&[("client_id", PUBLIC), ("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(json(resp).await["error"], "invalid_client");
}

#[tokio::test]
async fn userinfo_answers_rfc6750_errors() {
    let s = start(Options::default()).await;
    let url = format!("{}/userinfo", s.base);
    let none = http().get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], format!("Bearer realm=\"{}\"", s.base));
    let malformed = http().get(&url).header("authorization", "Bearer a b").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let invalid = http().get(&url).bearer_auth("eyJhbGciOiJub25lIn0.e30.").send().await.unwrap();
    assert_eq!(invalid.status(), 401);
    assert!(invalid.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let cc = json(token(&s, &[("grant_type", "client_credentials")]).await).await;
    let no_account = http().get(&url).bearer_auth(cc["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(no_account.status(), 403);
    assert!(no_account.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    let resp = http()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(t["refresh_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

// --- operations -----------------------------------------------------------------------------

#[tokio::test]
async fn healthz_metrics_and_unknown_routes() {
    let s = start(Options::default()).await;
    assert_eq!(http().get(format!("{}/healthz", s.base)).send().await.unwrap().status(), 200);
    token(&s, &[("grant_type", "client_credentials")]).await;
    let metrics = http().get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("oauth_tokens_issued_total{grant_type=\"client_credentials\"} 1"), "{metrics}");
    assert!(metrics.contains("oauth_http_requests_total{route=\"token\",status=\"200\"} 1"), "{metrics}");
    assert_eq!(http().get(format!("{}/nope", s.base)).send().await.unwrap().status(), 404);
    let wrong_method = http().get(format!("{}/token", s.base)).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
}

// --- the "Also" list of issue 17 ------------------------------------------------------

#[tokio::test]
async fn userinfo_answers_are_not_stored() {
    let s = start(Options::default()).await;
    let t = code_tokens(&s).await;
    let url = format!("{}/userinfo", s.base);
    let ok = http().get(&url).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let missing = http().get(&url).send().await.unwrap();
    let invalid = http().get(&url).bearer_auth("eyJhbGciOiJub25lIn0.e30.").send().await.unwrap();
    for r in [ok, missing, invalid] {
        assert_eq!(r.headers()["cache-control"], "no-store", "{}", r.status());
    }
}

#[tokio::test]
async fn two_authorization_headers_at_the_token_endpoint_are_invalid_request() {
    let s = start(Options::default()).await;
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.append("authorization", basic(CONFIDENTIAL, SECRET).parse().unwrap());
    headers.append("authorization", basic(CONFIDENTIAL, "wrong").parse().unwrap());
    let r = http()
        .post(format!("{}/token", s.base))
        .headers(headers)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json(r).await["error"], "invalid_request");
}

#[tokio::test]
async fn basic_credentials_with_the_same_client_id_in_the_body_are_accepted() {
    let s = start(Options::default()).await;
    let same = token(&s, &[("grant_type", "client_credentials"), ("client_id", CONFIDENTIAL)]).await;
    assert_eq!(same.status(), 200, "RFC 6749 4.1.3 lets a client send its client_id");
    let other = token(&s, &[("grant_type", "client_credentials"), ("client_id", PUBLIC)]).await;
    assert_eq!(other.status(), 400);
    assert_eq!(json(other).await["error"], "invalid_request");
}
