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
    "/.well-known/openid-configuration",
    "/jwks.json",
    "/authorize",
    "/authorize/login",
    "/authorize/consent",
    "/token",
    "/revoke",
    "/introspect",
    "/userinfo",
    "/logout",
    "/par",
    "/device_authorization",
    "/device",
    "/device/done",
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
        Just(
            b"csrf=x&client_id=oidc-app&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fbye&state=s".to_vec()
        ),
        Just(b"id_token_hint=eyJhbGciOiJSUzI1NiJ9.e30.x&client_id=oidc-app".to_vec()),
        Just(b"access_token=abc".to_vec()),
    ]
}

/// Random queries, and queries shaped like OpenID Connect requests (an
/// authorization request with `prompt`, `nonce`, `max_age`, `login_hint`,
/// `ui_locales`; a logout request) with random values.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,120}",
        (
            "(oidc-app|first-party|nobody|)",
            "[a-z ]{0,14}",
            "[ -~]{0,24}",
            "[-0-9a-z]{0,6}",
            "[ -~]{0,16}",
            "[a-zA-Z -]{0,10}"
        )
            .prop_map(|(client, prompt, nonce, max_age, hint, locales)| {
                let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                format!(
                    "response_type=code&client_id={client}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9000%2Fcallback&scope=openid%20profile&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&prompt={}&nonce={}&max_age={}&login_hint={}&ui_locales={}",
                    enc(&prompt),
                    enc(&nonce),
                    enc(&max_age),
                    enc(&hint),
                    enc(&locales)
                )
            }),
        ("[A-Za-z0-9._-]{0,120}", "(oidc-app|nobody|)", "[ -~]{0,30}", "[ -~]{0,20}").prop_map(
            |(hint, client, uri, state)| {
                let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                format!(
                    "id_token_hint={hint}&client_id={client}&post_logout_redirect_uri={}&state={}",
                    enc(&uri),
                    enc(&state)
                )
            }
        ),
    ]
}

/// Random cookies, and the server's own cookie names with values of the
/// right shape.
fn cookie() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        "oauth_session=[A-Za-z0-9_-]{43}; oauth_browser=[A-Za-z0-9_-]{43}",
        "oauth_session=[ -~]{0,60}",
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
        query in query(),
        authorization in proptest::option::of(header_value()),
        cookie in proptest::option::of(cookie()),
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

/// A running server on 127.0.0.1 with its runtime, shared by every case of the
/// TCP property.
fn tcp_server() -> &'static (tokio::runtime::Runtime, TestServer) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, TestServer)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server = rt.block_on(start(Options::default()));
        (rt, server)
    })
}

/// Header values as raw bytes: anything but CR and LF, invalid UTF-8 included.
fn raw_header() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>().prop_filter("no line breaks", |b| *b != b'\r' && *b != b'\n'), 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_bytes_on_the_wire_make_a_running_server_answer_5xx(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("G\x01T"), Just("")],
        path in proptest::sample::select(PATHS),
        query in proptest::collection::vec(any::<u8>().prop_filter("no line breaks or spaces", |b| !b" \r\n".contains(b)), 0..80),
        headers in proptest::collection::vec(("[A-Za-z-]{1,20}", raw_header()), 0..6),
        body in body(),
    ) {
        let (rt, server) = tcp_server();
        let mut raw = format!("{method} {path}?").into_bytes();
        raw.extend_from_slice(&query);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in &headers {
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        raw.extend_from_slice(&body);
        let answer = rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            let _ = stream.write_all(&raw).await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut out)).await;
            out
        });
        // No answer at all (a connection closed on garbage) is fine; a 5xx is not.
        let status = answer.get(9).copied();
        prop_assert_ne!(status, Some(b'5'), "{}", String::from_utf8_lossy(&answer[..answer.len().min(120)]));
    }
}
