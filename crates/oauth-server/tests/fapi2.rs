//! The FAPI 2.0 profile switch, `[profile] fapi2`, on the real binary:
//! `check-config` refuses (exit 2) what the profile cannot turn on, and a
//! server that runs it says so in its metadata and requires PAR.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use support::*;

/// A FAPI 2.0 server: one `private_key_jwt` client and the demo account.
fn fapi2_config(port: u16) -> String {
    format!(
        r#"
issuer = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
[store]
backend = "mem"
[profile]
fapi2 = true
[[clients]]
client_id = "bank-app"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{{"keys":[{{"kty":"EC","crv":"P-256","x":"2zZGSanZAXoZIjoaMsdzZGat7P7foN_l_C1EmBC7fKs","y":"2EwpmVXIIGPjXSPBG4QY9Nijq91VRT_zK8sfugUVtm0"}}]}}'
redirect_uris = ["http://127.0.0.1:9000/callback"]
scopes = ["read"]
"#
    )
}

#[test]
fn check_config_refuses_secret_and_public_clients_and_rs256_under_fapi2() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = quickstart(dir.path(), "[profile]\nfapi2 = true\n[tokens]\nsigning_alg = \"RS256\"\n");
    let (code, _, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 2, "{stderr}");
    for key in ["clients[0].client_secret_hash", "clients[1].token_endpoint_auth_method", "tokens.signing_alg"] {
        assert!(stderr.contains(key), "{key} in {stderr}");
    }
}

#[tokio::test]
async fn a_fapi2_server_advertises_the_profile_and_requires_pushed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, fapi2_config(port)).unwrap();
    let (code, stdout, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let server = Server::start(&path, dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let m: serde_json::Value = http()
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["require_pushed_authorization_requests"], true);
    assert_eq!(m["token_endpoint_auth_methods_supported"], serde_json::json!(["private_key_jwt"]));
    assert_eq!(m["dpop_signing_alg_values_supported"], serde_json::json!(["ES256", "EdDSA", "PS256"]));
    assert_eq!(m["token_endpoint_auth_signing_alg_values_supported"], serde_json::json!(["ES256", "EdDSA", "PS256"]));
    // ID tokens are signed with signing_alg (ES256 here), never RS256.
    assert_eq!(m["id_token_signing_alg_values_supported"], serde_json::json!(["ES256"]));
    let plain = format!(
        "{base}/authorize?client_id=bank-app&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let r = http().get(&plain).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query(&location, "error").as_deref(), Some("invalid_request"), "{location}");
    assert_eq!(server.stop(), 0);
}
