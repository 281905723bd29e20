//! The real `oauth-server` binary as a child process: its commands, its
//! configuration errors, serving, shutdown, crash recovery and the MedMij flow.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// The quick-start example with the password grant switched on for demo-app.
fn quickstart_with_password(dir: &Path) -> (PathBuf, String) {
    let (config, base) = quickstart(dir, "[grants]\npassword = true\n");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\"]",
        "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\", \"password\"]",
    );
    std::fs::write(&config, text).unwrap();
    (config, base)
}

/// A password grant for alice as demo-app; the token response.
async fn password_grant(base: &str) -> serde_json::Value {
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The MedMij example with its OCL, moved to a free port, in `dir`.
fn medmij(dir: &Path) -> (PathBuf, String) {
    let port = free_port();
    std::fs::copy(format!("{EXAMPLES}/ocl.xml"), dir.join("ocl.xml")).unwrap();
    let text = std::fs::read_to_string(format!("{EXAMPLES}/medmij.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let config = dir.join("medmij.toml");
    std::fs::write(&config, text).unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

async fn client_credentials(base: &str) -> serde_json::Value {
    let resp = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

// --- commands ---------------------------------------------------------------------------

#[test]
fn hash_secret_prints_argon2id_or_sha256_and_drops_one_newline() {
    let (code, out, _) = run(&["hash-secret"], "pw\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{out}");
    let (code, a, _) = run(&["hash-secret", "--sha256"], &format!("{SECRET}\r\n"));
    let (_, b, _) = run(&["hash-secret", "--sha256"], SECRET);
    assert_eq!((code, a.trim()), (0, b.trim()));
    assert_eq!(b.trim(), "$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2");
    let (code, _, err) = run(&["hash-secret", "--sha256"], "too short\n");
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_examples_pass_check_config() {
    for name in ["quickstart", "medmij"] {
        let (code, _, err) = run(&["check-config", "--config", &format!("{EXAMPLES}/{name}.toml")], "");
        assert_eq!(code, 0, "{name}: {err}");
    }
}

#[test]
fn check_config_reports_every_problem_with_its_key_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
issuer = "http://127.0.0.1:8080"
colour = "blue"
[server]
max_conections = 5
[tokens]
access_token_ttl = 0
leeway = 61
refresh_token_ttl = 100
refresh_token_max_lifetime = 50
signing_alg = "none"
[store]
backend = "floppy"
[[clients]]
client_id = "web"
redirect_uris = ["http://evil.example/cb", "https://ok.example/cb#frag", "/relative"]
client_secret_hash = "plain"
[[clients]]
client_id = "spa"
redirect_uris = ["https://spa.example/cb"]
require_pkce = false
[[clients]]
client_id = "web"
redirect_uris = ["https://web.example/cb"]
grant_types = ["implicit"]
[[clients]]
client_id = "machine"
redirect_uris = ["https://machine.example/cb"]
grant_types = ["client_credentials"]
[[clients]]
client_id = "nowhere"
client_secret_hash = "$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2"
[[accounts]]
username = "bob"
password_hash = "$sha256$e30a44623ba305e18d1cab70f804bc523347a967e8bb17319eb890e91ddbc7f2"
shoe_size = 44
"#,
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 2);
    for key in [
        "colour: unknown key",
        "server.max_conections: unknown key",
        "tokens.access_token_ttl",
        "tokens.leeway",
        "tokens.refresh_token_ttl",
        "tokens.signing_alg",
        "store.backend",
        "clients[0].redirect_uris[0]",
        "clients[0].redirect_uris[1]",
        "clients[0].redirect_uris[2]",
        "clients[0].client_secret_hash",
        "clients[1].require_pkce: a public client must require PKCE",
        "clients[3].grant_types: client_credentials is for confidential clients only",
        "clients[4].redirect_uris: the authorization_code grant needs at least one redirect URI",
        "clients[2].client_id",
        "clients[2].grant_types[0]",
        "accounts[0].password_hash",
        "accounts[0].shoe_size: unknown key",
    ] {
        assert!(err.contains(key), "missing {key:?} in:\n{err}");
    }
}

#[test]
fn warnings_are_printed_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warn.toml");
    std::fs::write(&path, "issuer = \"http://auth.example\"\n[grants]\npassword = true\n").unwrap();
    let (code, _, err) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: issuer") && err.contains("warning: grants.password"), "{err}");
}

#[test]
fn a_missing_config_file_or_ocl_exits_2() {
    let (code, _, err) = run(&["check-config", "--config", "/nonexistent/oauth.toml"], "");
    assert_eq!(code, 2, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, "[medmij]\nocl = \"missing.xml\"\nscopes = [\"1\"]\n").unwrap();
    let (code, _, err) = run(&["--config", path.to_str().unwrap()], "");
    assert_eq!(code, 2);
    assert!(err.contains("medmij.ocl"), "{err}");
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(run(&["no-such-command"], "").0, 2);
    assert_eq!(run(&["check-config"], "").0, 2);
}

// --- serving ------------------------------------------------------------------------------

#[tokio::test]
async fn serves_the_quickstart_logs_without_secrets_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let t = client_credentials(&base).await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    let line = server.wait_for("path=/token");
    assert!(line.contains("status=200") && line.contains("client_id=demo-app") && line.contains("POST"), "{line}");
    let log = server.rest_of_log();
    assert!(!log.contains(SECRET) && !log.contains(&token));
    let metrics = http().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("oauth_tokens_issued_total{grant_type=\"client_credentials\"} 1"), "{metrics}");
    assert!(metrics.contains("oauth_store_operation_seconds_count{operation=\"failures\"}"), "{metrics}");
    assert_eq!(server.stop(), 0);
    assert!(dir.path().join("data").is_dir(), "the sled store lives beside the config");
}

#[tokio::test]
async fn without_a_config_it_serves_defaults_from_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults listen on 127.0.0.1:8080, which may be taken on a shared machine:
    // only the start-up is checked, and the port may legitimately be in use.
    let mut child = Command::new(BIN).current_dir(dir.path()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut saw_defaults = false;
    for line in stderr.lines().map_while(Result::ok) {
        saw_defaults |= line.contains("built-in defaults");
        if line.contains("listening on") || line.contains("cannot listen") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(saw_defaults);
    assert!(dir.path().join("data").is_dir());
}

#[tokio::test]
async fn kill_9_then_restart_keeps_refresh_tokens_revocations_and_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart_with_password(dir.path());
    let server = Server::start(&config, dir.path());
    let kept = password_grant(&base).await;
    let revoked = password_grant(&base).await;
    let r = http()
        .post(format!("{base}/revoke"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("token", revoked["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks_before: serde_json::Value =
        http().get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
    server.kill9();

    let server = Server::start(&config, dir.path());
    let jwks_after: serde_json::Value =
        http().get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks_before, jwks_after, "the signing key survived");
    let info = http()
        .get(format!("{base}/userinfo"))
        .bearer_auth(kept["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200, "a token minted before the crash still verifies");
    assert_eq!(refresh_once(&base, kept["refresh_token"].as_str().unwrap()).await.unwrap().0, 200);
    let after_revocation = refresh_once(&base, revoked["refresh_token"].as_str().unwrap()).await.unwrap().0;
    assert_eq!(after_revocation, 400, "the revocation survived");
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_start_on_a_held_store_exits_1_naming_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    // The same store, another port: the store is what fails.
    let (second, _) = quickstart(dir.path(), "");
    let (code, _, err) = run(&["--config", second.to_str().unwrap()], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot open the store at {}", dir.path().join("data").display())), "{err}");
    assert_eq!(server.stop(), 0);
}

#[test]
fn a_start_on_a_taken_address_exits_1_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let addr = base.trim_start_matches("http://");
    let _taken = std::net::TcpListener::bind(addr).unwrap();
    let (code, _, err) = run(&["--config", config.to_str().unwrap()], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}: ")), "{err}");
}

#[tokio::test]
async fn keys_rotate_needs_the_store_alone_and_old_tokens_keep_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let cfg = config.to_str().unwrap();
    let server = Server::start(&config, dir.path());
    let old = client_credentials(&base).await;
    let (code, _, err) = run(&["keys", "rotate", "--config", cfg], "");
    assert_eq!(code, 1, "the running server holds the store: {err}");
    assert!(err.contains("stop the server first"), "{err}");
    assert_eq!(server.stop(), 0);

    let (code, kid, err) = run(&["keys", "rotate", "--config", cfg], "");
    assert_eq!(code, 0, "{err}");
    let server = Server::start(&config, dir.path());
    let jwks: serde_json::Value = http().get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    // The old and new access-token keys (ES256) and ID-token keys (RS256).
    assert_eq!(kids.len(), 4, "{jwks}");
    let new_kids: Vec<&str> = kid.lines().collect();
    assert_eq!(new_kids.len(), 2, "an access-token key and an ID-token key: {kid}");
    assert!(new_kids.iter().all(|k| kids.contains(k)), "{kid}");
    let new = client_credentials(&base).await;
    for t in [&old, &new] {
        let r = http()
            .post(format!("{base}/introspect"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("token", t["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["active"], true);
    }
    assert_eq!(server.stop(), 0);

    std::fs::write(dir.path().join("hs.key"), [7u8; 32]).unwrap();
    let with_file =
        std::fs::read_to_string(&config).unwrap() + "\n[tokens]\nsigning_alg = \"HS256\"\nkey_file = \"hs.key\"\n";
    std::fs::write(&config, with_file).unwrap();
    // With a key_file, the file's key is rotated by replacing the file; the
    // ID-token key is still the store's, and only it rotates.
    let (code, kid, err) = run(&["keys", "rotate", "--config", cfg], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(kid.lines().count(), 1, "the ID-token key alone: {kid}");
}

// --- MedMij --------------------------------------------------------------------------------

#[tokio::test]
async fn the_medmij_flow_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = medmij(dir.path());
    let server = Server::start(&config, dir.path());

    let authorize = |client: &str, redirect: &str| {
        format!(
            "{base}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=1&state=s1",
            form_urlencoded(redirect)
        )
    };
    // Refused before any login: not on the list, http, host mismatch.
    for (client, redirect) in [
        ("not.listed.example", "https://not.listed.example/cb"),
        ("pgo.example.org", "http://pgo.example.org/cb"),
        ("pgo.example.org", "https://app.gezondheid.example.net/cb"),
    ] {
        let r = http().get(authorize(client, redirect)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{client} {redirect}");
    }

    let url = authorize("pgo.example.org", "https://pgo.example.org/cb");
    let (minor, _, page) = log_in(&base, &url, "sam").await;
    assert!(page.contains("Example Health Vault"), "the consent pages show the OCL organisation name");
    assert!(minor.starts_with("https://pgo.example.org/cb?error=access_denied"), "{minor}");
    assert!(minor.contains("state=s1") && minor.contains("iss="), "{minor}");

    let (consent, cookie, _) = log_in(&base, &url, "alice").await;
    let (page, redirect) = approve(&base, &consent, &cookie).await;
    assert!(page.contains("Basic health data"));
    assert!(redirect.starts_with("https://pgo.example.org/cb?code="), "{redirect}");
    let code = redirect.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    // A MedMij client library may send JSON to /token.
    let body = serde_json::json!({
        "grant_type": "authorization_code", "code": code, "client_id": "pgo.example.org",
        "redirect_uri": "https://pgo.example.org/cb"
    });
    let t = http().post(format!("{base}/token")).json(&body).send().await.unwrap();
    assert_eq!(t.status(), 200);
    let t: serde_json::Value = t.json().await.unwrap();
    assert_eq!(t["scope"], "1");
    assert!(t.get("refresh_token").is_none(), "OCL clients get no refresh token");
    assert_eq!(server.stop(), 0);
}

#[tokio::test]
async fn sighup_reloads_the_ocl_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = medmij(dir.path());
    let server = Server::start(&config, dir.path());
    std::fs::write(dir.path().join("ocl.xml"), "<broken").unwrap();
    server.signal("HUP");
    let line = server.wait_for("reload failed");
    assert!(line.contains("keeping sequence 42"), "{line}");
    let newer =
        std::fs::read_to_string(format!("{EXAMPLES}/ocl.xml")).unwrap().replace("<Volgnummer>42", "<Volgnummer>43");
    std::fs::write(dir.path().join("ocl.xml"), newer).unwrap();
    server.signal("HUP");
    let line = server.wait_for("reloaded");
    assert!(line.contains("sequence=43"), "{line}");
    assert_eq!(server.stop(), 0);
}

/// Opens the login page at `url` and logs in as `user` (password
/// `alice-password`): where the 303 goes, the browser cookie, and the page.
async fn log_in(base: &str, url: &str, user: &str) -> (String, String, String) {
    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let r = http()
        .post(format!("{base}/authorize/login"))
        .header("cookie", &cookie)
        .form(&[
            ("session", hidden(&html, "session").as_str()),
            ("csrf", &hidden(&html, "csrf")),
            ("username", user),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    (r.headers()["location"].to_str().unwrap().to_owned(), cookie, html)
}

/// Opens the consent page at `consent` and approves: the page, and where the
/// browser is sent (the client's redirect URI with the code).
async fn approve(base: &str, consent: &str, cookie: &str) -> (String, String) {
    let page = http().get(format!("{base}{consent}")).header("cookie", cookie).send().await.unwrap();
    let page = page.text().await.unwrap();
    let r = http()
        .post(format!("{base}/authorize/consent"))
        .header("cookie", cookie)
        .form(&[
            ("session", hidden(&page, "session").as_str()),
            ("csrf", &hidden(&page, "csrf")),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    (page, r.headers()["location"].to_str().unwrap().to_owned())
}

/// One refresh-token family under load: the newest token the client holds, and
/// whether a request was in flight (sent, unanswered) when the server died.
struct Family {
    latest: String,
    in_flight: bool,
}

async fn refresh_once(base: &str, token: &str) -> Result<(reqwest::StatusCode, serde_json::Value), reqwest::Error> {
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await?;
    let status = r.status();
    Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Rounds of `kill -9` under refresh load (`OAUTH_CRASH_ROUNDS`, default 3; the
/// hardening issue's closing note reports a local run of 20). After each
/// restart, every family whose newest token was acknowledged refreshes again,
/// and a revocation acknowledged before the kill still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_token() {
    let rounds: usize = std::env::var("OAUTH_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart_with_password(dir.path());
    let login = |base: String| async move { password_grant(&base).await["refresh_token"].as_str().unwrap().to_owned() };

    let mut server = Server::start(&config, dir.path());
    let mut families = Vec::new();
    for _ in 0..8 {
        families.push(Family { latest: login(base.clone()).await, in_flight: false });
    }
    let mut checked = 0;
    for round in 0..rounds {
        // A revocation acknowledged before the crash.
        let doomed = login(base.clone()).await;
        let r = http()
            .post(format!("{base}/revoke"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("token", doomed.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for mut fam in families.drain(..) {
            let (base, stop) = (base.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    fam.in_flight = true;
                    match refresh_once(&base, &fam.latest).await {
                        Ok((s, body)) if s == 200 => {
                            fam.latest = body["refresh_token"].as_str().unwrap().to_owned();
                            fam.in_flight = false;
                        }
                        Ok((s, _)) => panic!("a live family was refused with {s} before the crash"),
                        Err(_) => break, // the server died with this request unanswered
                    }
                }
                fam
            }));
        }
        tokio::time::sleep(Duration::from_millis(100 + (round as u64 * 137) % 400)).await;
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            families.push(t.await.unwrap());
        }

        server = Server::start(&config, dir.path());
        assert_eq!(refresh_once(&base, &doomed).await.unwrap().0, 400, "round {round}: the revocation survived");
        for fam in &mut families {
            let (status, body) = refresh_once(&base, &fam.latest).await.unwrap();
            if status == 200 {
                fam.latest = body["refresh_token"].as_str().unwrap().to_owned();
                checked += 1;
            } else {
                // Only a family with a request in flight may have moved on
                // without telling the client (then its token counts as reused).
                assert!(fam.in_flight, "round {round}: an acknowledged refresh token was lost ({status})");
                fam.latest = login(base.clone()).await;
            }
            fam.in_flight = false;
        }
    }
    eprintln!("{rounds} kill -9 rounds, {checked} acknowledged families refreshed after restart");
    assert_eq!(server.stop(), 0);
}

/// A node of the quick-start example on the PostgreSQL database `url`, with
/// the password grant on and `extra` appended: one issuer (the load
/// balancer's address), a listener per node. Returns its config and base URL.
fn postgres_node(dir: &Path, url: &str, name: &str, extra: &str) -> (PathBuf, String) {
    let text = std::fs::read_to_string(format!("{EXAMPLES}/quickstart.toml")).unwrap();
    // The test server has no TLS (the store's own tests cover TLS).
    let store = format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\ntls = \"disable\"\n");
    let text = text.replace("[store]\nbackend = \"sled\"\npath = \"data\"\n", &store).replace(
        "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\"]",
        "grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\", \"password\"]",
    );
    assert!(text.contains("backend = \"postgres\""), "the example's [store] table moved");
    let port = free_port();
    let listen = format!("listen = \"127.0.0.1:{port}\"");
    let config = dir.join(format!("{name}.toml"));
    let text = text.replacen("listen = \"127.0.0.1:8080\"", &listen, 1);
    std::fs::write(&config, format!("{text}\n[grants]\npassword = true\n{extra}")).unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// Two nodes started at the same moment on an empty database: one creates
/// the signing key and the seeded accounts, the other finds them (the
/// startup lock), so both sign with the one key and neither fails on the
/// other's account. Then a lockout made on one node holds on the other
/// within a second (each node keeps its reads of the failures for at most a
/// second, SPEC-2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_at_once_create_one_key_and_share_lockouts() {
    let db = oauth_store_postgres::testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let throttle = "[throttle]\nmax_failures_per_account = 3\n";
    let (config_a, base_a) = postgres_node(dir.path(), &db.url, "a", throttle);
    let (config_b, base_b) = postgres_node(dir.path(), &db.url, "b", throttle);
    let a = Server::spawn(&["--config", config_a.to_str().unwrap()], dir.path());
    let b = Server::spawn(&["--config", config_b.to_str().unwrap()], dir.path());
    a.wait_for("listening on");
    b.wait_for("listening on");

    let options = oauth_store_postgres::testing::options();
    let store = oauth_store_postgres::PostgresStore::connect(&db.url, options).await.unwrap();
    // One access-token key (ES256) and one ID-token key (RS256), whichever
    // node made them.
    let keys = oauth_core::Store::signing_keys(&store).await.unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k.algorithm.as_str()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "RS256"], "two nodes starting at once created {} signing keys", keys.len());
    let accounts = oauth_core::Store::accounts(&store).await.unwrap();
    assert_eq!(accounts.len(), 1, "the seeded account");
    let jwks = |base: String| async move {
        http().get(format!("{base}/jwks.json")).send().await.unwrap().text().await.unwrap()
    };
    assert_eq!(jwks(base_a.clone()).await, jwks(base_b.clone()).await);

    // B reads alice's counter (and may keep the clean read for a second).
    password_grant(&base_b).await;
    let wrong = |base: String| async move {
        http()
            .post(format!("{base}/token"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("grant_type", "password"), ("username", "alice"), ("password", "wrong")])
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..3 {
        assert_eq!(wrong(base_a.clone()).await, 400);
    }
    let locked_at = std::time::Instant::now();
    assert_eq!(wrong(base_a.clone()).await, 429, "A locks alice out after three failures");
    // On B the right password is refused too, at the latest a second later.
    loop {
        let status = http()
            .post(format!("{base_b}/token"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")])
            .send()
            .await
            .unwrap()
            .status();
        if status == 429 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            locked_at.elapsed() < Duration::from_secs(1),
            "B still let alice in {:?} after the lockout",
            locked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);
}

/// Issue 17's first finding over the real server, on sled and on PostgreSQL
/// (there through the node's one-second read cache): 50 concurrent password
/// grants for alice, the right password at position 31, limit 10. On one node
/// at most the limit are checked, so the ten wrong guesses checked first lock
/// alice out before the right password is: no guess gets a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_password_guesses_gets_no_token_on_sled_or_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart_with_password(dir.path());
    let server = Server::start(&config, dir.path());
    assert_eq!(password_burst(&base).await, [(400, 10), (429, 40)].into(), "sled");
    assert_eq!(server.stop(), 0);

    let db = oauth_store_postgres::testing::TestDatabase::create().await;
    let (config, base) = postgres_node(dir.path(), &db.url, "burst", "");
    let server = Server::start(&config, dir.path());
    assert_eq!(password_burst(&base).await, [(400, 10), (429, 40)].into(), "PostgreSQL");
    assert_eq!(server.stop(), 0);
}

/// Thirty wrong passwords for alice at once, then the right one, then
/// nineteen wrong ones; how many of each status came back.
async fn password_burst(base: &str) -> std::collections::BTreeMap<u16, usize> {
    let guess = |password: &'static str| {
        let base = base.to_owned();
        tokio::spawn(async move {
            let r = http()
                .post(format!("{base}/token"))
                .basic_auth("demo-app", Some(SECRET))
                .form(&[("grant_type", "password"), ("username", "alice"), ("password", password)])
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        })
    };
    let first: Vec<_> = (0..30).map(|_| guess("wrong")).collect();
    // Ten of them are being checked, the others wait, when the right one comes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let right = guess("alice-password");
    let rest: Vec<_> = (0..19).map(|_| guess("wrong")).collect();
    let mut statuses = std::collections::BTreeMap::new();
    for t in first.into_iter().chain([right]).chain(rest) {
        *statuses.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    statuses
}

/// Two nodes behind one issuer on one PostgreSQL database: a code is redeemed
/// once across both, a refresh replayed on the other node kills the family,
/// a revocation on one is seen on the other, and both serve the same keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database_share_everything() {
    let db = oauth_store_postgres::testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| postgres_node(dir.path(), &db.url, name, "");
    let (config_a, base_a) = node("a");
    let (config_b, base_b) = node("b");
    let (a, b) = (Server::start(&config_a, dir.path()), Server::start(&config_b, dir.path()));

    // Keys: a token minted on A verifies on B; the JWKS are the same.
    let t = password_grant(&base_a).await;
    let access = t["access_token"].as_str().unwrap().to_owned();
    let me = http().get(format!("{base_b}/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let jwks = |base: String| async move {
        http().get(format!("{base}/jwks.json")).send().await.unwrap().text().await.unwrap()
    };
    assert_eq!(jwks(base_a.clone()).await, jwks(base_b.clone()).await);

    // A revocation on A is seen on B.
    let r = http()
        .post(format!("{base_a}/revoke"))
        .basic_auth("demo-app", Some(SECRET))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me = http().get(format!("{base_b}/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(me.status(), 401, "B still accepts a token revoked on A");

    // A refresh token rotated on A and replayed on B revokes the family.
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh_once(&base_a, &first).await.unwrap();
    assert_eq!(status, 200);
    let (status, _) = refresh_once(&base_b, &first).await.unwrap();
    assert_eq!(status, 400, "the replay on B");
    let (status, _) = refresh_once(&base_a, rotated["refresh_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 400, "the family died on A too");

    // A code issued on A is redeemed once across A and B: redeemed on A, it
    // is refused on B, and that replay revokes what A issued for it. Each
    // code walks the consent page (`prompt=consent`): the first approval is
    // remembered, on both nodes.
    let url = format!(
        "{base_a}/authorize?response_type=code&client_id=demo-app&redirect_uri={}&scope=read&state=s&prompt=consent&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        form_urlencoded("http://127.0.0.1:9000/callback")
    );
    let code = || async {
        let (consent, cookie, _) = log_in(&base_a, &url, "alice").await;
        let (_, redirect) = approve(&base_a, &consent, &cookie).await;
        redirect.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned()
    };
    let exchange = |base: String, code: String| async move {
        http()
            .post(format!("{base}/token"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://127.0.0.1:9000/callback"),
                ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            ])
            .send()
            .await
            .unwrap()
    };
    let first = code().await;
    let won = exchange(base_a.clone(), first.clone()).await;
    assert_eq!(won.status(), 200);
    let won: serde_json::Value = won.json().await.unwrap();
    assert_eq!(exchange(base_b.clone(), first).await.status(), 400, "the replay on B");
    let me = http().get(format!("{base_b}/userinfo")).bearer_auth(won["access_token"].as_str().unwrap());
    assert_eq!(me.send().await.unwrap().status(), 401, "the replay revoked the first exchange's tokens");
    // Raced on both nodes at once: at most one token response (the winner
    // may itself learn of the replay and refuse).
    let second = code().await;
    let (on_a, on_b) = tokio::join!(exchange(base_a.clone(), second.clone()), exchange(base_b.clone(), second));
    let statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
    assert!(statuses.contains(&400) && statuses.iter().all(|s| [200, 400].contains(s)), "{statuses:?}");

    // `keys rotate` while both run: each node soon verifies the new key, and
    // both publish it.
    let (status, kid, err) = run(&["keys", "rotate", "--config", config_a.to_str().unwrap()], "");
    assert_eq!(status, 0, "{err}");
    a.wait_for("signing keys reloaded");
    b.wait_for("signing keys reloaded");
    let (jwks_a, jwks_b) = (jwks(base_a.clone()).await, jwks(base_b.clone()).await);
    assert_eq!(jwks_a, jwks_b);
    assert!(kid.lines().all(|k| jwks_a.contains(k)), "{jwks_a}");
    assert_eq!(a.stop(), 0);
    assert_eq!(b.stop(), 0);
}

// --- what an outside attack found (issue 17) ------------------------------------------

#[tokio::test]
async fn a_client_cannot_forge_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let forged = "2026-01-01T00:00:00.000000Z  INFO request method=GET path=/admin status=200 client_id=root";
    // In Basic credentials each part is form-encoded (RFC 6749 2.3.1), so a
    // newline travels as %0A; in a JSON body as \n; ANSI escapes too.
    let basic_id = format!("x%0A{}", form_urlencoded(forged));
    let r = http()
        .post(format!("{base}/token"))
        .basic_auth(basic_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body = serde_json::json!({"grant_type": "client_credentials", "client_id": format!("y\r\n{forged}\u{1b}[2J")});
    let r = http().post(format!("{base}/token")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let mut lines: Vec<String> = Vec::new();
    while !["client_id=x", "client_id=y"].iter().all(|n| lines.iter().any(|l| l.contains(n))) {
        lines.push(server.next_line(Duration::from_secs(20)).expect("both request lines"));
    }
    let log = format!("{}\n{}", lines.join("\n"), server.rest_of_log());
    assert!(!log.lines().any(|l| l.starts_with("2026-01-01")), "a forged line:\n{log}");
    assert!(!log.contains('\u{1b}'), "an ANSI escape reached the log:\n{log}");
    assert!(log.contains("client_id=x\\n2026-01-01"), "the value is there, escaped:\n{log}");
    assert_eq!(server.stop(), 0);
}

#[tokio::test]
async fn an_ocl_client_id_in_another_case_gets_its_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = medmij(dir.path());
    let server = Server::start(&config, dir.path());
    let url = format!(
        "{base}/authorize?response_type=code&client_id=PGO.Example.ORG&redirect_uri={}&scope=1&state=s1",
        form_urlencoded("https://pgo.example.org/cb")
    );
    let (consent, cookie, _) = log_in(&base, &url, "alice").await;
    let (_, redirect) = approve(&base, &consent, &cookie).await;
    let code = redirect.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let t = http()
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", "Pgo.Example.Org"),
            ("redirect_uri", "https://pgo.example.org/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(t.status(), 200);
    let t: serde_json::Value = t.json().await.unwrap();
    let payload = t["access_token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["client_id"], "pgo.example.org", "the token carries the OCL's spelling");
    assert_eq!(server.stop(), 0);
}

/// Bytes in the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() { dir_size(&e.path()) } else { m.len() }
        })
        .sum()
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_authorize_flood_leaves_the_sled_store_and_memory_bounded() {
    const CAP: usize = 100;
    const FLOOD: usize = 4000;
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = medmij(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[throttle]\nmax_pending_per_ip = {CAP}\n"));
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, dir.path());
    let data = dir.path().join("data-medmij");
    let (disk_before, rss_before) = (dir_size(&data), rss_kib(server.pid()));
    // MedMij's free query, just under the 2,048 bytes a redirect URI may have.
    let redirect = format!("https://pgo.example.org/cb?pad={}", "a".repeat(1990));
    let url = format!(
        "{base}/authorize?response_type=code&client_id=pgo.example.org&redirect_uri={}&scope=1&state=s",
        form_urlencoded(&redirect)
    );
    let url = std::sync::Arc::new(url);
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..FLOOD / 16 {
                    statuses.push(http().get(url.as_str()).send().await.unwrap().status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::new();
    for w in workers {
        for s in w.await.unwrap() {
            *statuses.entry(s).or_insert(0usize) += 1;
        }
    }
    assert_eq!(statuses, [(200, CAP), (429, FLOOD - CAP)].into());
    let (disk, rss) = (dir_size(&data), rss_kib(server.pid()));
    eprintln!("sled directory {disk_before} -> {disk} bytes; server RSS {rss_before} -> {rss} KiB");
    // 4,000 sessions of 2 KB would be 8 MB of records before sled's own
    // overhead; 100 of them are 200 KB.
    assert!(disk.saturating_sub(disk_before) < 4 << 20, "the store grew by {} bytes", disk - disk_before);
    assert!(rss.saturating_sub(rss_before) < 24 << 10, "the server grew by {} KiB", rss - rss_before);
    assert_eq!(server.stop(), 0);
}
