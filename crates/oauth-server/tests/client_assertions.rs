//! `private_key_jwt` (RFC 7523, SPEC-2) at every endpoint that authenticates
//! clients besides `/token` (which `admin.rs` and the interop scripts cover):
//! `/device_authorization`, `/revoke`, `/introspect` and `/par`, on the real
//! binary, with assertions signed by jsonwebtoken over a key made by `openssl
//! genpkey`, as a client library signs them. A good assertion is accepted; a
//! replayed one (same `jti`) and one for another audience are `401
//! invalid_client`. And the far edge of time: an assertion whose `exp`, or a
//! DPoP proof whose `iat`, is the last second of year 9999 is refused with
//! the RFC's error, never a panic or a 500.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use jsonwebtoken::Algorithm::ES256;
use jsonwebtoken::{EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};
use support::*;

/// The client's key (made by `openssl genpkey`).
const CLIENT_KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-a.pem");
/// The key of the DPoP proofs.
const DPOP_KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-b.pem");
const CLIENT: &str = "signer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The last second of year 9999 (RFC 3339's last date), as a JWT time.
const YEAR_9999: i64 = 253_402_300_799;

fn key(pem: &[u8]) -> EncodingKey {
    EncodingKey::from_ec_pem(pem).unwrap()
}

/// The client's public key as a JWK Set, as its configuration holds it.
fn client_jwks() -> String {
    let mut jwk = Jwk::from_encoding_key(&key(CLIENT_KEY), ES256).unwrap();
    jwk.common.key_id = Some("signer-1".into());
    json!({"keys": [jwk]}).to_string()
}

/// The client's clock: the same wall clock as the server's.
fn now() -> i64 {
    oauth_core::Clock::now(&oauth_runtime::SystemClock).unix_timestamp()
}

fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{what}-{}-{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

/// An assertion (RFC 7523 3) of [`CLIENT`] with these claims over the usual
/// ones, signed with [`CLIENT_KEY`].
fn assertion_with(aud: &str, changes: Value) -> String {
    let mut header = Header::new(ES256);
    header.kid = Some("signer-1".into());
    let now = now();
    let mut claims =
        json!({"iss": CLIENT, "sub": CLIENT, "aud": aud, "exp": now + 60, "iat": now, "jti": unique("jti")});
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    jsonwebtoken::encode(&header, &claims, &key(CLIENT_KEY)).unwrap()
}

/// A server with a `private_key_jwt` client that may use every grant.
struct Signer {
    server: Server,
    base: String,
    _dir: tempfile::TempDir,
}

fn start() -> Signer {
    let dir = tempfile::tempdir().unwrap();
    let client = format!(
        "[[clients]]\nclient_id = \"{CLIENT}\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks = '{}'\n\
         redirect_uris = [\"{REDIRECT}\"]\n\
         grant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\", \"{}\"]\n\
         scopes = [\"read\"]\n",
        client_jwks(),
        "urn:ietf:params:oauth:grant-type:device_code",
    );
    // Each test here makes a dozen or more failed client authentications
    // on purpose, past the throttle's default 10 per client and address
    // (after which the answer is 429, as issue 17 wants).
    let throttle = "[throttle]\nmax_failures_per_account = 100\n";
    let (path, base) = quickstart(dir.path(), &format!("{client}\n{throttle}"));
    let server = Server::start(&path, dir.path());
    Signer { server, base, _dir: dir }
}

/// A form's fields.
type Form = Vec<(&'static str, &'static str)>;

/// Each endpoint that authenticates clients (besides `/token`), the form it
/// takes (client authentication apart) and the status of a success.
fn endpoints() -> Vec<(&'static str, Form, u16)> {
    vec![
        ("/device_authorization", vec![("scope", "read")], 200),
        ("/revoke", vec![("token", "a-token-this-server-never-issued")], 200),
        ("/introspect", vec![("token", "a-token-this-server-never-issued")], 200),
        (
            "/par",
            vec![
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "read"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
            201,
        ),
    ]
}

impl Signer {
    /// `path` with `form` and `assertion`; the status and the JSON body.
    async fn post(&self, path: &str, form: &[(&str, &str)], assertion: &str) -> (u16, Value) {
        let mut all = form.to_vec();
        all.extend([("client_id", CLIENT), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)]);
        let r = http().post(format!("{}{path}", self.base)).form(&all).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn assert_invalid_client(status: u16, body: &Value, what: &str) {
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{what}: {body}");
}

/// A good assertion (`aud` the issuer) authenticates the client at
/// `/device_authorization`, `/revoke`, `/introspect` and `/par`; at `/par`
/// its own URL is an audience too (RFC 9126 2), as the token endpoint's is.
#[tokio::test]
async fn a_good_client_assertion_authenticates_at_device_authorization_revoke_introspect_and_par() {
    let s = start();
    for (path, form, ok) in endpoints() {
        let (status, body) = s.post(path, &form, &assertion_with(&s.base, json!({}))).await;
        assert_eq!(status, ok, "{path}: {body}");
        match path {
            "/device_authorization" => assert!(body["device_code"].is_string(), "{body}"),
            "/introspect" => assert_eq!(body["active"], false, "{body}"),
            "/par" => assert!(body["request_uri"].as_str().unwrap().starts_with("urn:ietf:params:oauth:request_uri:")),
            _ => {}
        }
    }
    for aud in [format!("{}/par", s.base), format!("{}/token", s.base)] {
        let (status, body) = s.post("/par", &endpoints()[3].1, &assertion_with(&aud, json!({}))).await;
        assert_eq!(status, 201, "aud {aud}: {body}");
    }
    assert_eq!(s.server.stop(), 0);
}

/// An assertion is good once (RFC 7523 3, SPEC-2: its `jti` is kept until
/// its `exp`): sent again to the same endpoint, or to another, it is `401
/// invalid_client`.
#[tokio::test]
async fn a_replayed_client_assertion_is_401_invalid_client_at_device_authorization_revoke_introspect_and_par() {
    let s = start();
    let all = endpoints();
    for (i, (path, form, ok)) in all.iter().enumerate() {
        let assertion = assertion_with(&s.base, json!({}));
        let (status, body) = s.post(path, form, &assertion).await;
        assert_eq!(status, *ok, "{path}, first use: {body}");
        let (status, body) = s.post(path, form, &assertion).await;
        assert_invalid_client(status, &body, &format!("{path}, replayed"));
        let (other, other_form, _) = &all[(i + 1) % all.len()];
        let (status, body) = s.post(other, other_form, &assertion).await;
        assert_invalid_client(status, &body, &format!("{path}'s assertion replayed at {other}"));
    }
    assert_eq!(s.server.stop(), 0);
}

/// An assertion whose `aud` is not this server (another issuer, another
/// endpoint of ours such as `/revoke`, or the issuer with a trailing slash)
/// is `401 invalid_client`, whatever the endpoint.
#[tokio::test]
async fn a_client_assertion_for_another_audience_is_401_invalid_client_at_device_authorization_revoke_introspect_and_par()
 {
    let s = start();
    for (path, form, _) in endpoints() {
        for aud in ["https://other.example".to_owned(), format!("{}/revoke", s.base), format!("{}/", s.base)] {
            let (status, body) = s.post(path, &form, &assertion_with(&aud, json!({}))).await;
            assert_invalid_client(status, &body, &format!("{path}, aud {aud}"));
        }
    }
    assert_eq!(s.server.stop(), 0);
}

/// An assertion that expires in year 9999 (a JWT time the JWT layer parses,
/// past what the server's time type adds a leeway to) is `401
/// invalid_client` at `/token` and at every other endpoint, over HTTP and
/// signed for real; so is one issued then, and times past any integer type
/// (`i64::MAX`, `u64::MAX`, `1e300`) or before time began. The server
/// answers the next request as usual.
#[tokio::test]
async fn a_client_assertion_expiring_in_year_9999_is_401_invalid_client_not_a_500() {
    let s = start();
    let token_form = [("grant_type", "client_credentials"), ("scope", "read")];
    let mut cases: Vec<(&str, Vec<(&str, &str)>)> = vec![("/token", token_form.to_vec())];
    cases.extend(endpoints().into_iter().map(|(p, f, _)| (p, f)));
    for (path, form) in &cases {
        for changes in [
            json!({"exp": YEAR_9999}),
            json!({"iat": YEAR_9999, "exp": YEAR_9999}),
            // Past what any time type holds, and before time began.
            json!({"exp": i64::MAX}),
            json!({"exp": u64::MAX}),
            json!({"exp": 1e300}),
            json!({"iat": i64::MIN}),
            json!({"nbf": i64::MAX}),
        ] {
            let (status, body) = s.post(path, form, &assertion_with(&s.base, changes.clone())).await;
            assert_invalid_client(status, &body, &format!("{path}, {changes}"));
        }
    }
    let (status, body) = s.post("/token", &token_form, &assertion_with(&s.base, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.server.stop(), 0);
}

/// A DPoP proof (RFC 9449 4.3) issued in year 9999 (or at `i64::MAX`,
/// `u64::MAX`, `i64::MIN`, `1e300`) is `400 invalid_dpop_proof` at `/token`,
/// never a panic or a 500; the server then answers a good proof as usual.
#[tokio::test]
async fn a_dpop_proof_issued_in_year_9999_is_400_invalid_dpop_proof_at_token() {
    let s = start();
    let url = format!("{}/token", s.base);
    let proof = |iat: Value| {
        let mut header = Header::new(ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(Jwk::from_encoding_key(&key(DPOP_KEY), ES256).unwrap());
        let claims = json!({"jti": unique("proof"), "htm": "POST", "htu": url, "iat": iat});
        jsonwebtoken::encode(&header, &claims, &key(DPOP_KEY)).unwrap()
    };
    let send = |dpop: String| {
        let assertion = assertion_with(&s.base, json!({}));
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("scope", "read".to_owned()),
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("client_assertion", assertion),
        ];
        http().post(&url).header("dpop", dpop).form(&form).send()
    };
    for iat in [json!(YEAR_9999), json!(i64::MAX), json!(u64::MAX), json!(i64::MIN), json!(1e300)] {
        let r = send(proof(iat.clone())).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "iat {iat}: {body}");
    }
    let r = send(proof(json!(now()))).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(s.server.stop(), 0);
}
