//! Run-time administration through the real binary: the admin API on its own
//! listener, the CLI over it, dynamic registration (RFC 7591, RFC 7592) and
//! resource indicators (RFC 8707).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use support::*;

/// The resource the tests' `[[resources]]` names.
const RESOURCE: &str = "https://api.example.com/mcp";

/// A quick-start server with the admin API on a port of its own, and `extra`
/// TOML. Its base URL, the admin base URL and the admin token.
struct Admin {
    server: Server,
    base: String,
    admin: String,
    token: String,
    _dir: tempfile::TempDir,
}

/// A server whose registration needs an initial access token and offers the
/// `read` scope, and that token.
fn start_with_registration_for_read() -> (Admin, String) {
    let (_, out, _) = run(&["gen-secret"], "");
    let mut lines = out.lines();
    let (initial, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let s = start(&format!(
        "[registration]\nenabled = true\nscopes = [\"read\"]\ninitial_access_token_hash = \"{hash}\"\n"
    ));
    (s, initial)
}

fn start(extra: &str) -> Admin {
    let (code, out, err) = run(&["gen-secret"], "");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let (token, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let admin_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(
        dir.path(),
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{hash}\"\n\n\
             [[resources]]\nuri = \"{RESOURCE}\"\nscopes = [\"read\"]\n\n{extra}"
        ),
    );
    let server = Server::start(&config, dir.path());
    Admin { server, base, admin: format!("http://127.0.0.1:{admin_port}"), token, _dir: dir }
}

impl Admin {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = http().request(method, format!("{}{path}", self.admin)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    fn cli(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut all = vec!["--admin-url", self.admin.as_str()];
        all.extend_from_slice(args);
        run_env(&all, stdin, &[("OAUTH_ADMIN_TOKEN", self.token.as_str())])
    }
}

async fn client_credentials(base: &str, id: &str, secret: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let r = http().post(format!("{base}/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, unverified (the server's own keys are checked by
/// other tests; here only what it put in matters).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_public_listener_never_serves_admin() {
    let s = start("");
    for path in ["/admin/clients", "/admin/openapi.json", "/admin/accounts"] {
        let r = http().get(format!("{}{path}", s.base)).bearer_auth(&s.token).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let doc: Value = http().get(format!("{}/admin/openapi.json", s.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The admin listener serves nothing but /admin.
    let r = http().get(format!("{}/token", s.admin)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_missing_or_wrong_admin_token_is_401_and_the_token_is_not_logged() {
    let s = start("");
    let r = http().get(format!("{}/admin/clients", s.admin)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let wrong = "an-admin-token-that-is-not-the-one-configured";
    let r = http().get(format!("{}/admin/clients", s.admin)).bearer_auth(wrong).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    let line = s.server.wait_for("admin request");
    assert!(!line.contains(wrong) && !line.contains(&s.token), "{line}");
    let line = s.server.wait_for("admin request");
    assert!(line.contains("status=401") && !line.contains(wrong), "{line}");
}

#[tokio::test]
async fn a_client_created_through_the_api_gets_a_token_at_once_and_a_deleted_one_stops_at_once() {
    let s = start("");
    let meta = json!({
        "client_id": "reporting",
        "client_name": "Reporting job",
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let (status, created) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta.clone())).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["source"], "admin");
    let (status, tokens) = client_credentials(&s.base, "reporting", &secret, &[]).await;
    assert_eq!(status, 200, "{tokens}");
    // The secret is shown once: reading the client never shows it.
    let (status, shown) = s.call(reqwest::Method::GET, "/admin/clients/reporting", None).await;
    assert_eq!(status, 200);
    assert!(shown.get("client_secret").is_none(), "{shown}");
    // A second client with the same id is 409.
    let (status, _) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta)).await;
    assert_eq!(status, 409);
    let (status, _) = s.call(reqwest::Method::DELETE, "/admin/clients/reporting", None).await;
    assert_eq!(status, 204);
    let (status, body) = client_credentials(&s.base, "reporting", &secret, &[]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, _) = s.call(reqwest::Method::GET, "/admin/clients/reporting", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn configuration_clients_are_listed_but_read_only() {
    let s = start("");
    let (status, page) = s.call(reqwest::Method::GET, "/admin/clients?limit=2", None).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["client_id"], "demo-app");
    assert_eq!(items[0]["source"], "configuration");
    let next = page["next"].as_str().unwrap().to_owned();
    let (_, rest) = s.call(reqwest::Method::GET, &format!("/admin/clients?after={next}"), None).await;
    assert_eq!(rest["items"][0]["client_id"], "demo-spa");
    assert!(rest["next"].is_null());
    let (status, body) = s.call(reqwest::Method::DELETE, "/admin/clients/demo-app", None).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = s
        .call(reqwest::Method::PUT, "/admin/clients/demo-app", Some(json!({"grant_types": ["client_credentials"]})))
        .await;
    assert_eq!(status, 409);
    let (status, _) = s.call(reqwest::Method::POST, "/admin/clients", Some(json!({"client_id": "demo-app"}))).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn invalid_client_metadata_gets_rfc7591_errors() {
    let s = start("");
    let cases = [
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://app.example/cb#frag"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["magic"]}), "invalid_client_metadata"),
        (
            json!({"grant_types": ["client_credentials"], "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": "https://app.example/cb"}), "invalid_client_metadata"),
        (json!({"grant_types": ["authorization_code"]}), "invalid_redirect_uri"),
        (json!([1, 2, 3]), "invalid_client_metadata"),
    ];
    for (meta, code) in cases {
        let (status, body) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta.clone())).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{meta}: {body}");
    }
}

#[tokio::test]
async fn huge_or_deeply_nested_bodies_are_400_or_413_never_500() {
    let s = start("");
    let post = |body: String| {
        http()
            .post(format!("{}/admin/clients", s.admin))
            .bearer_auth(&s.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let huge = format!("{{\"client_name\": \"{}\"}}", "x".repeat(200_000));
    assert_eq!(post(huge).await.unwrap().status(), 413);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(post(nested).await.unwrap().status(), 400);
    let nested = format!("{{\"jwks\": {}1{}}}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    assert_eq!(post(nested).await.unwrap().status(), 400);
    assert_eq!(post("not json".into()).await.unwrap().status(), 400);
    // The server is still there.
    let (status, _) = s.call(reqwest::Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_ids_are_404_unserved_methods_405_and_bad_limits_400() {
    let s = start("");
    for path in ["/admin/clients/nope", "/admin/accounts/nope", "/admin/accounts/00000000-0000-0000-0000-000000000000"]
    {
        let (status, body) = s.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = s.call(reqwest::Method::DELETE, "/admin/grants/nope", None).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(reqwest::Method::POST, "/admin/grants/nope", None).await;
    assert_eq!(status, 405);
    let (status, _) = s.call(reqwest::Method::PATCH, "/admin/clients", None).await;
    assert_eq!(status, 405);
    for limit in ["0", "1001", "x"] {
        let (status, _) = s.call(reqwest::Method::GET, &format!("/admin/accounts?limit={limit}"), None).await;
        assert_eq!(status, 400, "{limit}");
    }
    let (status, _) = s.call(reqwest::Method::GET, "/admin/accounts?after=!!", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_cli_adds_an_account_that_logs_in_and_disabling_it_ends_its_tokens() {
    let s = start("");
    let (code, out, err) = s.cli(&["accounts", "add", "bob", "--attribute", "display_name=Bob"], "bob-password\n");
    assert_eq!(code, 0, "{err}");
    let bob: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bob["username"], "bob");
    assert!(bob.get("password").is_none() && !out.contains("bob-password"), "{out}");
    let (code, _, err) = s.cli(&["accounts", "add", "bob"], "again\n");
    assert_eq!(code, 1, "a duplicate username");
    assert!(err.contains("409"), "{err}");

    // Bob logs in through the login page at once.
    let (code, _, _) = s.cli(&["accounts", "set-password", "bob"], "bob-new-password\n");
    assert_eq!(code, 0);
    let tokens = password_flow_for(&s.base, "bob", "bob-new-password").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let r = http().get(format!("{}/userinfo", s.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let (code, out, _) = s.cli(&["accounts", "show", "bob"], "");
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["disabled"], false);
    let (code, _, err) = s.cli(&["accounts", "disable", "bob"], "");
    assert_eq!(code, 0, "{err}");
    let r = http().get(format!("{}/userinfo", s.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 401, "a disabled account's token stops at once");

    let (code, out, _) = s.cli(&["accounts", "list"], "");
    assert_eq!(code, 0);
    let names: Vec<String> = serde_json::from_str::<Vec<Value>>(&out)
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"alice".to_owned()) && names.contains(&"bob".to_owned()), "{names:?}");
    let (code, _, _) = s.cli(&["accounts", "remove", "bob"], "");
    assert_eq!(code, 0);
    let (code, _, err) = s.cli(&["accounts", "show", "bob"], "");
    assert_eq!(code, 1, "{err}");
    // Accounts of the configuration file are the file's.
    let (code, _, err) = s.cli(&["accounts", "disable", "alice"], "");
    assert_eq!(code, 1);
    assert!(err.contains("409"), "{err}");
}

/// Logs `username` in through the login and consent pages as `demo-app`
/// and redeems the code: the token response.
async fn password_flow_for(base: &str, username: &str, password: &str) -> Value {
    let url = format!(
        "{base}/authorize?response_type=code&client_id=demo-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
         &scope=read&state=s1&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let page = http().get(&url).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let login = http()
        .post(format!("{base}/authorize/login"))
        .header("cookie", &cookie)
        .form(&[
            ("session", hidden(&html, "session").as_str()),
            ("csrf", &hidden(&html, "csrf")),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "the login of {username}");
    let consent = login.headers()["location"].to_str().unwrap().to_owned();
    let consent = if consent.starts_with("http") { consent } else { format!("{base}{consent}") };
    let page = http().get(consent).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let decided = http()
        .post(format!("{base}/authorize/consent"))
        .header("cookie", &cookie)
        .form(&[
            ("session", hidden(&page, "session").as_str()),
            ("csrf", &hidden(&page, "csrf")),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    let location = decided.headers()["location"].to_str().unwrap().to_owned();
    let code = query(&location, "code").unwrap();
    let (status, body) = redeem(base, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn the_cli_says_when_the_server_is_unreachable_or_the_token_is_wrong() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) = run_env(&["accounts", "list", "--admin-url", &url], "", &[("OAUTH_ADMIN_TOKEN", "x")]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the admin API"), "{err}");
    let (code, _, err) = run_env(&["accounts", "list"], "", &[("OAUTH_ADMIN_TOKEN", "")]);
    assert_eq!(code, 2, "no token is bad usage");
    assert!(err.contains("OAUTH_ADMIN_TOKEN"), "{err}");
    let (code, _, _) = run_env(&["--admin-url", "ftp://x", "clients", "list"], "", &[("OAUTH_ADMIN_TOKEN", "x")]);
    assert_eq!(code, 2);
    let (code, _, _) =
        run_env(&["accounts", "add", "carol", "--attribute", "novalue"], "", &[("OAUTH_ADMIN_TOKEN", "x")]);
    assert_eq!(code, 2);
}

#[tokio::test]
async fn the_cli_refuses_with_a_wrong_token_and_manages_clients() {
    let s = start("");
    let (code, _, err) =
        run_env(&["clients", "list", "--admin-url", &s.admin], "", &[("OAUTH_ADMIN_TOKEN", "not-the-token")]);
    assert_eq!(code, 1);
    assert!(err.contains("refused the token"), "{err}");
    let meta = r#"{"client_id": "cli-app", "grant_types": ["client_credentials"], "scope": "read"}"#;
    let (code, out, err) = s.cli(&["clients", "add"], meta);
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let (status, _) = client_credentials(&s.base, "cli-app", secret, &[]).await;
    assert_eq!(status, 200);
    let (code, out, _) = s.cli(&["clients", "show", "cli-app"], "");
    assert_eq!(code, 0);
    assert!(!out.contains(secret));
    let (code, _, _) = s.cli(&["clients", "remove", "cli-app"], "");
    assert_eq!(code, 0);
    let (code, _, _) = s.cli(&["clients", "remove", "cli-app"], "");
    assert_eq!(code, 1);
    let (code, _, _) = s.cli(&["clients", "add"], "not json");
    assert_eq!(code, 2);
}

#[tokio::test]
async fn revoking_a_grant_through_the_api_refuses_its_refresh_and_access_tokens() {
    let s = start("");
    let code = code_flow(&s.base).await;
    let (status, tokens) = redeem(&s.base, &code).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (_, alice) = s.call(reqwest::Method::GET, "/admin/accounts?username=alice", None).await;
    let alice = alice["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, grants) = s.call(reqwest::Method::GET, &format!("/admin/accounts/{alice}/grants"), None).await;
    assert_eq!(status, 200, "{grants}");
    let items = grants["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{grants}");
    assert_eq!(items[0]["client_id"], "demo-app");
    let grant = items[0]["id"].as_str().unwrap().to_owned();
    let (status, _) = s.call(reqwest::Method::DELETE, &format!("/admin/grants/{grant}"), None).await;
    assert_eq!(status, 204);
    let r = http().get(format!("{}/userinfo", s.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http()
        .post(format!("{}/token", s.base))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, grants) = s.call(reqwest::Method::GET, &format!("/admin/accounts/{alice}/grants"), None).await;
    assert!(grants["items"].as_array().unwrap().is_empty(), "{grants}");
    // The consents and sessions of the account can be forgotten too.
    let (status, _) = s.call(reqwest::Method::DELETE, &format!("/admin/accounts/{alice}/consents"), None).await;
    assert_eq!(status, 204);
    let (status, _) = s.call(reqwest::Method::DELETE, &format!("/admin/accounts/{alice}/sessions"), None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn registration_is_off_by_default() {
    let s = start("");
    let r = http().post(format!("{}/register", s.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let meta: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("registration_endpoint").is_none());
}

#[tokio::test]
async fn open_registration_makes_public_clients_managed_with_their_registration_token() {
    let s = start("[registration]\nenabled = true\nscopes = [\"read\"]\nmax_per_ip = 3\n");
    let meta: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoint = meta["registration_endpoint"].as_str().unwrap().to_owned();
    assert_eq!(endpoint, format!("{}/register", s.base));
    let r = http()
        .post(&endpoint)
        .json(&json!({"client_name": "Agent", "redirect_uris": ["http://127.0.0.1:7777/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["scope"], "read");
    assert_eq!(reg["resources"], json!([RESOURCE]));
    assert!(reg.get("client_secret").is_none());
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
    let token = reg["registration_access_token"].as_str().unwrap().to_owned();

    let r = http().get(&uri).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for bad in ["wrong", ""] {
        let mut req = http().get(&uri);
        if !bad.is_empty() {
            req = req.bearer_auth(bad);
        }
        assert_eq!(req.send().await.unwrap().status(), 401, "{bad:?}");
    }
    // An update repeats the client_id and gets a new token; the old one stops.
    let r = http()
        .put(&uri)
        .bearer_auth(&token)
        .json(&json!({"client_id": id, "client_name": "Agent 2", "redirect_uris": ["http://127.0.0.1:7777/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["client_name"], "Agent 2");
    let new_token = updated["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(http().get(&uri).bearer_auth(&token).send().await.unwrap().status(), 401, "a replayed token");
    assert_eq!(http().delete(&uri).bearer_auth(&new_token).send().await.unwrap().status(), 204);
    assert_eq!(http().get(&uri).bearer_auth(&new_token).send().await.unwrap().status(), 401);

    // Open registration: public clients only, https or loopback redirects,
    // within [registration] scopes.
    for (meta, code) in [
        (json!({"redirect_uris": ["http://app.example/cb"]}), "invalid_redirect_uri"),
        (json!({"redirect_uris": ["com.example.app:/cb"]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": ["https://app.example/cb"], "scope": "write"}), "invalid_client_metadata"),
        (json!({"grant_types": ["client_credentials"]}), "invalid_client_metadata"),
    ] {
        let r = http().post(&endpoint).json(&meta).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{meta}");
    }
}

#[tokio::test]
async fn an_open_registration_flood_is_throttled_per_address() {
    let s = start("[registration]\nenabled = true\nmax_per_ip = 2\n");
    let register = || {
        http().post(format!("{}/register", s.base)).json(&json!({"redirect_uris": ["https://agent.example/cb"]})).send()
    };
    assert_eq!(register().await.unwrap().status(), 201);
    assert_eq!(register().await.unwrap().status(), 201);
    let r = register().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn registration_with_an_initial_access_token_requires_it() {
    let (_, out, _) = run(&["gen-secret"], "");
    let mut lines = out.lines();
    let (initial, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let s = start(&format!("[registration]\nenabled = true\ninitial_access_token_hash = \"{hash}\"\n"));
    let meta = json!({"grant_types": ["client_credentials"], "scope": "openid", "token_endpoint_auth_method": "client_secret_post"});
    let r = http().post(format!("{}/register", s.base)).json(&meta).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().post(format!("{}/register", s.base)).bearer_auth("wrong-token").json(&meta).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http().post(format!("{}/register", s.base)).bearer_auth(&initial).json(&meta).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert_eq!(reg["client_secret_expires_at"], 0);
    let (id, secret) = (reg["client_id"].as_str().unwrap(), reg["client_secret"].as_str().unwrap());
    let r = http()
        .post(format!("{}/token", s.base))
        .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_resource_indicator_makes_the_tokens_aud_and_an_unknown_one_is_invalid_target() {
    let s = start("");
    let meta = json!({
        "client_id": "agent-backend",
        "grant_types": ["client_credentials"],
        "scope": "read write",
        "resources": [RESOURCE],
    });
    let (status, created) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta)).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let (status, tokens) = client_credentials(&s.base, "agent-backend", &secret, &[("resource", RESOURCE)]).await;
    assert_eq!(status, 200, "{tokens}");
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], RESOURCE);
    // The scope is narrowed to what the resource understands.
    assert_eq!(tokens["scope"], "read");
    // The server's own introspection accepts the token.
    let r = http()
        .post(format!("{}/introspect", s.base))
        .basic_auth("agent-backend", Some(&secret))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let i: Value = r.json().await.unwrap();
    assert_eq!(i["active"], true, "{i}");
    let (status, body) =
        client_credentials(&s.base, "agent-backend", &secret, &[("resource", "https://other.example/")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")));
    let (status, body) = client_credentials(&s.base, "agent-backend", &secret, &[("resource", "not a uri")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")));
    let (status, body) =
        client_credentials(&s.base, "agent-backend", &secret, &[("resource", RESOURCE), ("scope", "write")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    // demo-app may not ask for the resource.
    let (status, body) = client_credentials(&s.base, "demo-app", SECRET, &[("resource", RESOURCE)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")));
    // Without resource, aud is the configured audience as before.
    let (_, tokens) = client_credentials(&s.base, "agent-backend", &secret, &[]).await;
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aud"], s.base);
}

#[test]
fn check_config_refuses_an_admin_listener_on_the_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(
        dir.path(),
        "[admin]\nlisten = \"LISTEN\"\ntoken_hash = \"$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2\"\n",
    );
    let listen = base.trim_start_matches("http://");
    let text = std::fs::read_to_string(&config).unwrap().replace("LISTEN", listen);
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = run(&["check-config", "--config", config.to_str().unwrap()], "");
    assert_eq!(code, 2, "{out}{err}");
    assert!(format!("{out}{err}").contains("admin.listen"), "{out}{err}");
}

#[tokio::test]
async fn an_online_backup_is_a_consistent_store_that_a_server_restores_from() {
    let s = start("");
    // Without admin.backup_dir there is no backup.
    let (status, _) = s.call(reqwest::Method::POST, "/admin/backup", None).await;
    assert_eq!(status, 404);
    drop(s);

    let backups = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["gen-secret"], "");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let (token, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let admin_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(
        dir.path(),
        &format!(
            "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{hash}\"\nbackup_dir = \"{}\"\n",
            backups.path().display()
        ),
    );
    let server = Server::start(&config, dir.path());
    let s = Admin { server, base, admin: format!("http://127.0.0.1:{admin_port}"), token, _dir: dir };

    let (status, _) = s
        .call(reqwest::Method::POST, "/admin/accounts", Some(json!({"username": "before", "password": "pw-before"})))
        .await;
    assert_eq!(status, 201);
    // Accounts are created while the backup runs; each is in the copy whole
    // (record and username index) or not at all.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (admin, token) = (s.admin.clone(), s.token.clone());
            tokio::spawn(async move {
                http()
                    .post(format!("{admin}/admin/accounts"))
                    .bearer_auth(token)
                    .json(&json!({"username": format!("during-{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let (code, out, err) = s.cli(&["backup"], "");
    assert_eq!(code, 0, "{err}");
    for w in writers {
        assert_eq!(w.await.unwrap(), 201);
    }
    let done: Value = serde_json::from_str(&out).unwrap();
    let path = done["path"].as_str().unwrap().to_owned();
    assert!(path.starts_with(&backups.path().display().to_string()), "{path}");
    assert!(done["entries"].as_u64().unwrap() > 0);
    // The CLI prints the API's answer as it came, which is what the
    // description says.
    let doc: Value = http().get(format!("{}/admin/openapi.json", s.admin)).send().await.unwrap().json().await.unwrap();
    conforms(&doc, "post", "/admin/backup", 200, Some(&done));
    let (status, _) = s
        .call(reqwest::Method::POST, "/admin/accounts", Some(json!({"username": "after", "password": "pw-after"})))
        .await;
    assert_eq!(status, 201);
    s.server.stop();

    // Restore: a server on the copy has what was there when it was taken.
    let restored = tempfile::tempdir().unwrap();
    let r = start_on_store(restored.path(), &path);
    let (_, before) = r.call(reqwest::Method::GET, "/admin/accounts?username=before", None).await;
    assert_eq!(before["items"].as_array().unwrap().len(), 1, "{before}");
    let (_, after) = r.call(reqwest::Method::GET, "/admin/accounts?username=after", None).await;
    assert!(after["items"].as_array().unwrap().is_empty(), "{after}");
    let (_, all) = r.call(reqwest::Method::GET, "/admin/accounts", None).await;
    for a in all["items"].as_array().unwrap() {
        let name = a["username"].as_str().unwrap();
        let (_, found) = r.call(reqwest::Method::GET, &format!("/admin/accounts?username={name}"), None).await;
        assert_eq!(found["items"][0]["id"], a["id"], "the username index matches the record of {name}");
    }
    // The signing key came along: the restored server signs and verifies.
    let (status, tokens) = client_credentials(&r.base, "demo-app", SECRET, &[]).await;
    assert_eq!(status, 200, "{tokens}");
}

/// The quick start with the admin API, serving from the sled store at `store`.
fn start_on_store(dir: &std::path::Path, store: &str) -> Admin {
    let (_, out, _) = run(&["gen-secret"], "");
    let mut lines = out.lines();
    let (token, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let admin_port = free_port();
    let (config, base) =
        quickstart(dir, &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{hash}\"\n"));
    let text = std::fs::read_to_string(&config).unwrap().replace("path = \"data\"", &format!("path = \"{store}\""));
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, dir);
    Admin { server, base, admin: format!("http://127.0.0.1:{admin_port}"), token, _dir: tempfile::tempdir().unwrap() }
}

/// Two nodes on one PostgreSQL database, each with its own admin API: a
/// client created on one gets tokens from the other within 10 s; a client
/// deleted on one stops there at once and on the other within 10 s; an
/// account disabled on one loses its tokens on both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_see_each_others_admin_changes_within_10_s() {
    let db = oauth_store_postgres::testing::TestDatabase::create().await;
    let (_, out, _) = run(&["gen-secret"], "");
    let mut lines = out.lines();
    let (token, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    // Both nodes behind one issuer (the example's), each on a port of its own.
    let node = |name: &str, dir: &std::path::Path| {
        let (port, admin_port) = (free_port(), free_port());
        let store = format!("[store]\nbackend = \"postgres\"\nurl = \"{}\"\ntls = \"disable\"\n", db.url);
        let text = std::fs::read_to_string(std::path::Path::new(ROOT).join("examples/quickstart.toml"))
            .unwrap()
            .replace("[store]\nbackend = \"sled\"\npath = \"data\"\n", &store)
            .replacen("listen = \"127.0.0.1:8080\"", &format!("listen = \"127.0.0.1:{port}\""), 1)
            .replace(
                "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\"]",
                "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\", \"password\"]",
            );
        assert!(text.contains("backend = \"postgres\""), "the example's [store] table moved");
        let config = dir.join(format!("{name}.toml"));
        let admin = format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{hash}\"\n");
        std::fs::write(&config, format!("{text}\n[grants]\npassword = true\n{admin}")).unwrap();
        let server = Server::start(&config, dir);
        Admin {
            server,
            base: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            token: token.clone(),
            _dir: tempfile::tempdir().unwrap(),
        }
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node("a", dir_a.path());
    let b = node("b", dir_b.path());

    let meta = json!({"client_id": "shared-job", "grant_types": ["client_credentials"], "scope": "read"});
    let (status, created) = a.call(reqwest::Method::POST, "/admin/clients", Some(meta)).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    let within_10_s = |base: String, want: u16| {
        let secret = secret.clone();
        async move {
            let started = std::time::Instant::now();
            loop {
                let (status, _) = client_credentials(&base, "shared-job", &secret, &[]).await;
                if status == want {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "still {status}, not {want}, after 10 s"
                );
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
    };
    within_10_s(b.base.clone(), 200).await;
    let (status, _) = a.call(reqwest::Method::DELETE, "/admin/clients/shared-job", None).await;
    assert_eq!(status, 204);
    let (status, _) = client_credentials(&a.base, "shared-job", &secret, &[]).await;
    assert_eq!(status, 401, "at once on the node that deleted it");
    within_10_s(b.base.clone(), 401).await;

    // An account made on B and disabled on A: its token is refused on both.
    let (status, _) = b
        .call(reqwest::Method::POST, "/admin/accounts", Some(json!({"username": "dora", "password": "dora-password"})))
        .await;
    assert_eq!(status, 201);
    let r = http()
        .post(format!("{}/token", a.base))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "password"), ("username", "dora"), ("password", "dora-password"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let r = http().get(format!("{}/userinfo", b.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(r.status(), 200, "a token minted on A is good on B");
    let (_, dora) = a.call(reqwest::Method::GET, "/admin/accounts?username=dora", None).await;
    let id = dora["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) =
        a.call(reqwest::Method::PATCH, &format!("/admin/accounts/{id}"), Some(json!({"disabled": true}))).await;
    assert_eq!(status, 200);
    for base in [&a.base, &b.base] {
        let r = http().get(format!("{base}/userinfo")).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status(), 401, "{base}");
    }
}

/// RFC 8707 in the code flow: a resource named at `/authorize` goes with the
/// code into the token; another one at `/token` is `invalid_target`; an
/// unknown one at `/authorize` is redirected as `invalid_target`.
#[tokio::test]
async fn a_resource_named_at_authorize_goes_with_the_code_and_token_may_not_name_another() {
    let s = start("[[resources]]\nuri = \"https://other.example.com/\"\nscopes = [\"read\"]\n");
    let meta = json!({
        "client_id": "agent-app",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
        "scope": "read",
        "resources": [RESOURCE, "https://other.example.com/"],
    });
    let (status, created) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta)).await;
    assert_eq!(status, 201, "{created}");
    // Each authorization walks the consent page (`prompt=consent`): the
    // first approval is remembered.
    let url = |resource: &str| {
        format!(
            "{}/authorize?response_type=code&client_id=agent-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
             &scope=read&state=s1&prompt=consent&code_challenge={CHALLENGE}&code_challenge_method=S256&resource={}",
            s.base,
            form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
        )
    };
    let redeem_with = |code: String, resource: Option<&'static str>| {
        let base = s.base.clone();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("client_id", "agent-app".to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_owned()),
                ("code_verifier", VERIFIER.to_owned()),
            ];
            if let Some(r) = resource {
                form.push(("resource", r.to_owned()));
            }
            let r = http().post(format!("{base}/token")).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let location = user_approves(&s.base, &url(RESOURCE)).await;
    let (status, tokens) = redeem_with(query(&location, "code").unwrap(), None).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aud"], RESOURCE);

    let location = user_approves(&s.base, &url(RESOURCE)).await;
    let (status, body) = redeem_with(query(&location, "code").unwrap(), Some("https://other.example.com/")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");

    let r = http().get(url("https://unknown.example.com/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query(&location, "error").as_deref(), Some("invalid_target"), "{location}");
}

/// The `Set-Cookie` pairs of `resp`, as a `Cookie` header adds them.
fn cookies_of(resp: &reqwest::Response, jar: &mut Vec<String>) {
    for v in resp.headers().get_all("set-cookie") {
        jar.push(v.to_str().unwrap().split(';').next().unwrap().to_owned());
    }
}

#[tokio::test]
async fn an_admin_client_keeps_its_openid_settings_skips_consent_signs_with_its_alg_and_logs_out_to_its_uri() {
    let s = start("");
    let meta = json!({
        "client_id": "first-app",
        "redirect_uris": [REDIRECT],
        "scope": "openid read",
        "token_endpoint_auth_method": "none",
        "post_logout_redirect_uris": ["http://127.0.0.1:9000/bye"],
        "id_token_signed_response_alg": "ES256",
        "skip_consent": true,
    });
    let (status, created) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta)).await;
    assert_eq!(status, 201, "{created}");
    let (_, shown) = s.call(reqwest::Method::GET, "/admin/clients/first-app", None).await;
    for view in [&created, &shown] {
        assert_eq!(view["post_logout_redirect_uris"], json!(["http://127.0.0.1:9000/bye"]), "{view}");
        assert_eq!(view["id_token_signed_response_alg"], "ES256", "{view}");
        assert_eq!(view["skip_consent"], true, "{view}");
    }

    // The login goes straight back to the client: no consent page.
    let url = format!(
        "{}/authorize?response_type=code&client_id=first-app&redirect_uri={}&scope=openid&state=s1&nonce=n1\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        s.base,
        form_urlencoded(REDIRECT)
    );
    let mut jar = Vec::new();
    let page = http().get(&url).send().await.unwrap();
    cookies_of(&page, &mut jar);
    let html = page.text().await.unwrap();
    let login = http()
        .post(format!("{}/authorize/login", s.base))
        .header("cookie", jar.join("; "))
        .form(&[
            ("session", hidden(&html, "session").as_str()),
            ("csrf", &hidden(&html, "csrf")),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    cookies_of(&login, &mut jar);
    let location = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "skip_consent: no consent page, {location}");
    let code = query(&location, "code").unwrap();
    let tokens: Value = http()
        .post(format!("{}/token", s.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "first-app"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("an ID token: {tokens}"));
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(id_token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256", "the registered id_token_signed_response_alg");

    // Logout goes to the registered URI, and to no other.
    let logout = |target: &str| {
        format!(
            "{}/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye1",
            s.base,
            form_urlencoded(target)
        )
    };
    let r = http().get(logout("http://127.0.0.1:9000/elsewhere")).header("cookie", jar.join("; ")).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 400, "an unregistered post_logout_redirect_uri gets the error page");
    assert!(r.headers().get("location").is_none());
    let r = http().get(logout("http://127.0.0.1:9000/bye")).header("cookie", jar.join("; ")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "http://127.0.0.1:9000/bye?state=bye1");
}

#[tokio::test]
async fn openid_client_metadata_is_checked_and_skip_consent_is_the_operators_alone() {
    let s = start("[registration]\nenabled = true\nscopes = [\"openid\", \"read\"]\n");
    let cb = REDIRECT;
    for meta in [
        json!({"redirect_uris": [cb], "post_logout_redirect_uris": ["https://app.example/bye#x"]}),
        json!({"redirect_uris": [cb], "post_logout_redirect_uris": ["http://app.example/bye"]}),
        json!({"redirect_uris": [cb], "post_logout_redirect_uris": "https://app.example/bye"}),
        json!({"redirect_uris": [cb], "id_token_signed_response_alg": "HS256"}),
        json!({"redirect_uris": [cb], "id_token_signed_response_alg": "none"}),
    ] {
        let (status, body) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta.clone())).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{meta}: {body}");
    }
    let register = |meta: Value| http().post(format!("{}/register", s.base)).json(&meta).send();
    let r = register(json!({"redirect_uris": [cb], "skip_consent": true})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    let r = register(json!({"redirect_uris": [cb], "post_logout_redirect_uris": ["http://127.0.0.1:7777/bye"]}));
    let reg: Value = r.await.unwrap().json().await.unwrap();
    assert_eq!(reg["post_logout_redirect_uris"], json!(["http://127.0.0.1:7777/bye"]), "{reg}");
    assert_eq!(
        (reg["skip_consent"].clone(), reg["id_token_signed_response_alg"].clone()),
        (json!(false), json!("RS256"))
    );
}

/// Checks `body`, answered with `status` by `method path`, against the schema
/// that the served OpenAPI document gives that answer: the status must be
/// documented, and the body must validate (JSON Schema 2020-12, as OpenAPI
/// 3.1 uses). `None` is an answer without a body.
fn conforms(doc: &Value, method: &str, path: &str, status: u16, body: Option<&Value>) {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(response.is_object(), "{method} {path} answered {status}, which its description does not list");
    let schema = &response["content"]["application/json"]["schema"]["$ref"];
    let Some(body) = body else {
        assert!(schema.is_null(), "{method} {path} {status} is documented with a body and sent none");
        return;
    };
    assert!(schema.is_string(), "{method} {path} {status} sent {body}, documented without a body");
    let errors = schema_errors(doc, schema, body);
    assert!(errors.is_empty(), "{method} {path} {status}: {body} does not match {schema}: {errors:?}");
}

/// Where `body` departs from the schema `schema` (a `$ref` into `doc`).
fn schema_errors(doc: &Value, schema: &Value, body: &Value) -> Vec<String> {
    // The whole document is the root, so that `#/components/schemas/...`
    // references resolve; its other members are not schema keywords.
    let mut root = doc.clone();
    root["$ref"] = schema.clone();
    let validator = jsonschema::draft202012::new(&root).unwrap();
    validator.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect()
}

#[tokio::test]
async fn admin_answers_validate_against_their_generated_schemas() {
    use reqwest::Method;
    let s = start("");
    let doc: Value = http().get(format!("{}/admin/openapi.json", s.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The check can fail: bodies unlike what the schemas say are refused.
    for (schema, unlike) in [
        ("#/components/schemas/ClientList", json!({ "items": [{ "client_id": "x" }], "next": null })),
        (
            "#/components/schemas/Grant",
            json!({ "id": "g", "client_id": "c", "scope": "", "created_at": 1, "expires_at": 2 }),
        ),
        (
            "#/components/schemas/Account",
            json!({ "id": "a", "username": "u", "disabled": false, "attributes": {}, "source": "ocl" }),
        ),
    ] {
        assert!(!schema_errors(&doc, &json!(schema), &unlike).is_empty(), "{unlike} passed as {schema}");
    }
    let mut checked = std::collections::BTreeSet::new();
    let mut check = |method: &str, path: &'static str, status: u16, body: &Value| {
        conforms(&doc, method, path, status, (status != 204).then_some(body));
        checked.insert((path, method.to_owned()));
    };

    // Clients: a confidential one (its secret shown once), a public one, and
    // the configuration's (read-only, listed).
    let confidential = json!({
        "client_id": "schema-app", "client_name": "Schema app",
        "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"],
        "scope": "read", "token_endpoint_auth_method": "client_secret_basic",
        "post_logout_redirect_uris": ["https://app.example/bye"], "allowed_cors_origins": ["https://other.example"],
    });
    let (status, body) = s.call(Method::POST, "/admin/clients", Some(confidential.clone())).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["client_secret"].is_string(), "{body}");
    check("post", "/admin/clients", status, &body);
    let public = json!({ "client_id": "schema-cli", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" });
    let (status, body) = s.call(Method::POST, "/admin/clients", Some(public)).await;
    assert_eq!(status, 201, "{body}");
    check("post", "/admin/clients", status, &body);
    let (status, body) = s.call(Method::POST, "/admin/clients", Some(confidential.clone())).await;
    assert_eq!(status, 409, "{body}");
    check("post", "/admin/clients", status, &body);
    let (status, body) =
        s.call(Method::POST, "/admin/clients", Some(json!({ "redirect_uris": ["http://x.example/cb"] }))).await;
    assert_eq!(status, 400, "{body}");
    check("post", "/admin/clients", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/clients?limit=1", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["next"].is_string(), "{body}");
    check("get", "/admin/clients", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/clients", None).await;
    assert!(body["items"].as_array().unwrap().iter().any(|c| c["source"] == "configuration"), "{body}");
    check("get", "/admin/clients", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/clients/schema-app", None).await;
    assert_eq!(status, 200, "{body}");
    check("get", "/admin/clients/{id}", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/clients/nobody", None).await;
    assert_eq!(status, 404, "{body}");
    check("get", "/admin/clients/{id}", status, &body);
    let (status, body) = s.call(Method::PUT, "/admin/clients/schema-app", Some(confidential)).await;
    assert_eq!(status, 200, "{body}");
    check("put", "/admin/clients/{id}", status, &body);
    let (status, body) = s.call(Method::PUT, "/admin/clients/demo-app", Some(json!({ "scope": "read" }))).await;
    assert_eq!(status, 409, "{body}");
    check("put", "/admin/clients/{id}", status, &body);
    let (status, body) = s.call(Method::DELETE, "/admin/clients/demo-app", None).await;
    assert_eq!(status, 409, "{body}");
    check("delete", "/admin/clients/{id}", status, &body);
    let (status, body) = s.call(Method::DELETE, "/admin/clients/schema-cli", None).await;
    assert_eq!(status, 204, "{body}");
    check("delete", "/admin/clients/{id}", status, &body);

    // Accounts.
    let new = json!({ "username": "carol", "password": "a long enough password", "attributes": { "email": "carol@example.com" } });
    let (status, body) = s.call(Method::POST, "/admin/accounts", Some(new.clone())).await;
    assert_eq!(status, 201, "{body}");
    check("post", "/admin/accounts", status, &body);
    let carol = body["id"].as_str().unwrap().to_owned();
    let (status, body) = s.call(Method::POST, "/admin/accounts", Some(new)).await;
    assert_eq!(status, 409, "{body}");
    check("post", "/admin/accounts", status, &body);
    let (status, body) =
        s.call(Method::POST, "/admin/accounts", Some(json!({ "username": "dave", "role": "x" }))).await;
    assert_eq!(status, 400, "{body}");
    check("post", "/admin/accounts", status, &body);
    let huge = json!({ "username": "x".repeat(70_000) });
    let (status, body) = s.call(Method::POST, "/admin/accounts", Some(huge)).await;
    assert_eq!(status, 413, "{body}");
    check("post", "/admin/accounts", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/accounts", None).await;
    check("get", "/admin/accounts", status, &body);
    let (status, body) = s.call(Method::GET, "/admin/accounts?username=alice", None).await;
    assert_eq!(body["items"][0]["source"], "configuration", "{body}");
    check("get", "/admin/accounts", status, &body);
    let alice = body["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = s.call(Method::GET, &format!("/admin/accounts/{carol}"), None).await;
    assert_eq!(status, 200, "{body}");
    check("get", "/admin/accounts/{id}", status, &body);
    let (status, body) =
        s.call(Method::PATCH, &format!("/admin/accounts/{carol}"), Some(json!({ "disabled": true }))).await;
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    check("patch", "/admin/accounts/{id}", status, &body);
    let (status, body) =
        s.call(Method::PATCH, &format!("/admin/accounts/{alice}"), Some(json!({ "disabled": true }))).await;
    assert_eq!(status, 409, "{body}");
    check("patch", "/admin/accounts/{id}", status, &body);
    let (status, body) = s.call(Method::PATCH, "/admin/accounts/nobody", Some(json!({}))).await;
    assert_eq!(status, 404, "{body}");
    check("patch", "/admin/accounts/{id}", status, &body);

    // A grant of alice's, through a real code flow.
    let code = code_flow(&s.base).await;
    assert_eq!(redeem(&s.base, &code).await.0, 200);
    let (status, body) = s.call(Method::GET, &format!("/admin/accounts/{alice}/grants"), None).await;
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    check("get", "/admin/accounts/{id}/grants", status, &body);
    let grant = body["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = s.call(Method::DELETE, &format!("/admin/grants/{grant}"), None).await;
    assert_eq!(status, 204, "{body}");
    check("delete", "/admin/grants/{id}", status, &body);
    let (status, body) = s.call(Method::DELETE, &format!("/admin/grants/{grant}"), None).await;
    assert_eq!(status, 404, "{body}");
    check("delete", "/admin/grants/{id}", status, &body);
    for path in ["/admin/accounts/{id}/consents", "/admin/accounts/{id}/sessions"] {
        let (status, body) = s.call(Method::DELETE, &path.replace("{id}", &alice), None).await;
        assert_eq!(status, 204, "{body}");
        check("delete", path, status, &body);
    }
    let (status, body) = s.call(Method::DELETE, &format!("/admin/accounts/{carol}"), None).await;
    assert_eq!(status, 204, "{body}");
    check("delete", "/admin/accounts/{id}", status, &body);

    // No backup directory here; and a wrong token.
    let (status, body) = s.call(Method::POST, "/admin/backup", None).await;
    assert_eq!(status, 404, "{body}");
    check("post", "/admin/backup", status, &body);
    let r = http().get(format!("{}/admin/clients", s.admin)).bearer_auth("wrong").send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 401);
    check("get", "/admin/clients", status, &r.json().await.unwrap());

    // Every documented operation was checked at least once.
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let checked: std::collections::BTreeSet<(String, String)> =
        checked.into_iter().map(|(p, m)| (p.to_owned(), m)).collect();
    assert_eq!(checked, documented);
}

/// The client key of the `private_key_jwt` tests (made by `openssl genpkey`).
const CLIENT_KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-a.pem");

/// The public JWK of [`CLIENT_KEY`], as a client registers it.
fn client_jwk() -> Value {
    let key = jsonwebtoken::EncodingKey::from_ec_pem(CLIENT_KEY).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("client-key-1".into());
    serde_json::to_value(jwk).unwrap()
}

/// A `private_key_jwt` assertion (RFC 7523 3) of client `id` for `issuer`,
/// signed with [`CLIENT_KEY`] by jsonwebtoken, as a client library would.
fn client_assertion(id: &str, issuer: &str, jti: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_ec_pem(CLIENT_KEY).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("client-key-1".into());
    // The client's clock: the same wall clock as the server's.
    let now = oauth_core::Clock::now(&oauth_runtime::SystemClock).unix_timestamp();
    let claims = json!({"iss": id, "sub": id, "aud": issuer, "exp": now + 60, "iat": now, "jti": jti});
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// `client_credentials` authenticated by `assertion`.
async fn assertion_token(base: &str, id: &str, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion),
    ];
    let r = http().post(format!("{base}/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// RFC 7591 `jwks` with `private_key_jwt` (RFC 7523) for clients in the
/// store: a client registered with its public key and no secret gets a token
/// with an assertion signed by that key, once per `jti`, and never with a
/// secret; its RFC 7592 read shows the method and the keys. The admin API
/// creates such clients too.
#[tokio::test]
async fn a_client_registered_with_jwks_for_private_key_jwt_gets_a_token_with_an_assertion() {
    let (s, initial) = start_with_registration_for_read();
    let meta = json!({
        "client_name": "Signing Agent",
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_jwk()]},
    });
    let r = http().post(format!("{}/register", s.base)).bearer_auth(&initial).json(&meta).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let reg: Value = r.json().await.unwrap();
    assert_eq!(reg["token_endpoint_auth_method"], "private_key_jwt", "{reg}");
    assert!(reg.get("client_secret").is_none(), "a private_key_jwt client has no secret: {reg}");
    assert_eq!(reg["jwks"], json!({"keys": [client_jwk()]}));
    let id = reg["client_id"].as_str().unwrap().to_owned();

    let assertion = client_assertion(&id, &s.base, "assertion-1");
    let (status, body) = assertion_token(&s.base, &id, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["client_id"], id.as_str());
    let (status, body) = assertion_token(&s.base, &id, &assertion).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "a replayed assertion");
    let (status, _) = client_credentials(&s.base, &id, "any-secret", &[]).await;
    assert_eq!(status, 401, "a private_key_jwt client never authenticates by secret");

    let uri = reg["registration_client_uri"].as_str().unwrap();
    let token = reg["registration_access_token"].as_str().unwrap();
    let read: Value = http().get(uri).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(read["jwks"], json!({"keys": [client_jwk()]}));

    let (status, created) = s
        .call(
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({"client_id": "admin-signer", "grant_types": ["client_credentials"], "scope": "read",
                        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [client_jwk()]}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("client_secret").is_none(), "{created}");
    let (_, shown) = s.call(reqwest::Method::GET, "/admin/clients/admin-signer", None).await;
    assert_eq!(shown["token_endpoint_auth_method"], "private_key_jwt");
    let (status, body) =
        assertion_token(&s.base, "admin-signer", &client_assertion("admin-signer", &s.base, "assertion-2")).await;
    assert_eq!(status, 200, "{body}");
}

/// `jwks` holds public keys only (RFC 7591 2, RFC 7517): a private key in it
/// is `invalid_client_metadata` at registration and in the admin API, and so
/// is `private_key_jwt` without `jwks`, with keys no assertion could be
/// verified with, or through open registration (public clients only).
#[tokio::test]
async fn private_key_jwt_with_a_private_key_in_jwks_or_without_jwks_is_invalid_client_metadata() {
    let (s, initial) = start_with_registration_for_read();
    let mut private = client_jwk();
    private["d"] = json!("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI");
    let base = json!({"grant_types": ["client_credentials"], "scope": "read", "token_endpoint_auth_method": "private_key_jwt"});
    let with = |jwks: Option<Value>| {
        let mut m = base.clone();
        if let Some(j) = jwks {
            m["jwks"] = j;
        }
        m
    };
    let cases = [
        with(Some(json!({"keys": [private]}))),
        with(None),
        // An RSA key too short to verify with (1024 bits; 2048 is the least).
        with(Some(
            json!({"keys": [{"kty": "RSA", "e": "AQAB", "n": "riqybnfUeLsRdHgv_Wp7qvzO0WEZKmnUMidqktLs8WofFjQXef-ZMWGrG8U7fR6sAAeGGljbsLBmmQmB9rgFGpH3HfPNMEKg2TmE_1nlKDALVk0d5HDGm3YowUnsHuuKnUq8ZEjOdbg68rFRciDvOQ5-oc2z39liEDk2hG0mLRs"}]}),
        )),
    ];
    for meta in &cases {
        let r = http().post(format!("{}/register", s.base)).bearer_auth(&initial).json(meta).send().await.unwrap();
        assert_eq!(r.status(), 400, "{meta}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{meta}: {body}");
        let (status, body) = s.call(reqwest::Method::POST, "/admin/clients", Some(meta.clone())).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{meta}: {body}");
    }
    // Open registration makes public clients only.
    let open = start("[registration]\nenabled = true\nscopes = [\"read\"]\n");
    let meta = with(Some(json!({"keys": [client_jwk()]})));
    let r = http().post(format!("{}/register", open.base)).json(&meta).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
}

/// RFC 7591 3.2.2 answers refused metadata with a JSON body alone, and RFC
/// 6750 3 challenges only for the token: a `400 invalid_client_metadata` at
/// `/register` or in the admin API carries no `WWW-Authenticate` (oauth4webapi
/// reads one as "the token failed" and never looks at the body), while a wrong
/// initial access token, admin token or registration access token (RFC 7592
/// `GET`, `PUT` and `DELETE`) is 401 `invalid_token` with the Bearer challenge, whatever
/// the body: one over the 64 KiB limit is not read before the token fails.
#[tokio::test]
async fn refused_client_metadata_is_answered_without_a_bearer_challenge_a_refused_token_with_one() {
    let (s, initial) = start_with_registration_for_read();
    let bad = json!({"redirect_uris": ["http://app.example/cb#fragment"], "scope": "read"});
    let registered = http().post(format!("{}/register", s.base)).bearer_auth(&initial).json(&bad).send().await.unwrap();
    let created =
        http().post(format!("{}/admin/clients", s.admin)).bearer_auth(&s.token).json(&bad).send().await.unwrap();
    let bad_scope = json!({"grant_types": ["client_credentials"], "scope": "write"});
    let scoped =
        http().post(format!("{}/register", s.base)).bearer_auth(&initial).json(&bad_scope).send().await.unwrap();
    for r in [registered, created, scoped] {
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("www-authenticate").is_none(), "{:?}", r.headers());
        let body: Value = r.json().await.unwrap();
        assert!(matches!(body["error"].as_str(), Some("invalid_redirect_uri" | "invalid_client_metadata")), "{body}");
    }
    let good = json!({"grant_types": ["client_credentials"], "scope": "read"});
    let client: Value = http()
        .post(format!("{}/register", s.base))
        .bearer_auth(&initial)
        .json(&good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = client["registration_client_uri"].as_str().unwrap().to_owned();
    let mut update = bad.clone();
    update["client_id"] = client["client_id"].clone();
    // Over the 64 KiB limit: a wrong token is still its 401, the body unread.
    let huge = format!("{{\"client_name\": \"{}\"}}", "a".repeat(70 * 1024));
    let refused = [
        (
            "wrong initial access token",
            http().post(format!("{}/register", s.base)).bearer_auth("not-the-token").json(&bad),
        ),
        (
            "wrong admin token",
            http().post(format!("{}/admin/clients", s.admin)).bearer_auth("not-the-token").json(&bad),
        ),
        ("wrong registration access token, PUT", http().put(&uri).bearer_auth("not-the-token").json(&update)),
        ("wrong registration access token, GET", http().get(&uri).bearer_auth("not-the-token")),
        ("wrong registration access token, DELETE", http().delete(&uri).bearer_auth("not-the-token")),
        (
            "wrong initial access token, body over the limit",
            http()
                .post(format!("{}/register", s.base))
                .bearer_auth("not-the-token")
                .header("content-type", "application/json")
                .body(huge.clone()),
        ),
        (
            "wrong registration access token, body over the limit",
            http().put(&uri).bearer_auth("not-the-token").header("content-type", "application/json").body(huge),
        ),
    ];
    for (what, request) in refused {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        assert!(
            challenge.as_deref().is_some_and(|c| c.starts_with("Bearer") && c.contains("error=\"invalid_token\"")),
            "{what}: {challenge:?}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    }
}
