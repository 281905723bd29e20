//! No request of any shape makes the server panic or answer 5xx: random
//! methods, paths, queries, headers and bodies against every route.
//!
//! These go through `Frontend::handle` directly, the same code a connection
//! runs after hyper has parsed the request, so thousands of cases take
//! seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use proptest::prelude::*;
use support::*;

const PATHS: &[&str] = &[
    "/.well-known/oauth-authorization-server",
    "/jwks.json",
    "/authorize",
    "/authorize/login",
    "/authorize/consent",
    "/token",
    "/revoke",
    "/introspect",
    "/userinfo",
    "/healthz",
    "/metrics",
    "/",
    "/authorize/../token",
];

/// One runtime and one front end for every case: building them is the slow
/// part (a signing key and Argon2's dummy hash).
fn shared() -> &'static (tokio::runtime::Runtime, Arc<oauth_http::Frontend>) {
    static SHARED: OnceLock<(tokio::runtime::Runtime, Arc<oauth_http::Frontend>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (frontend, _, _) = rt.block_on(frontend(&Options::default(), "http://127.0.0.1:8080"));
        (rt, frontend)
    })
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        "Basic [A-Za-z0-9+/=]{0,60}",
        "Bearer [A-Za-z0-9._~+/=-]{0,120}",
        Just("Basic ZGVtby1hcHA6".to_owned()),
        Just(format!("Basic {}", base64_encode("demo-app:%ZZ"))),
    ]
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        "[a-z_]{1,12}=[ -~]{0,30}(&[a-z_]{1,12}=[ -~]{0,30}){0,6}".prop_map(String::into_bytes),
        Just(b"grant_type=authorization_code&code=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback".to_vec()),
        Just(b"grant_type=refresh_token&refresh_token=abc".to_vec()),
        Just(b"grant_type=password&username=alice&password=x&client_id=demo-app".to_vec()),
        Just(br#"{"grant_type":"client_credentials","client_id":"demo-app","client_secret":[1]}"#.to_vec()),
        Just(b"session=00000000-0000-4000-8000-000000000000&csrf=x&decision=approve".to_vec()),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/x-www-form-urlencoded".to_owned())),
        Just(Some("application/json".to_owned())),
        Just(Some("application/x-www-form-urlencoded; charset=utf-8".to_owned())),
        "[ -~]{0,40}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn no_request_makes_the_server_answer_5xx(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("HEAD"), Just("DELETE"), Just("OPTIONS")],
        path in proptest::sample::select(PATHS),
        query in "[ -~]{0,120}",
        authorization in proptest::option::of(header_value()),
        cookie in proptest::option::of("[ -~]{0,80}"),
        forwarded in proptest::option::of("[ -~]{0,40}"),
        content_type in content_type(),
        body in body(),
    ) {
        let (rt, frontend) = shared();
        let status = rt.block_on(async {
            let query: String = query.chars().filter(|c| !c.is_whitespace() && *c != '#').collect();
            let uri = format!("{path}?{query}");
            let mut req = http::Request::builder().method(method).uri(uri.as_str());
            if let Some(a) = authorization.as_deref() { req = req.header("authorization", a); }
            if let Some(c) = cookie.as_deref() { req = req.header("cookie", c); }
            if let Some(f) = forwarded.as_deref() { req = req.header("x-forwarded-for", f); }
            if let Some(t) = content_type.as_deref() { req = req.header("content-type", t); }
            let Ok(req) = req.body(Full::new(Bytes::from(body))) else { return None };
            let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
            Some(frontend.handle(req, peer).await.status())
        });
        if let Some(status) = status {
            prop_assert!(!status.is_server_error(), "{method} {path}: {status}");
        }
    }
}
