//! Security events over HTTP, against the real binary: a replayed code, a
//! reused refresh token and a throttle lockout each write one WARN line (with
//! the kind and what the operator needs, never a code or token) and count in
//! `oauth_security_events_total{kind}` at `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use support::*;

fn counted(metrics: &str, kind: &str) -> u64 {
    let prefix = format!("oauth_security_events_total{{kind=\"{kind}\"}} ");
    let line =
        metrics.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {kind} in {metrics}"));
    line.parse().unwrap()
}

#[tokio::test]
async fn every_kind_is_counted_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let m = metrics(&base).await;
    assert!(m.contains("# TYPE oauth_security_events_total counter"), "{m}");
    for kind in
        ["code_replay", "refresh_token_reuse", "throttle_lockout", "dpop_proof_replay", "client_assertion_replay"]
    {
        assert_eq!(counted(&m, kind), 0, "{kind}");
    }
    assert_eq!(server.stop(), 0);
}

#[tokio::test]
async fn a_replayed_code_is_logged_at_warn_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let code = code_flow(&base).await;
    let (status, tokens) = redeem(&base, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, _) = redeem(&base, &code).await;
    assert_eq!(status, 400);

    let line = server.wait_for("kind=code_replay");
    assert!(line.contains("WARN") && line.contains("client_id=demo-app") && line.contains("grant="), "{line}");
    assert!(!line.contains(&code) && !line.contains(tokens["access_token"].as_str().unwrap()), "{line}");
    let m = metrics(&base).await;
    assert_eq!(counted(&m, "code_replay"), 1, "{m}");
    assert_eq!(counted(&m, "refresh_token_reuse"), 0, "{m}");
    assert_eq!(server.stop(), 0);
}

#[tokio::test]
async fn a_reused_refresh_token_is_logged_at_warn_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "");
    let server = Server::start(&config, dir.path());
    let (_, tokens) = redeem(&base, &code_flow(&base).await).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = || async {
        http()
            .post(format!("{base}/token"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())])
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(refresh().await, 200);
    assert_eq!(refresh().await, 400);

    let line = server.wait_for("kind=refresh_token_reuse");
    assert!(line.contains("WARN") && line.contains("client_id=demo-app") && line.contains("grant="), "{line}");
    assert!(!line.contains(&refresh_token), "{line}");
    let m = metrics(&base).await;
    assert_eq!(counted(&m, "refresh_token_reuse"), 1, "{m}");
    assert_eq!(counted(&m, "code_replay"), 0, "{m}");
    assert_eq!(server.stop(), 0);
}

#[tokio::test]
async fn a_throttle_lockout_is_logged_at_warn_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, base) = quickstart(dir.path(), "[throttle]\nmax_failures_per_account = 2\n");
    let server = Server::start(&config, dir.path());
    let guess = || async {
        http()
            .post(format!("{base}/token"))
            .basic_auth("demo-app", Some("a-wrong-guess-of-the-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((guess().await, guess().await), (401, 401), "failures up to the limit");
    assert_eq!(guess().await, 429);

    let line = server.wait_for("kind=throttle_lockout");
    assert!(line.contains("WARN") && line.contains("subject=client") && line.contains("peer=127.0.0.1"), "{line}");
    assert!(!line.contains("a-wrong-guess"), "{line}");
    assert_eq!(counted(&metrics(&base).await, "throttle_lockout"), 1);
    assert_eq!(server.stop(), 0);
}
