//! The Rust resource server of docs/integration.md
//! (`examples/resource_server.rs`), run as printed: its `/records` handler
//! accepts an access token of a real server with the `read` scope and answers
//! the RFC 6750 errors otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

#[allow(dead_code, unreachable_pub, reason = "the example's main is not run here; its handler is")]
#[path = "../examples/resource_server.rs"]
mod example;

use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use support::*;

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h
}

async fn client_credentials(s: &TestServer, scope: &str) -> String {
    let r: serde_json::Value = http()
        .post(format!("{}/token", s.base))
        .basic_auth(CONFIDENTIAL, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_rust_resource_server_example_accepts_our_tokens_and_answers_rfc6750_errors() {
    let s = start(Options::default()).await;
    let verifier = example::verifier(&s.base, &s.base);

    let ok = example::records(&verifier, &bearer(&client_credentials(&s, "read").await)).await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(&ok.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!((body["sub"].as_str(), body["client_id"].as_str()), (Some(CONFIDENTIAL), Some(CONFIDENTIAL)));

    let narrow = example::records(&verifier, &bearer(&client_credentials(&s, "profile").await)).await;
    assert_eq!(narrow.status(), 403);
    let challenge = narrow.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");

    let forged = example::records(&verifier, &bearer("eyJhbGciOiJub25lIn0.e30.")).await;
    assert_eq!(forged.status(), 401);
    assert!(forged.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));

    let missing = example::records(&verifier, &HeaderMap::new()).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"records\"");

    // Another audience's verifier refuses the token.
    let elsewhere = example::verifier(&s.base, "https://other-api.example");
    let r = example::records(&elsewhere, &bearer(&client_credentials(&s, "read").await)).await;
    assert_eq!(r.status(), 401);
}
