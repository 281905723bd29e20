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

// --- what an outside attack found (issue 17) ------------------------------------------

/// A password grant for alice with `password`, from the forwarded address
/// `from` (the server trusts 127.0.0.1 as a proxy in these tests).
async fn password_grant(s: &TestServer, password: &str, from: Option<&str>) -> (u16, Value) {
    let mut req = http().post(format!("{}/token", s.base)).basic_auth(CONFIDENTIAL, Some(SECRET));
    if let Some(ip) = from {
        req = req.header("x-forwarded-for", ip);
    }
    let r =
        req.form(&[("grant_type", "password"), ("username", USERNAME), ("password", password)]).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn concurrent_password_guesses_get_at_most_the_limit_checked() {
    let held = HeldVerifier::new();
    let s = std::sync::Arc::new(start(Options { verifier: Some(held.clone()), ..Options::default() }).await);
    let guess = |password: &'static str| {
        let s = s.clone();
        tokio::spawn(async move { password_grant(&s, password, None).await })
    };
    // Thirty wrong guesses at once, the limit being 10...
    let first: Vec<_> = (0..30).map(|_| guess("wrong")).collect();
    held.wait_for(10).await;
    assert_eq!(held.entered(), 10, "only the limit of them reach Argon2id");
    // ...the right password at position 31, and nineteen more guesses: they
    // wait while the ten are checked, and are refused once those fail.
    let right = guess(PASSWORD);
    let rest: Vec<_> = (0..19).map(|_| guess("wrong")).collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    held.release();
    let (status, body) = right.await.unwrap();
    assert_eq!((status, body["error"].as_str()), (429, Some("invalid_grant")), "{body}");
    let mut statuses = std::collections::BTreeMap::new();
    for t in first.into_iter().chain(rest) {
        *statuses.entry(t.await.unwrap().0).or_insert(0) += 1;
    }
    assert_eq!(statuses, [(400, 10), (429, 39)].into(), "no guess got tokens");
    assert_eq!(held.entered(), 10, "nothing past the limit was verified");
}

#[tokio::test]
async fn concurrent_login_posts_get_at_most_the_limit_checked() {
    let held = HeldVerifier::new();
    let s = std::sync::Arc::new(start(Options { verifier: Some(held.clone()), ..Options::default() }).await);
    let b = std::sync::Arc::new(open_login(&s, &authorize_url(&s, CONFIDENTIAL, "")).await);
    let post = |password: &'static str| {
        let (s, b) = (s.clone(), b.clone());
        tokio::spawn(async move {
            let r = post_login(&s, &b, USERNAME, password).await;
            (r.status().as_u16(), r.headers().get("location").map(|l| l.to_str().unwrap().to_owned()))
        })
    };
    let first: Vec<_> = (0..30).map(|_| post("wrong")).collect();
    held.wait_for(10).await;
    assert_eq!(held.entered(), 10);
    let right = post(PASSWORD);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    held.release();
    let (status, location) = right.await.unwrap();
    assert_eq!((status, location), (429, None), "the right password past the limit does not reach consent");
    for t in first {
        let (status, location) = t.await.unwrap();
        assert!(status == 429 || location.as_deref().is_some_and(|l| l.contains("failed=1")), "{status} {location:?}");
    }
    assert_eq!(held.entered(), 10);
}

#[tokio::test]
async fn concurrent_correct_logins_past_the_limit_wait_their_turn_and_all_succeed() {
    let held = HeldVerifier::new();
    let s = std::sync::Arc::new(start(Options { verifier: Some(held.clone()), ..Options::default() }).await);
    let grants: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { password_grant(&s, PASSWORD, None).await })
        })
        .collect();
    held.wait_for(10).await;
    assert_eq!(held.entered(), 10, "the limit holds for correct passwords too: the rest wait");
    held.release();
    for g in grants {
        let (status, body) = g.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(held.entered(), 40);
}

#[tokio::test]
async fn clients_that_hang_up_mid_check_leave_nothing_counted() {
    let held = HeldVerifier::new();
    let s = std::sync::Arc::new(start(Options { verifier: Some(held.clone()), ..Options::default() }).await);
    let hung_up: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { password_grant(&s, "wrong", None).await })
        })
        .collect();
    held.wait_for(10).await;
    for t in &hung_up {
        t.abort();
    }
    // The server notices the closed connections and drops their requests.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    held.release();
    let started = std::time::Instant::now();
    let (status, body) = password_grant(&s, PASSWORD, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "it did not wait for the hung-up checks");
}

#[tokio::test]
async fn bad_requests_naming_a_public_client_never_lock_it_out() {
    let s = start(Options::default()).await;
    for _ in 0..11 {
        let (status, _) =
            token(&s, (PUBLIC, None), &[("grant_type", "authorization_code"), ("client_secret", "x")]).await;
        assert_eq!(status, 401);
    }
    let code = code_for(&s, PUBLIC).await;
    let (status, body) = token(&s, (PUBLIC, None), &code_exchange(&code)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_stranger_elsewhere_cannot_lock_an_account_out() {
    let localhost = "127.0.0.1".parse().unwrap();
    let s = start(Options { trusted_proxies: vec![localhost], ..Options::default() }).await;
    for _ in 0..10 {
        assert_eq!(password_grant(&s, "wrong", Some("203.0.113.66")).await.0, 400);
    }
    assert_eq!(password_grant(&s, PASSWORD, Some("203.0.113.66")).await.0, 429, "the attacker's address is locked");
    let (status, body) = password_grant(&s, PASSWORD, Some("198.51.100.7")).await;
    assert_eq!(status, 200, "the user, elsewhere, is not: {body}");
}

#[tokio::test]
async fn response_parameters_in_a_redirect_uris_query_get_the_error_page() {
    let s = start(Options::default()).await;
    for polluted in [
        "https://pgo.example.org/cb?code=X&state=Y&iss=https://evil.example",
        "https://pgo.example.org/cb?error=access_denied",
        "https://pgo.example.org/cb?a=1&i%73s=https://evil.example",
    ] {
        let url = format!(
            "{}/authorize?response_type=code&client_id={HOST}&redirect_uri={}&scope=1&state=s",
            s.base,
            urlencode(polluted)
        );
        let r = http().get(url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{polluted}");
        assert!(r.headers().get("location").is_none(), "{polluted} was redirected to");
    }
}

/// Every session the store holds: a sweep a day ahead removes (and counts)
/// them all.
async fn stored_sessions(s: &TestServer) -> u64 {
    use oauth_core::Clock;
    let later = oauth_runtime::credentials::SystemClock.now() + time::Duration::days(1);
    s.store.sweep(later, later).await.unwrap().sessions
}

#[tokio::test]
async fn an_authorize_flood_stores_at_most_max_pending_per_ip_sessions() {
    const CAP: u32 = 50;
    let s = start(Options { max_pending_per_ip: CAP, ..Options::default() }).await;
    // MedMij's free query, just under every cap.
    let redirect = format!("https://{HOST}/cb?pad={}", "a".repeat(1900));
    let url = format!(
        "{}/authorize?response_type=code&client_id={HOST}&redirect_uri={}&scope=1&state=s",
        s.base,
        urlencode(&redirect)
    );
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..4 * CAP {
        let r = http().get(&url).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
            assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        }
        *statuses.entry(r.status().as_u16()).or_insert(0u32) += 1;
    }
    assert_eq!(statuses, [(200, CAP), (429, 3 * CAP)].into());
    assert_eq!(stored_sessions(&s).await, u64::from(CAP));
}

/// A push (PAR) of the public client from `app_ip` (through the trusted
/// proxy at 127.0.0.1), or of the confidential client when `confidential`.
async fn push_from(s: &TestServer, app_ip: &str, confidential: bool) -> reqwest::Response {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "read"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let mut req = http().post(format!("{}/par", s.base)).header("x-forwarded-for", app_ip);
    if confidential {
        req = req.basic_auth(CONFIDENTIAL, Some(SECRET));
    } else {
        form.push(("client_id", PUBLIC));
    }
    req.form(&form).send().await.unwrap()
}

/// The review's storage flood through PAR: a public client's push, which
/// its `client_id` alone authenticates, stores up to a few KB for 60 s. It
/// counts as pending for its address, with the address's sessions and
/// device requests, until its `request_uri` is used or expires (expiry:
/// `oauth-core` `pending::a_pushed_request_that_expires_frees_its_place`).
#[tokio::test]
async fn a_public_clients_pushed_requests_are_capped_per_address() {
    const CAP: u32 = 3;
    const APP: &str = "203.0.113.40";
    let localhost = "127.0.0.1".parse().unwrap();
    let s = start(Options { max_pending_per_ip: CAP, trusted_proxies: vec![localhost], ..Options::default() }).await;
    let mut uris = Vec::new();
    for _ in 0..CAP {
        let r = push_from(&s, APP, false).await;
        assert_eq!(r.status(), 201);
        uris.push(r.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_owned());
    }
    let refused = push_from(&s, APP, false).await;
    assert_eq!(refused.status(), 429, "past the cap");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "free when the first push expires: {retry_after}");
    assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "temporarily_unavailable");

    let confidential = push_from(&s, APP, true).await;
    assert_eq!(confidential.status(), 201, "an authenticated client's pushes are not the address's");

    // The browser (at 127.0.0.1) uses the first request_uri: its session
    // counts for the browser's address, and the push no longer for the app's.
    let url = format!("{}/authorize?client_id={PUBLIC}&request_uri={}", s.base, urlencode(&uris[0]));
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200, "the login page");
    assert_eq!(push_from(&s, APP, false).await.status(), 201, "the used request_uri freed its place");
    assert_eq!(push_from(&s, APP, false).await.status(), 429, "and only that one");
}

#[tokio::test]
async fn oversized_authorization_requests_get_the_error_page() {
    let s = start(Options::default()).await;
    let request = |redirect: &str, extra: &str| {
        format!(
            "{}/authorize?response_type=code&client_id={HOST}&redirect_uri={}&scope=1&state=s{extra}",
            s.base,
            urlencode(redirect)
        )
    };
    // The attack's 60 KB redirect URI, and one just over 2,048 bytes.
    let huge = format!("https://{HOST}/cb?pad={}", "a".repeat(60_000));
    let long = format!("https://{HOST}/cb?pad={}", "a".repeat(2030));
    assert!(long.len() > 2048);
    for url in [request(&huge, ""), request(&long, ""), request(&format!("https://{HOST}/cb"), &"&x=1".repeat(2100))] {
        let r = http().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{} bytes", url.len());
        assert!(r.headers().get("location").is_none());
    }
    assert_eq!(stored_sessions(&s).await, 0, "nothing was stored");
}

#[tokio::test]
async fn a_revoked_access_token_stays_refused_inside_the_leeway() {
    // Access tokens live 1 s; the verifier allows 30 s of leeway past `exp`.
    let s = start(Options { access_token_ttl: time::Duration::seconds(1), ..Options::default() }).await;
    let revoked = code_tokens(&s).await["access_token"].as_str().unwrap().to_owned();
    let kept = code_tokens(&s).await["access_token"].as_str().unwrap().to_owned();
    let r = http()
        .post(format!("{}/revoke", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Past `exp`, inside the leeway.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(userinfo(&s, &kept).await, 200, "inside the leeway the bearer check accepts a live token");
    assert_eq!(userinfo(&s, &revoked).await, 401, "but never a revoked one");
    for token in [&revoked, &kept] {
        let r = http()
            .post(format!("{}/introspect", s.base))
            .basic_auth(CONFIDENTIAL, Some(SECRET))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}), "introspection judges expiry without leeway");
    }
}
