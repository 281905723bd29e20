//! The device authorization grant (RFC 8628) over real HTTP against a real
//! server: the device's requests and polls, the user's pages, their
//! interleavings, races and bad input. One test per rule; names state the
//! rule. The flows' rules with a manual clock are in
//! `oauth-core/tests/device.rs`; the store's in the conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

/// A server whose device codes live `ttl` seconds and are polled every second.
async fn fast(ttl: i64) -> TestServer {
    start(Options {
        device_interval: time::Duration::seconds(1),
        device_code_ttl: time::Duration::seconds(ttl),
        ..Options::default()
    })
    .await
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("")
}

/// Waits out the interval of one second, with a margin for a loaded machine:
/// the server reads its clock when it handles a poll, which may be late.
async fn wait_interval() {
    tokio::time::sleep(Duration::from_millis(2000)).await;
}

#[tokio::test]
async fn device_flow_with_polls_before_between_and_after_the_users_steps() {
    let s = fast(600).await;
    let started = device_start(&s, "openid read").await;
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(started["verification_uri"], format!("{}/device", s.base));
    assert_eq!(started["verification_uri_complete"], format!("{}/device?user_code={user_code}", s.base));
    assert_eq!((started["expires_in"].as_i64(), started["interval"].as_i64()), (Some(600), Some(1)));
    let device_code = started["device_code"].as_str().unwrap();
    assert_eq!(
        device_poll(&s, device_code).await,
        (
            400,
            serde_json::json!({
                "error": "authorization_pending",
                "error_description": "the user has not decided yet; poll again after the interval",
            })
        )
    );

    let mut browser = DeviceBrowser { cookies: vec![] };
    let url = started["verification_uri_complete"].as_str().unwrap();
    let resp = device_submit(&s, &mut browser, url, None).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/authorize/login?session="), "{}", location(&resp));
    wait_interval().await;
    let (status, body) = device_poll(&s, device_code).await;
    assert_eq!((status, error(&body)), (400, "authorization_pending"), "the user is on the login page");

    let done = device_user_steps(&s, &mut browser, user_code, true).await;
    assert_eq!(done, format!("{}/device/done?result=approved", s.base));
    let page = http().get(&done).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Return to your device"));

    wait_interval().await;
    let (status, tokens) = device_poll(&s, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid read");
    assert!(tokens["refresh_token"].is_string(), "the client may refresh");
    assert!(tokens["id_token"].is_string(), "openid asks for an ID token");
    let userinfo = http().get(format!("{}/userinfo", s.base)).bearer_auth(tokens["access_token"].as_str().unwrap());
    assert_eq!(userinfo.send().await.unwrap().json::<Value>().await.unwrap()["sub"], s.account.id.to_string());

    wait_interval().await;
    let (status, body) = device_poll(&s, device_code).await;
    assert_eq!((status, error(&body)), (400, "invalid_grant"), "a used device code");
}

#[tokio::test]
async fn device_flow_with_the_user_done_before_the_first_poll() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    device_user_steps(&s, &mut browser, started["user_code"].as_str().unwrap(), true).await;
    let (status, tokens) = device_poll(&s, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the first poll is never too soon: {tokens}");
    assert!(tokens["id_token"].is_null(), "no openid, no ID token");
}

#[tokio::test]
async fn a_browser_with_a_session_skips_the_login_but_never_the_consent_page() {
    let s = fast(600).await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    let first = device_start(&s, "read").await;
    device_user_steps(&s, &mut browser, first["user_code"].as_str().unwrap(), true).await;
    let second = device_start(&s, "read").await;
    let code = second["user_code"].as_str().unwrap();
    let resp = device_submit(&s, &mut browser, &format!("{}/device", s.base), Some(code)).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/authorize/consent?session="), "consent remembered and skip_consent set");
    let done = device_user_steps(&s, &mut browser, code, true).await;
    assert!(done.ends_with("result=approved"));
}

#[tokio::test]
async fn typed_user_codes_match_ignoring_case_spaces_and_dashes() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let code = started["user_code"].as_str().unwrap().to_lowercase().replace('-', " ");
    let mut browser = DeviceBrowser { cookies: vec![] };
    let resp = device_submit(&s, &mut browser, &format!("{}/device", s.base), Some(&format!(" {code} "))).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn a_denied_device_gets_access_denied() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    let done = device_user_steps(&s, &mut browser, started["user_code"].as_str().unwrap(), false).await;
    assert_eq!(done, format!("{}/device/done?result=denied", s.base));
    let (status, body) = device_poll(&s, started["device_code"].as_str().unwrap()).await;
    assert_eq!((status, error(&body)), (400, "access_denied"));
}

#[tokio::test]
async fn a_poll_sooner_than_the_interval_is_slow_down_and_the_interval_grows_by_five_seconds() {
    // An interval of 3 s, so that two polls in a row come sooner even on a
    // loaded machine.
    let s = start(Options { device_interval: time::Duration::seconds(3), ..Options::default() }).await;
    let started = device_start(&s, "read").await;
    let code = started["device_code"].as_str().unwrap();
    assert_eq!(error(&device_poll(&s, code).await.1), "authorization_pending");
    assert_eq!(error(&device_poll(&s, code).await.1), "slow_down");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(error(&device_poll(&s, code).await.1), "slow_down", "the interval is 8 s now, not 3 s");
}

#[tokio::test]
async fn concurrent_polls_after_approval_give_tokens_exactly_once() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    device_user_steps(&s, &mut browser, started["user_code"].as_str().unwrap(), true).await;
    let code = started["device_code"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (base, code) = (s.base.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let resp = http()
                .post(format!("{base}/token"))
                .form(&[("grant_type", DEVICE_GRANT), ("device_code", &code), ("client_id", DEVICE)])
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }));
    }
    let mut won = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => won += 1,
            _ => assert!(matches!(error(&body), "invalid_grant" | "slow_down"), "{body}"),
        }
    }
    assert_eq!(won, 1, "exactly one poll gets tokens");
}

#[tokio::test]
async fn an_approval_racing_the_expiry_never_gives_tokens_after_expires_in() {
    let s = fast(2).await;
    let started = device_start(&s, "read").await;
    let issued_at = oauth_core::Clock::now(&oauth_runtime::SystemClock);
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let mut browser = DeviceBrowser { cookies: vec![] };
    // The user reaches the consent page, then decides right at the expiry
    // while the device polls every interval.
    let url = format!("{}/device?user_code={user_code}", s.base);
    let resp = device_submit(&s, &mut browser, &url, None).await;
    let login = format!("http://{}{}", s.addr, location(&resp));
    let html = http().get(&login).header("cookie", browser.header()).send().await.unwrap().text().await.unwrap();
    let resp = http()
        .post(format!("{}/authorize/login", s.base))
        .header("cookie", browser.header())
        .form(&[
            ("session", hidden(&html, "session")),
            ("csrf", hidden(&html, "csrf")),
            ("username", USERNAME.into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    browser.keep(&resp);
    let consent = format!("http://{}{}", s.addr, location(&resp));
    let html = http().get(&consent).header("cookie", browser.header()).send().await.unwrap().text().await.unwrap();
    let elapsed = oauth_core::Clock::now(&oauth_runtime::SystemClock) - issued_at;
    tokio::time::sleep((time::Duration::seconds(2) - elapsed).try_into().unwrap_or_default()).await;
    let approve = {
        let (base, cookie) = (s.base.clone(), browser.header());
        let form =
            [("session", hidden(&html, "session")), ("csrf", hidden(&html, "csrf")), ("decision", "approve".into())];
        tokio::spawn(async move {
            http().post(format!("{base}/authorize/consent")).header("cookie", cookie).form(&form).send().await.unwrap()
        })
    };
    let (status, body) = device_poll(&s, &device_code).await;
    let approved = approve.await.unwrap();
    if status == 200 {
        // Only possible when both came before the expiry: the token says when.
        let claims =
            s.frontend.authority().services().tokens.verify(body["access_token"].as_str().unwrap(), issued_at).await;
        assert!(claims.unwrap().issued_at <= issued_at + time::Duration::seconds(2), "tokens after expires_in");
    } else {
        assert!(matches!(error(&body), "authorization_pending" | "expired_token"), "{body}");
    }
    assert!(matches!(approved.status().as_u16(), 303 | 400), "{}", approved.status());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = device_poll(&s, &device_code).await;
    assert!(status == 400 && matches!(error(&body), "expired_token" | "invalid_grant"), "{status} {body}");
}

#[tokio::test]
async fn an_expired_device_code_gets_expired_token_and_its_user_code_is_refused() {
    // The record answers `expired_token` for a code lifetime after expiry:
    // 2 s of margin for a loaded machine.
    let s = fast(2).await;
    let started = device_start(&s, "read").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = device_poll(&s, started["device_code"].as_str().unwrap()).await;
    assert_eq!((status, error(&body)), (400, "expired_token"));
    let mut browser = DeviceBrowser { cookies: vec![] };
    let url = format!("{}/device?user_code={}", s.base, started["user_code"].as_str().unwrap());
    let resp = device_submit(&s, &mut browser, &url, None).await;
    assert_eq!(resp.status(), 400, "the form again, with an error");
}

#[tokio::test]
async fn an_unknown_device_code_is_invalid_grant() {
    let s = fast(600).await;
    let (status, body) = device_poll(&s, "no-such-device-code").await;
    assert_eq!((status, error(&body)), (400, "invalid_grant"));
    let resp = http()
        .post(format!("{}/token", s.base))
        .form(&[("grant_type", DEVICE_GRANT), ("client_id", DEVICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error(&resp.json().await.unwrap()), "invalid_request", "no device_code at all");
}

#[tokio::test]
async fn a_client_without_the_device_grant_is_unauthorized_client() {
    let s = fast(600).await;
    let resp =
        http().post(format!("{}/device_authorization", s.base)).form(&[("client_id", PUBLIC)]).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error(&resp.json().await.unwrap()), "unauthorized_client");
    let resp = http()
        .post(format!("{}/token", s.base))
        .form(&[("grant_type", DEVICE_GRANT), ("device_code", "x"), ("client_id", PUBLIC)])
        .send()
        .await
        .unwrap();
    assert_eq!(error(&resp.json().await.unwrap()), "unauthorized_client", "nor may it poll");
}

#[tokio::test]
async fn a_device_code_presented_by_another_client_is_invalid_grant() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let resp = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("grant_type", DEVICE_GRANT), ("device_code", started["device_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error(&resp.json().await.unwrap()), "invalid_grant");
}

#[tokio::test]
async fn a_confidential_client_authenticates_at_the_device_endpoint_as_at_token() {
    let s = fast(600).await;
    let ok = http()
        .post(format!("{}/device_authorization", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let bad = http()
        .post(format!("{}/device_authorization", s.base))
        .basic_auth(CONFIDENTIAL, Some("wrong"))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(error(&bad.json().await.unwrap()), "invalid_client");
}

#[tokio::test]
async fn repeated_parameters_are_invalid_request_everywhere_on_the_device_path() {
    let s = fast(600).await;
    let resp = http()
        .post(format!("{}/device_authorization", s.base))
        .body(format!("client_id={DEVICE}&scope=read&scope=openid"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error(&resp.json().await.unwrap()), "invalid_request");
    let resp = http()
        .post(format!("{}/token", s.base))
        .body(format!("grant_type={}&client_id={DEVICE}&device_code=a&device_code=b", urlencode(DEVICE_GRANT)))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(error(&resp.json().await.unwrap()), "invalid_request");
    let resp = http()
        .post(format!("{}/device", s.base))
        .body("user_code=BCDF-GHJK&user_code=BCDF-GHJK")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "the page refuses it too");
}

#[tokio::test]
async fn wrong_user_codes_show_the_form_again_and_count_per_peer_until_429() {
    let s = start(Options { max_failures_per_ip: 3, ..Options::default() }).await;
    let started = device_start(&s, "read").await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    let url = format!("{}/device", s.base);
    for typed in ["BBBB-BBBB", "not a code at all", "CCCC-CCCC"] {
        let resp = device_submit(&s, &mut browser, &url, Some(typed)).await;
        assert_eq!(resp.status(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("role=\"alert\"") && html.contains("name=\"user_code\""), "the form again: {html}");
    }
    let right = started["user_code"].as_str().unwrap();
    let resp = device_submit(&s, &mut browser, &url, Some(right)).await;
    assert_eq!(resp.status(), 429, "past the limit even the right code is refused");
    assert!(resp.headers().contains_key("retry-after"));
    assert!(resp.text().await.unwrap().contains("Too many wrong codes"));
}

/// A burst of wrong user codes from one address is throttled as a burst of
/// password guesses is: each code is admitted before its lookup, so of any
/// number of concurrent codes at most `max_failures_per_ip` are looked up
/// (each answered with the form again), the rest get 429, and past the limit
/// the right code opens no session.
#[tokio::test]
async fn a_burst_of_wrong_user_codes_gets_at_most_the_limit_checked_and_then_the_right_one_429() {
    const LIMIT: u32 = 5;
    const BURST: usize = 30;
    let s = start(Options { max_failures_per_ip: LIMIT, ..Options::default() }).await;
    let started = device_start(&s, "read").await;
    let url = format!("{}/device", s.base);
    // Each browser has its page and CSRF token first, so the posts go at once.
    let mut posts = Vec::new();
    for i in 0..BURST {
        let page = http().get(&url).send().await.unwrap();
        let mut browser = DeviceBrowser { cookies: vec![] };
        browser.keep(&page);
        let csrf = hidden(&page.text().await.unwrap(), "csrf");
        // Wrong codes of the right shape, each different.
        let letters = b"BCDFGHJKLMNPQRSTVWXZ";
        let typed: String = (0..8).map(|j| char::from(letters[(i * 7 + j * 3) % letters.len()])).collect::<String>();
        assert_ne!(typed, started["user_code"].as_str().unwrap().replace('-', ""));
        let post = http().post(&url).header("cookie", browser.header()).form(&[("csrf", csrf), ("user_code", typed)]);
        posts.push(post);
    }
    let burst: Vec<_> = posts
        .into_iter()
        .map(|post| tokio::spawn(async move { post.send().await.unwrap().status().as_u16() }))
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for t in burst {
        *statuses.entry(t.await.unwrap()).or_insert(0usize) += 1;
    }
    let looked_up = statuses.get(&400).copied().unwrap_or(0);
    assert!(looked_up <= LIMIT as usize, "at most the limit looked up: {statuses:?}");
    assert_eq!(looked_up + statuses.get(&429).copied().unwrap_or(0), BURST, "the rest refused: {statuses:?}");

    let right = started["user_code"].as_str().unwrap();
    let resp = device_submit(&s, &mut DeviceBrowser { cookies: vec![] }, &url, Some(right)).await;
    assert_eq!(resp.status(), 429, "past the limit the right code is refused too");
    assert!(resp.headers().contains_key("retry-after"));
    assert!(resp.headers().get("location").is_none(), "no login or consent page");
    let html = resp.text().await.unwrap();
    assert!(!html.contains("name=\"decision\"") && !html.contains("name=\"password\""), "{html}");
}

#[tokio::test]
async fn the_device_form_needs_its_csrf_token() {
    let s = fast(600).await;
    let started = device_start(&s, "read").await;
    let page = http().get(format!("{}/device", s.base)).send().await.unwrap();
    let cookie = cookie_of(&page);
    let resp = http()
        .post(format!("{}/device", s.base))
        .header("cookie", cookie)
        .form(&[("csrf", "forged"), ("user_code", started["user_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn the_device_pages_speak_dutch() {
    let s = fast(600).await;
    let page = http().get(format!("{}/device", s.base)).header("accept-language", "nl-NL").send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"nl\">") && html.contains("Apparaat koppelen"), "{html}");
    let done = http().get(format!("{}/device/done?result=approved", s.base)).header("accept-language", "nl");
    let html = done.send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Ga terug naar uw apparaat"), "{html}");
}

#[tokio::test]
async fn both_metadata_documents_name_the_device_authorization_endpoint() {
    let s = fast(600).await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m: Value = http().get(format!("{}{path}", s.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(m["device_authorization_endpoint"], format!("{}/device_authorization", s.base), "{path}");
        assert!(m["grant_types_supported"].as_array().unwrap().iter().any(|g| g == DEVICE_GRANT), "{path}");
    }
}

#[tokio::test]
async fn not_you_on_a_device_consent_page_asks_for_a_fresh_login_for_the_same_code() {
    let s = fast(600).await;
    let mut browser = DeviceBrowser { cookies: vec![] };
    let first = device_start(&s, "read").await;
    device_user_steps(&s, &mut browser, first["user_code"].as_str().unwrap(), true).await;
    let second = device_start(&s, "read").await;
    let code = second["user_code"].as_str().unwrap();
    let resp = device_submit(&s, &mut browser, &format!("{}/device?user_code={code}", s.base), None).await;
    let consent = format!("http://{}{}", s.addr, location(&resp));
    let html = http().get(&consent).header("cookie", browser.header()).send().await.unwrap().text().await.unwrap();
    let href = format!("/device?user_code={code}&amp;prompt=login");
    assert!(html.contains(&href), "the link names the same code: {html}");
    let url = format!("{}/device?user_code={code}&prompt=login", s.base);
    let resp = device_submit(&s, &mut browser, &url, None).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/authorize/login?session="), "a fresh login despite the session");
}

/// A server behind a trusted proxy at 127.0.0.1 whose addresses may each
/// have `cap` things pending: a device's requests can then come from an
/// address other than its user's browser, as a TV's and a phone's do. (From
/// one address, the device's own pending request shares the cap with its
/// user's session.)
async fn behind_proxy(cap: u32, device_code_ttl: i64) -> TestServer {
    start(Options {
        max_pending_per_ip: cap,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        device_code_ttl: time::Duration::seconds(device_code_ttl),
        ..Options::default()
    })
    .await
}

const DEVICE_IP: &str = "203.0.113.5";

async fn device_start_from(s: &TestServer, device_ip: &str) -> Value {
    let resp = device_request_from(s, "read", device_ip).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_device_session_is_pending_for_its_address_until_a_user_logs_in_to_decide_it() {
    let s = behind_proxy(1, 600).await;
    let authorize = authorize_url(&s, CONFIDENTIAL, "");
    for approve in [true, false] {
        let started = device_start_from(&s, DEVICE_IP).await;
        let user_code = started["user_code"].as_str().unwrap();
        let mut browser = DeviceBrowser { cookies: vec![] };
        let url = started["verification_uri_complete"].as_str().unwrap();
        let opened = device_submit(&s, &mut browser, url, None).await;
        assert_eq!(opened.status(), 303, "the code opens a session");
        let to = location(&opened);

        let flood = http().get(&authorize).send().await.unwrap();
        assert_eq!(flood.status(), 429, "the device session fills the address's one pending place");
        assert!(flood.headers().contains_key("retry-after"));
        let again = device_submit(&s, &mut DeviceBrowser { cookies: vec![] }, url, None).await;
        assert_eq!(again.status(), 429, "so does a second session for the same code");
        assert!(again.headers().contains_key("retry-after"));

        let done = device_decide(&s, &mut browser, &to, user_code, approve).await;
        let result = if approve { "approved" } else { "denied" };
        assert_eq!(done, format!("{}/device/done?result={result}", s.base));
        // Decided, the device session is no longer pending: the address
        // may open a session again (the login page, 200). Its user logs in
        // to it, so that it is not pending in the next round either.
        let b = open_login(&s, &authorize).await;
        assert_eq!(post_login(&s, &b, USERNAME, PASSWORD).await.status(), 303);
    }
}

#[tokio::test]
async fn public_device_requests_are_capped_per_address_until_decided() {
    let s = behind_proxy(2, 600).await;
    let first = device_start_from(&s, DEVICE_IP).await;
    device_start_from(&s, DEVICE_IP).await;
    let refused = device_request_from(&s, "read", DEVICE_IP).await;
    assert_eq!(refused.status(), 429, "the third undecided request of the address");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry_after), "free when the oldest expires: {retry_after}");
    assert_eq!(error(&refused.json().await.unwrap()), "temporarily_unavailable");

    let confidential = http()
        .post(format!("{}/device_authorization", s.base))
        .header("x-forwarded-for", DEVICE_IP)
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(confidential.status(), 200, "an authenticated client's requests are not the address's");

    let mut browser = DeviceBrowser { cookies: vec![] };
    device_user_steps(&s, &mut browser, first["user_code"].as_str().unwrap(), false).await;
    device_start_from(&s, DEVICE_IP).await;
}

/// Device requests and sessions from one address share its cap: a public
/// client's undecided request holds a place that a browser's session on the
/// same address then lacks.
#[tokio::test]
async fn device_requests_and_sessions_from_one_address_share_max_pending_per_ip() {
    let s = behind_proxy(2, 600).await;
    device_start_from(&s, DEVICE_IP).await;
    let authorize = authorize_url(&s, CONFIDENTIAL, "");
    let opened = http().get(&authorize).header("x-forwarded-for", DEVICE_IP).send().await.unwrap();
    assert_eq!(opened.status(), 200, "the second place: the login page");
    let refused = http().get(&authorize).header("x-forwarded-for", DEVICE_IP).send().await.unwrap();
    assert_eq!(refused.status(), 429, "the device request and the session fill the cap of two");
    assert!(refused.headers().contains_key("retry-after"));
    let refused = device_request_from(&s, "read", DEVICE_IP).await;
    assert_eq!(refused.status(), 429, "for device requests too");
    assert_eq!(http().get(&authorize).send().await.unwrap().status(), 200, "another address has its own count");
}

/// A device session lives no longer than its device code, and counts for
/// its address only that long, not for `session_ttl` (600 s here).
#[tokio::test]
async fn public_device_requests_and_their_sessions_stop_counting_when_the_code_expires() {
    let s = behind_proxy(1, 2).await;
    let started = device_start_from(&s, DEVICE_IP).await;
    let refused = device_request_from(&s, "read", DEVICE_IP).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let url = started["verification_uri_complete"].as_str().unwrap();
    let opened = device_submit(&s, &mut DeviceBrowser { cookies: vec![] }, url, None).await;
    assert_eq!(opened.status(), 303, "the user's session, from the browser's address");
    let authorize = authorize_url(&s, CONFIDENTIAL, "");
    let flood = http().get(&authorize).send().await.unwrap();
    assert_eq!(flood.status(), 429, "the device session fills the browser address's place");
    let retry_after: u64 = flood.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "free when the device code expires: {retry_after}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    device_start_from(&s, DEVICE_IP).await;
    assert_eq!(http().get(&authorize).send().await.unwrap().status(), 200, "the expired device session left");
}

#[tokio::test]
async fn right_user_codes_are_no_failures_for_the_address() {
    let s = start(Options { max_failures_per_ip: 2, ..Options::default() }).await;
    let url = format!("{}/device", s.base);
    for _ in 0..4 {
        let started = device_start(&s, "read").await;
        let typed = started["user_code"].as_str().unwrap();
        let resp = device_submit(&s, &mut DeviceBrowser { cookies: vec![] }, &url, Some(typed)).await;
        assert_eq!(resp.status(), 303, "twice the limit of right codes, none refused");
    }
    let wrong = device_submit(&s, &mut DeviceBrowser { cookies: vec![] }, &url, Some("BBBB-BBBB")).await;
    assert_eq!(wrong.status(), 400, "and the first wrong one is still only wrong");
}
