//! OpenID Connect and single sign-on over real HTTP (SPEC-2): ID tokens,
//! UserInfo, discovery, the session cookie, remembered consent, `prompt`,
//! `max_age`, `login_hint`, RP-initiated logout and the pages' languages.
//! Each test is named for the rule it checks.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth_core::{Account, BROWSER_SESSION, Store, TokenHash};
use oauth_store_mem::MemStore;
use support::*;

/// The time, from the clock the server uses.
fn now() -> time::OffsetDateTime {
    oauth_core::Clock::now(&oauth_runtime::credentials::SystemClock)
}

/// The cookies a browser keeps for the server (one path, one host).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
    fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }
    fn session(&self) -> Option<&String> {
        self.0.get("oauth_session")
    }
    async fn get(&mut self, url: &str) -> reqwest::Response {
        let r = http().get(url).header("cookie", self.header()).send().await.unwrap();
        self.take(&r);
        r
    }
    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = http().post(url).header("cookie", self.header()).form(form).send().await.unwrap();
        self.take(&r);
        r
    }
}

/// An OpenID Connect authorization URL for `client` with PKCE.
fn oidc_url(s: &TestServer, client: &str, scope: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=st&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        s.base,
        urlencode(REDIRECT),
        urlencode(scope),
    )
}

/// Whether a page is the login page.
fn is_login(html: &str) -> bool {
    html.contains("/authorize/login\"")
}

/// Whether a page is the consent page.
fn is_consent(html: &str) -> bool {
    html.contains("name=\"decision\" value=\"approve\"")
}

/// Opens `url`, expecting the login page, and signs in as `username`;
/// answers the login's response (303).
async fn sign_in(s: &TestServer, jar: &mut Jar, url: &str, username: &str) -> reqwest::Response {
    let page = jar.get(url).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(is_login(&html), "{html}");
    let (session, csrf) = (hidden(&html, "session"), hidden(&html, "csrf"));
    let r = jar
        .post(
            &format!("{}/authorize/login", s.base),
            &[("session", &session), ("csrf", &csrf), ("username", username), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status(), 303);
    r
}

/// Follows a redirect to the consent page and approves; the client URL.
async fn approve_at(s: &TestServer, jar: &mut Jar, consent: &str) -> String {
    let page = jar.get(&format!("http://{}{consent}", s.addr)).await;
    let html = page.text().await.unwrap();
    approve_page(s, jar, &html).await
}

/// Approves on the consent page `html`; the client URL.
async fn approve_page(s: &TestServer, jar: &mut Jar, html: &str) -> String {
    assert!(is_consent(html), "{html}");
    let (session, csrf) = (hidden(html, "session"), hidden(html, "csrf"));
    let r = jar
        .post(
            &format!("{}/authorize/consent", s.base),
            &[("session", &session), ("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(r.status(), 303);
    location(&r)
}

/// A first login and approval for `client`; the client URL with the code.
async fn first_login(s: &TestServer, jar: &mut Jar, client: &str, scope: &str, extra: &str) -> String {
    let r = sign_in(s, jar, &oidc_url(s, client, scope, extra), USERNAME).await;
    approve_at(s, jar, &location(&r)).await
}

/// Redeems the code in `client_url` for the public client `client`.
async fn tokens(s: &TestServer, client: &str, client_url: &str) -> serde_json::Value {
    assert!(client_url.starts_with(REDIRECT), "{client_url}");
    let code = query(client_url, "code").unwrap_or_else(|| panic!("no code in {client_url}"));
    let r = http()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The claims of `token`, after checking its signature against the server's
/// JWKS, its issuer and its audience `client`, as a relying party would.
async fn verified_claims(s: &TestServer, token: &str, client: &str) -> (jsonwebtoken::Header, serde_json::Value) {
    let jwks: jsonwebtoken::jwk::JwkSet =
        http().get(format!("{}/jwks.json", s.base)).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&s.base]);
    v.set_audience(&[client]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).unwrap();
    (header, data.claims)
}

fn payload(token: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// Two servers on one store: issuer paths `/a` and `/b`.
async fn two_issuers() -> (TestServer, TestServer) {
    let store = Arc::new(MemStore::new());
    let a = start_on(Options { issuer_path: "/a", ..Options::default() }, store.clone()).await;
    let b = start_on(Options { issuer_path: "/b", ..Options::default() }, store).await;
    (a, b)
}

#[tokio::test]
async fn an_openid_code_flow_returns_an_id_token_with_every_claim() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "openid read", "&nonce=n-0S6_WzA2Mj").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let id_token = t["id_token"].as_str().expect("an id_token");
    let (header, c) = verified_claims(&s, id_token, OIDC).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "RS256 by default");
    assert_eq!(c["iss"], s.base.as_str());
    assert_eq!(c["aud"], OIDC);
    assert_eq!(c["azp"], OIDC);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600, "[oidc] id_token_ttl");
    let access = payload(t["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], access["sub"], "the same sub as the access token");
    assert_eq!(c["sub"], s.account.id.to_string());
    let auth_time = c["auth_time"].as_i64().unwrap();
    assert!((c["iat"].as_i64().unwrap() - auth_time).abs() < 60, "{c}");
    assert!(c["sid"].as_str().is_some_and(|sid| !sid.is_empty()), "{c}");
    // at_hash: the left half of the SHA-256 of the access token.
    let digest = sha256(t["access_token"].as_str().unwrap());
    assert_eq!(c["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
    for attribute in ["name", "email", "bsn", "username"] {
        assert!(c.get(attribute).is_none(), "ID tokens carry no account attributes: {c}");
    }
}

/// SHA-256, computed apart from the server's code as a relying party would.
fn sha256(s: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes()).to_vec()
}

#[tokio::test]
async fn an_id_token_has_no_nonce_when_the_request_had_none_and_a_client_may_ask_for_the_servers_algorithm() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    // The first-party client skips consent: the login answers with the code.
    let r = sign_in(&s, &mut jar, &oidc_url(&s, FIRST_PARTY, "openid", ""), USERNAME).await;
    let t = tokens(&s, FIRST_PARTY, &location(&r)).await;
    let (header, c) = verified_claims(&s, t["id_token"].as_str().unwrap(), FIRST_PARTY).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256, "id_token_signed_response_alg = the server's");
    assert!(c.get("nonce").is_none(), "{c}");
}

#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "read", "").await;
    let t = tokens(&s, OIDC, &client_url).await;
    assert!(t.get("id_token").is_none(), "{t}");
}

#[tokio::test]
async fn a_refresh_returns_a_new_id_token_with_the_same_sub_and_auth_time_and_no_nonce() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "openid read", "&nonce=abc").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let (_, first) = verified_claims(&s, t["id_token"].as_str().unwrap(), OIDC).await;
    let r = http()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", OIDC),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let refreshed: serde_json::Value = r.json().await.unwrap();
    let (_, again) = verified_claims(&s, refreshed["id_token"].as_str().expect("a new id_token"), OIDC).await;
    assert_eq!(
        (&again["sub"], &again["auth_time"], &again["sid"]),
        (&first["sub"], &first["auth_time"], &first["sid"])
    );
    assert!(again.get("nonce").is_none(), "{again}");
}

#[tokio::test]
async fn userinfo_with_openid_answers_standard_claims_by_scope_and_no_attribute_outside_them() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "openid profile email", "").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let token = t["access_token"].as_str().unwrap();
    let by_get: serde_json::Value =
        http().get(format!("{}/userinfo", s.base)).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    let by_post = http().post(format!("{}/userinfo", s.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(by_post.status(), 200);
    let by_post: serde_json::Value = by_post.json().await.unwrap();
    let by_form: serde_json::Value = http()
        .post(format!("{}/userinfo", s.base))
        .form(&[("access_token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_get, by_post);
    assert_eq!(by_get, by_form);
    let expected = serde_json::json!({
        "sub": s.account.id.to_string(),
        "name": "Alice Liddell",
        "preferred_username": USERNAME,
        "updated_at": 1_700_000_000,
        "email": "alice@example.org",
        "email_verified": true,
    });
    assert_eq!(by_get, expected, "booleans and numbers typed; no bsn, no username, no phone");
}

#[tokio::test]
async fn userinfo_without_openid_stays_sub_and_username() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "profile email read", "").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let info: serde_json::Value = http()
        .get(format!("{}/userinfo", s.base))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, serde_json::json!({"sub": s.account.id.to_string(), "username": USERNAME}));
}

#[tokio::test]
async fn openid_configuration_has_every_field_discovery_requires() {
    let s = start(Options::default()).await;
    let d: serde_json::Value =
        http().get(format!("{}/.well-known/openid-configuration", s.base)).send().await.unwrap().json().await.unwrap();
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "end_session_endpoint",
        "claims_supported",
        "scopes_supported",
    ] {
        assert!(d.get(field).is_some(), "{field} in {d}");
    }
    assert_eq!(d["issuer"], s.base.as_str());
    assert_eq!(d["end_session_endpoint"], format!("{}/logout", s.base));
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    let algs = d["id_token_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&"RS256".into()) && algs.contains(&"ES256".into()), "{algs:?}");
    let claims = d["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&"email_verified".into()) && !claims.contains(&"bsn".into()), "{claims:?}");
    assert!(d["scopes_supported"].as_array().unwrap().contains(&"openid".into()));
}

#[tokio::test]
async fn single_sign_on_skips_the_login_page_for_a_second_client() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let r = sign_in(&s, &mut jar, &oidc_url(&s, OIDC, "openid", ""), USERNAME).await;
    let set = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let cookie = set.iter().find(|c| c.starts_with("oauth_session=")).expect("the session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let value = jar.session().unwrap().clone();
    assert!(URL_SAFE_NO_PAD.decode(&value).unwrap().len() >= 16, "at least 128 bits");
    // The store keeps the cookie's SHA-256, never the cookie.
    assert!(s.store.record(BROWSER_SESSION, &TokenHash::of(&value), now()).await.unwrap().is_some());
    approve_at(&s, &mut jar, &location(&r)).await;

    let page = jar.get(&oidc_url(&s, OIDC_OTHER, "openid", "")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(is_consent(&html) && !is_login(&html), "the consent page, no login: {html}");
    assert!(html.contains(USERNAME) && html.contains("127.0.0.1"), "signed in as, and the redirect host: {html}");
    assert!(html.contains("prompt=login"), "a link to sign in as someone else: {html}");
    let client_url = approve_page(&s, &mut jar, &html).await;
    let t = tokens(&s, OIDC_OTHER, &client_url).await;
    let (_, c) = verified_claims(&s, t["id_token"].as_str().unwrap(), OIDC_OTHER).await;
    assert_eq!(c["sub"], s.account.id.to_string());
}

#[tokio::test]
async fn remembered_consent_skips_the_consent_page_for_a_scope_within_it_only() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid profile read", "").await;
    let r = jar.get(&oidc_url(&s, OIDC, "openid read", "")).await;
    assert_eq!(r.status(), 303, "no page at all");
    let client_url = location(&r);
    assert_eq!(query(&client_url, "state").as_deref(), Some("st"));
    assert_eq!(query(&client_url, "iss").as_deref(), Some(s.base.as_str()));
    tokens(&s, OIDC, &client_url).await;
    let wider = jar.get(&oidc_url(&s, OIDC, "openid email", "")).await;
    assert_eq!(wider.status(), 200);
    assert!(is_consent(&wider.text().await.unwrap()), "email was never approved");
    let asked = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=consent")).await;
    assert!(is_consent(&asked.text().await.unwrap()), "prompt=consent shows it even when remembered");
}

#[tokio::test]
async fn a_skip_consent_client_shows_no_consent_page_unless_prompt_consent() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let r = sign_in(&s, &mut jar, &oidc_url(&s, FIRST_PARTY, "openid profile", ""), USERNAME).await;
    assert!(location(&r).starts_with(REDIRECT), "straight to the client");
    let none = jar.get(&oidc_url(&s, FIRST_PARTY, "openid", "&prompt=none")).await;
    assert!(query(&location(&none), "code").is_some(), "counts as consented for prompt=none");
    let asked = jar.get(&oidc_url(&s, FIRST_PARTY, "openid", "&prompt=consent")).await;
    assert!(is_consent(&asked.text().await.unwrap()));
}

#[tokio::test]
async fn prompt_none_answers_login_required_or_consent_required_or_a_code() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let r = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert_eq!(r.status(), 303);
    let l = location(&r);
    assert_eq!(query(&l, "error").as_deref(), Some("login_required"));
    assert_eq!((query(&l, "state").as_deref(), query(&l, "iss").as_deref()), (Some("st"), Some(s.base.as_str())));
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let other = jar.get(&oidc_url(&s, OIDC_OTHER, "openid", "&prompt=none")).await;
    assert_eq!(query(&location(&other), "error").as_deref(), Some("consent_required"));
    let same = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    tokens(&s, OIDC, &location(&same)).await;
}

#[tokio::test]
async fn prompt_login_and_max_age_zero_show_the_login_page_despite_a_session() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    for extra in ["&prompt=login", "&max_age=0"] {
        let page = jar.get(&oidc_url(&s, OIDC, "openid", extra)).await;
        assert!(is_login(&page.text().await.unwrap()), "{extra}");
    }
    let fresh_enough = jar.get(&oidc_url(&s, OIDC, "openid", "&max_age=3600")).await;
    assert_eq!(fresh_enough.status(), 303, "a login within max_age is reused");
    // After a second's wait, max_age=1 asks again; the new login's auth_time
    // is in the ID token.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = sign_in(&s, &mut jar, &oidc_url(&s, OIDC, "openid", "&max_age=1"), USERNAME).await;
    let t = tokens(&s, OIDC, &location(&r)).await;
    let (_, c) = verified_claims(&s, t["id_token"].as_str().unwrap(), OIDC).await;
    let now = now().unix_timestamp();
    assert!(now - c["auth_time"].as_i64().unwrap() <= 2, "{c}");
}

#[tokio::test]
async fn login_hint_fills_the_username_field() {
    let s = start(Options::default()).await;
    let page = http().get(oidc_url(&s, OIDC, "openid", "&login_hint=carol%40example.org")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"carol@example.org\""), "{html}");
}

#[tokio::test]
async fn a_bad_nonce_or_prompt_is_redirected_as_invalid_request_with_state_and_iss() {
    let s = start(Options::default()).await;
    let long = "n".repeat(513);
    for extra in [
        "&prompt=none%20login".to_owned(),
        "&prompt=sometimes".to_owned(),
        format!("&nonce={long}"),
        "&nonce=%01".to_owned(),
        "&max_age=-1".to_owned(),
        "&max_age=soon".to_owned(),
    ] {
        let r = http().get(oidc_url(&s, OIDC, "openid", &extra)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{extra}");
        let l = location(&r);
        assert_eq!(query(&l, "error").as_deref(), Some("invalid_request"), "{extra}: {l}");
        assert_eq!((query(&l, "state").as_deref(), query(&l, "iss").as_deref()), (Some("st"), Some(s.base.as_str())));
    }
    // A duplicate parameter is invalid_request too; as for every duplicate,
    // before the redirect URI is known, on an error page.
    for extra in ["&prompt=login&prompt=login", "&nonce=a&nonce=b"] {
        let r = http().get(oidc_url(&s, OIDC, "openid", extra)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{extra}");
        assert!(r.headers().get("location").is_none());
    }
    // An empty value is treated as omitted (RFC 6749 3.1).
    let empty = http().get(oidc_url(&s, OIDC, "openid", "&nonce=&prompt=")).send().await.unwrap();
    assert_eq!(empty.status(), 200, "the login page");
}

#[tokio::test]
async fn a_stolen_or_forged_session_cookie_logs_in_nobody() {
    let s = start(Options::default()).await;
    for forged in [URL_SAFE_NO_PAD.encode([7u8; 32]), "short".into(), "a".repeat(500)] {
        let mut jar = Jar::default();
        jar.0.insert("oauth_session".into(), forged.clone());
        let page = jar.get(&oidc_url(&s, OIDC, "openid", "")).await;
        assert!(is_login(&page.text().await.unwrap()), "{forged}");
    }
    // A cookie that was valid, after its session ended (logout), is worth nothing.
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let stolen = jar.session().unwrap().clone();
    let page = jar.get(&format!("{}/logout", s.base)).await;
    let html = page.text().await.unwrap();
    jar.post(&format!("{}/logout", s.base), &[("csrf", &hidden(&html, "csrf"))]).await;
    let mut thief = Jar::default();
    thief.0.insert("oauth_session".into(), stolen);
    let page = thief.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert_eq!(query(&location(&page), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn a_session_cookie_is_never_accepted_by_another_issuer_path() {
    let (a, b) = two_issuers().await;
    let mut jar = Jar::default();
    let r = sign_in(&a, &mut jar, &oidc_url(&a, OIDC, "openid", ""), USERNAME).await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("oauth_session="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Path=/a/"), "scoped to the issuer's path: {cookie}");
    // A browser would not send it to /b; a client that does gets nothing.
    let page = jar.get(&oidc_url(&b, OIDC, "openid", "&prompt=none")).await;
    assert_eq!(query(&location(&page), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn a_disabled_accounts_sessions_end_at_once() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let key = TokenHash::of(jar.session().unwrap());
    let disabled = Account { disabled: true, ..s.account.clone() };
    s.store.put_account(&disabled).await.unwrap();
    let page = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert_eq!(query(&location(&page), "error").as_deref(), Some("login_required"));
    let now = now();
    assert!(s.store.record(BROWSER_SESSION, &key, now).await.unwrap().is_none(), "the session record is gone");
    // Enabled again, the account must log in again.
    s.store.put_account(&s.account).await.unwrap();
    let page = jar.get(&oidc_url(&s, OIDC, "openid", "")).await;
    assert!(is_login(&page.text().await.unwrap()));
}

#[tokio::test]
async fn logout_with_a_valid_hint_ends_the_session_and_redirects_with_state() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "openid", "").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let url = format!(
        "{}/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye-1",
        s.base,
        t["id_token"].as_str().unwrap(),
        urlencode(LOGOUT_REDIRECT)
    );
    let r = jar.get(&url).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{LOGOUT_REDIRECT}?state=bye-1"));
    assert!(jar.session().is_none(), "the cookie is cleared");
    let page = jar.get(&oidc_url(&s, OIDC, "openid", "")).await;
    assert!(is_login(&page.text().await.unwrap()), "the login page again");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_the_form_posts_back() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let url =
        format!("{}/logout?client_id={OIDC}&post_logout_redirect_uri={}&state=s2", s.base, urlencode(LOGOUT_REDIRECT));
    let page = jar.get(&url).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form method=\"post\" action=\"/logout\">"), "{html}");
    assert_eq!(html.matches("type=\"submit\"").count(), 1, "one button");
    // Still signed in: nothing ended before the click.
    let none = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert!(query(&location(&none), "code").is_some());
    // A post without the CSRF token ends nothing.
    let forged = jar.post(&format!("{}/logout", s.base), &[("csrf", "forged")]).await;
    assert_eq!(forged.status(), 400);
    let fields = ["csrf", "client_id", "post_logout_redirect_uri", "state"].map(|n| (n, hidden(&html, n)));
    let form: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let r = jar.post(&format!("{}/logout", s.base), &form).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("{LOGOUT_REDIRECT}?state=s2"));
    let after = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert_eq!(query(&location(&after), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn logout_without_a_uri_shows_the_logged_out_page() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let html = jar.get(&format!("{}/logout", s.base)).await.text().await.unwrap();
    let r = jar.post(&format!("{}/logout", s.base), &[("csrf", &hidden(&html, "csrf"))]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_or_a_forged_hint_is_an_error_page_never_a_redirect() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    let client_url = first_login(&s, &mut jar, OIDC, "openid", "").await;
    let t = tokens(&s, OIDC, &client_url).await;
    let id_token = t["id_token"].as_str().unwrap();
    let mut forged: Vec<&str> = id_token.split('.').collect();
    let evil = URL_SAFE_NO_PAD.encode(r#"{"iss":"x","sub":"y","aud":"oidc-app"}"#);
    forged[1] = &evil;
    let forged = forged.join(".");
    let access = t["access_token"].as_str().unwrap();
    for query in [
        format!("client_id={OIDC}&post_logout_redirect_uri={}", urlencode("http://127.0.0.1:9000/bye/")),
        format!("client_id={OIDC}&post_logout_redirect_uri={}", urlencode("https://evil.example/")),
        format!("post_logout_redirect_uri={}", urlencode(LOGOUT_REDIRECT)),
        format!("id_token_hint={forged}&post_logout_redirect_uri={}", urlencode(LOGOUT_REDIRECT)),
        format!("id_token_hint={access}&post_logout_redirect_uri={}", urlencode(LOGOUT_REDIRECT)),
        format!(
            "id_token_hint={id_token}&client_id={OIDC_OTHER}&post_logout_redirect_uri={}",
            urlencode(LOGOUT_REDIRECT)
        ),
        format!("client_id=nobody&post_logout_redirect_uri={}", urlencode(LOGOUT_REDIRECT)),
        "id_token_hint=a&id_token_hint=b".to_owned(),
    ] {
        let r = jar.get(&format!("{}/logout?{query}", s.base)).await;
        assert!(r.headers().get("location").is_none(), "{query}");
        assert!(r.status() == 400 || r.status() == 401, "{query}: {}", r.status());
        assert!(r.text().await.unwrap().contains("<html lang="), "an error page");
    }
    let still = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert!(query(&location(&still), "code").is_some(), "nothing logged out");
}

#[tokio::test]
async fn a_hint_for_another_account_does_not_log_out_by_itself() {
    let s = start(Options::default()).await;
    // Bob's ID token, from another browser.
    let mut bobs = Jar::default();
    let r = sign_in(&s, &mut bobs, &oidc_url(&s, FIRST_PARTY, "openid", ""), OTHER_USERNAME).await;
    let bob_token = tokens(&s, FIRST_PARTY, &location(&r)).await["id_token"].as_str().unwrap().to_owned();
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let page = jar.get(&format!("{}/logout?id_token_hint={bob_token}", s.base)).await;
    assert_eq!(page.status(), 200, "the confirmation page");
    assert!(page.text().await.unwrap().contains("action=\"/logout\""));
    let still = jar.get(&oidc_url(&s, OIDC, "openid", "&prompt=none")).await;
    assert!(query(&location(&still), "code").is_some(), "alice is still signed in");
}

#[tokio::test]
async fn signing_in_as_someone_else_replaces_the_session() {
    let s = start(Options::default()).await;
    let mut jar = Jar::default();
    first_login(&s, &mut jar, OIDC, "openid", "").await;
    let alices = jar.session().unwrap().clone();
    let r = sign_in(&s, &mut jar, &oidc_url(&s, FIRST_PARTY, "openid", "&prompt=login"), OTHER_USERNAME).await;
    let t = tokens(&s, FIRST_PARTY, &location(&r)).await;
    assert_ne!(payload(t["id_token"].as_str().unwrap())["sub"], s.account.id.to_string());
    let now = now();
    assert!(s.store.record(BROWSER_SESSION, &TokenHash::of(&alices), now).await.unwrap().is_none());
}

#[tokio::test]
async fn pages_speak_dutch_by_ui_locales_then_accept_language() {
    let s = start(Options::default()).await;
    let by_param = http().get(oidc_url(&s, OIDC, "openid", "&ui_locales=nl%20en")).send().await.unwrap();
    let html = by_param.text().await.unwrap();
    assert!(html.contains("<html lang=\"nl\">") && html.contains("Inloggen"), "{html}");
    let by_header =
        http().get(oidc_url(&s, OIDC, "openid", "")).header("accept-language", "nl-NL,nl;q=0.9").send().await.unwrap();
    assert!(by_header.text().await.unwrap().contains("<html lang=\"nl\">"));
    let param_first = http()
        .get(oidc_url(&s, OIDC, "openid", "&ui_locales=en"))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap();
    assert!(param_first.text().await.unwrap().contains("<html lang=\"en\">"));
    let unknown = http()
        .get(format!("{}/authorize?client_id=nobody", s.base))
        .header("accept-language", "nl")
        .send()
        .await
        .unwrap();
    assert!(unknown.text().await.unwrap().contains("<html lang=\"nl\">"), "error pages too");
    let logout = http().get(format!("{}/logout", s.base)).header("accept-language", "nl").send().await.unwrap();
    assert!(logout.text().await.unwrap().contains("Uitloggen"));
}
