//! The FAPI 2.0 profile switch, `[profile] fapi2`, on the real binary:
//! `check-config` refuses (exit 2) what the profile cannot turn on, a
//! server that runs it says so in its metadata and requires PAR, and the
//! clients made while it runs (RFC 7591 registration, the admin API, RFC 7592
//! updates) are held to the rules of the file's clients.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use jsonwebtoken::Algorithm::ES256;
use serde_json::{Value, json};
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

/// The client key of the run-time clients here (made by `openssl genpkey`).
const CLIENT_KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-a.pem");
/// The key the DPoP proofs here are signed with (another one).
const DPOP_KEY: &[u8] = include_bytes!("../../oauth-jwt/tests/keys/es256-b.pem");

fn encoding_key(pem: &[u8]) -> jsonwebtoken::EncodingKey {
    jsonwebtoken::EncodingKey::from_ec_pem(pem).unwrap()
}

/// The public JWK of [`CLIENT_KEY`], as a client registers it.
fn client_jwk() -> Value {
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(CLIENT_KEY), ES256).unwrap();
    jwk.common.key_id = Some("client-key-1".into());
    serde_json::to_value(jwk).unwrap()
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

/// A `private_key_jwt` assertion (RFC 7523 3) of client `id` for `issuer`,
/// signed with [`CLIENT_KEY`] by jsonwebtoken, as a client library would.
fn client_assertion(id: &str, issuer: &str) -> String {
    let mut header = jsonwebtoken::Header::new(ES256);
    header.kid = Some("client-key-1".into());
    let now = now();
    let claims = json!({"iss": id, "sub": id, "aud": issuer, "exp": now + 60, "iat": now, "jti": unique("jti")});
    jsonwebtoken::encode(&header, &claims, &encoding_key(CLIENT_KEY)).unwrap()
}

/// A DPoP proof (RFC 9449 4.2) for `POST url`, signed with [`DPOP_KEY`].
fn dpop_proof(url: &str) -> String {
    let mut header = jsonwebtoken::Header::new(ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(DPOP_KEY), ES256).unwrap());
    let claims = json!({"jti": unique("proof"), "htm": "POST", "htu": url, "iat": now()});
    jsonwebtoken::encode(&header, &claims, &encoding_key(DPOP_KEY)).unwrap()
}

fn dpop_jkt() -> String {
    jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(DPOP_KEY), ES256)
        .unwrap()
        .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap()
}

/// A FAPI 2.0 server with the admin API and registration by initial access
/// token (open registration would create public clients only, which
/// `check-config` refuses under the profile).
struct Fapi2 {
    server: Server,
    base: String,
    admin: String,
    admin_token: String,
    initial_token: String,
    _dir: tempfile::TempDir,
}

fn token_and_hash() -> (String, String) {
    let (code, out, err) = run(&["gen-secret"], "");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned())
}

fn start_fapi2() -> Fapi2 {
    let (admin_token, admin_hash) = token_and_hash();
    let (initial_token, initial_hash) = token_and_hash();
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let config = format!(
        "{}\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{admin_hash}\"\n\
         [registration]\nenabled = true\nscopes = [\"read\"]\ninitial_access_token_hash = \"{initial_hash}\"\n",
        fapi2_config(port)
    );
    std::fs::write(&path, config).unwrap();
    let server = Server::start(&path, dir.path());
    Fapi2 {
        server,
        base: format!("http://127.0.0.1:{port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
        admin_token,
        initial_token,
        _dir: dir,
    }
}

/// The metadata of a `client_credentials` client that authenticates with
/// `private_key_jwt` by the test's key: what FAPI 2.0 accepts.
fn signer_meta() -> Value {
    json!({
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_jwk()]},
    })
}

impl Fapi2 {
    /// A server the test started itself on its own directory, with no admin
    /// listener: reached at `base`, registering with `initial_token`.
    fn without_admin(server: Server, base: &str, initial_token: String) -> Fapi2 {
        Fapi2 {
            server,
            base: base.to_owned(),
            admin: String::new(),
            admin_token: String::new(),
            initial_token,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn answer(r: reqwest::RequestBuilder) -> (u16, Value) {
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn register(&self, meta: &Value) -> (u16, Value) {
        Self::answer(http().post(format!("{}/register", self.base)).bearer_auth(&self.initial_token).json(meta)).await
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.admin);
        let mut r = http().request(method, url).bearer_auth(&self.admin_token);
        if !body.is_null() {
            r = r.json(body);
        }
        Self::answer(r).await
    }

    /// `client_credentials` for `id` by assertion, with a DPoP proof if
    /// `dpop`.
    async fn assertion_token(&self, id: &str, dpop: bool) -> (u16, Value) {
        let url = format!("{}/token", self.base);
        let assertion = client_assertion(id, &self.base);
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];
        let mut r = http().post(&url).form(&form);
        if dpop {
            r = r.header("dpop", dpop_proof(&url));
        }
        Self::answer(r).await
    }

    /// The ids of every client the admin API lists.
    async fn client_ids(&self) -> Vec<String> {
        let url = format!("{}/admin/clients", self.admin);
        let (status, list) = Self::answer(http().get(url).bearer_auth(&self.admin_token)).await;
        assert_eq!(status, 200, "{list}");
        list["items"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap().to_owned()).collect()
    }
}

fn assert_invalid_client_metadata(status: u16, body: &Value, what: &str) {
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{what}: {body}");
    assert!(body["error_description"].as_str().is_some_and(|d| d.contains("FAPI 2.0")), "{what}: {body}");
}

/// FAPI 2.0 5.3.2.1 for clients made while the server runs, as for those of
/// the file: under `[profile] fapi2`, dynamic registration (RFC 7591) and the
/// admin API refuse a client that authenticates by secret, a public one, and
/// one that names no method (RFC 7591's default is `client_secret_basic`),
/// as `invalid_client_metadata`; nothing is stored.
#[tokio::test]
async fn fapi2_refuses_secret_and_public_clients_at_register_and_in_the_admin_api() {
    let s = start_fapi2();
    let confidential = json!({"grant_types": ["client_credentials"], "scope": "read"});
    let with = |method: Option<&str>, extra: Value| {
        let mut m = confidential.clone();
        if let Some(method) = method {
            m["token_endpoint_auth_method"] = json!(method);
        }
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let public = json!({"redirect_uris": [REDIRECT], "scope": "read", "token_endpoint_auth_method": "none"});
    let cases = [
        ("client_secret_basic", with(Some("client_secret_basic"), json!({}))),
        ("client_secret_post", with(Some("client_secret_post"), json!({}))),
        ("no method (RFC 7591: client_secret_basic)", with(None, json!({}))),
        ("no method, with jwks", with(None, json!({"jwks": {"keys": [client_jwk()]}}))),
        ("none", public),
    ];
    for (what, meta) in &cases {
        let (status, body) = s.register(meta).await;
        assert_invalid_client_metadata(status, &body, &format!("/register, {what}"));
        let (status, body) = s.admin(reqwest::Method::POST, "/admin/clients", meta).await;
        assert_invalid_client_metadata(status, &body, &format!("/admin/clients, {what}"));
    }
    // An explicit RS256 for ID tokens: FAPI 2.0 5.4 allows none.
    let rs256 = with(
        Some("private_key_jwt"),
        json!({"jwks": {"keys": [client_jwk()]}, "id_token_signed_response_alg": "RS256"}),
    );
    let (status, body) = s.register(&rs256).await;
    assert_invalid_client_metadata(status, &body, "/register, RS256 ID tokens");
    // private_key_jwt needs its keys, as everywhere.
    let (status, body) = s.register(&with(Some("private_key_jwt"), json!({}))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{body}");
    assert_eq!(s.client_ids().await, ["bank-app"], "no refused client was stored");
    assert_eq!(s.server.stop(), 0);
}

/// A `private_key_jwt` client with `jwks`, registered (RFC 7591) or created
/// by the operator on a FAPI 2.0 server, is accepted and gets a DPoP-bound
/// token (`token_type` `DPoP`, `cnf.jkt`) for an assertion signed by its
/// key; its ID tokens are said to be signed with the server's algorithm. The
/// profile's DPoP rule holds for it: without a proof, `invalid_dpop_proof`.
#[tokio::test]
async fn a_private_key_jwt_client_made_at_run_time_under_fapi2_gets_a_dpop_bound_token_with_an_assertion() {
    let s = start_fapi2();
    let meta = signer_meta();
    let (status, registered) = s.register(&meta).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    assert!(registered.get("client_secret").is_none(), "{registered}");
    assert_eq!(registered["id_token_signed_response_alg"], "ES256", "{registered}");
    let mut created_meta = meta.clone();
    created_meta["client_id"] = json!("operator-signer");
    let (status, created) = s.admin(reqwest::Method::POST, "/admin/clients", &created_meta).await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("client_secret").is_none(), "{created}");

    for id in [registered["client_id"].as_str().unwrap(), "operator-signer"] {
        let (status, body) = s.assertion_token(id, true).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let access = body["access_token"].as_str().unwrap();
        let payload = access.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        )
        .unwrap();
        assert_eq!(claims["cnf"]["jkt"], dpop_jkt(), "{claims}");
        assert_eq!(claims["client_id"], id);
        let (status, body) = s.assertion_token(id, false).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{id}: {body}");
    }
    assert_eq!(s.server.stop(), 0);
}

/// A client that FAPI 2.0 accepted cannot be changed into one it refuses:
/// replacing its metadata through the admin API (`PUT /admin/clients/{id}`;
/// there is no `PATCH` of clients) or through its own registration (RFC 7592
/// `PUT`) with a secret method, or none, is `invalid_client_metadata`, and
/// the client still authenticates by assertion.
#[tokio::test]
async fn a_fapi2_client_cannot_be_changed_into_a_secret_or_public_client() {
    let s = start_fapi2();
    let meta = signer_meta();
    let mut created_meta = meta.clone();
    created_meta["client_id"] = json!("operator-signer");
    let (status, created) = s.admin(reqwest::Method::POST, "/admin/clients", &created_meta).await;
    assert_eq!(status, 201, "{created}");
    let (status, registered) = s.register(&meta).await;
    assert_eq!(status, 201, "{registered}");
    let registered_id = registered["client_id"].as_str().unwrap().to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    let registration_token = registered["registration_access_token"].as_str().unwrap().to_owned();

    for method in ["client_secret_basic", "client_secret_post", "none"] {
        let mut changed = json!({"client_id": "operator-signer", "grant_types": ["client_credentials"],
                                 "scope": "read", "token_endpoint_auth_method": method});
        if method == "none" {
            changed = json!({"client_id": "operator-signer", "redirect_uris": [REDIRECT], "scope": "read",
                             "token_endpoint_auth_method": "none"});
        }
        let (status, body) = s.admin(reqwest::Method::PUT, "/admin/clients/operator-signer", &changed).await;
        assert_invalid_client_metadata(status, &body, &format!("PUT /admin/clients, {method}"));
        changed["client_id"] = json!(registered_id);
        let (status, body) = Fapi2::answer(http().put(&uri).bearer_auth(&registration_token).json(&changed)).await;
        assert_invalid_client_metadata(status, &body, &format!("RFC 7592 PUT, {method}"));
    }
    let (status, shown) = s.admin(reqwest::Method::GET, "/admin/clients/operator-signer", &Value::Null).await;
    assert_eq!((status, shown["token_endpoint_auth_method"].as_str()), (200, Some("private_key_jwt")), "{shown}");
    for id in ["operator-signer", registered_id.as_str()] {
        let (status, body) = s.assertion_token(id, true).await;
        assert_eq!(status, 200, "{id} still authenticates by assertion: {body}");
    }
    assert_eq!(s.server.stop(), 0);
}

/// The initial access token gates every confidential client (RFC 7591 3,
/// `Admin::update_registration`: "under the rules it registered by"). A
/// public client of open registration, made before the operator turned on
/// `[profile] fapi2` (which `check-config` lets run only with
/// `initial_access_token_hash`), must not turn itself into a confidential
/// `client_credentials` client through its own RFC 7592 update, holding only
/// its registration access token and never the initial access token: it was
/// registered by the open rules, which make public clients only.
#[tokio::test]
async fn an_openly_registered_client_cannot_make_itself_confidential_through_rfc7592_once_fapi2_needs_the_initial_token()
 {
    let (initial_token, initial_hash) = token_and_hash();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let on_sled = fapi2_config(port).replace("backend = \"mem\"", "backend = \"sled\"\npath = \"data\"");
    let base = format!("http://127.0.0.1:{port}");

    // Before the profile: open registration, as RFC 7591 allows.
    let open = format!(
        "{}\n[registration]\nenabled = true\nscopes = [\"read\"]\n",
        on_sled.replace("fapi2 = true", "fapi2 = false")
    );
    std::fs::write(&path, open).unwrap();
    let server = Server::start(&path, dir.path());
    let public = json!({"redirect_uris": [REDIRECT], "scope": "read"});
    let (status, registered) = Fapi2::answer(http().post(format!("{base}/register")).json(&public)).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    let registration_token = registered["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(server.stop(), 0);

    // The operator turns the profile on, which needs the initial access token.
    let gated = format!(
        "{on_sled}\n[registration]\nenabled = true\nscopes = [\"read\"]\ninitial_access_token_hash = \"{initial_hash}\"\n"
    );
    std::fs::write(&path, gated).unwrap();
    let (code, stdout, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let server = Server::start(&path, dir.path());
    let s = Fapi2::without_admin(server, &base, initial_token);

    // The public client, with its registration access token alone, asks to
    // become a confidential client_credentials client.
    let confidential = json!({
        "client_id": id,
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_jwk()]},
    });
    let (status, body) = Fapi2::answer(http().put(&uri).bearer_auth(&registration_token).json(&confidential)).await;
    let (token_status, token) = s.assertion_token(&id, true).await;
    assert_ne!(
        status, 200,
        "an openly registered client made itself confidential without the initial token: {body}; \
         /token then answered {token_status}: {token}"
    );
    assert_eq!(
        (token_status, token["error"].as_str()),
        (401, Some("invalid_client")),
        "it then gets client_credentials tokens: {token}"
    );
    assert_eq!(s.server.stop(), 0);
}

/// RFC 7592 2: "If the registration access token used to make this request
/// is not valid, the server MUST respond with an error as described in
/// [RFC 6750]", that is 401 `invalid_token` with a Bearer challenge (RFC 6750
/// 3.1); likewise a wrong initial access token at `/register` (RFC 7591 3).
/// The token decides before the body: a wrong token with a body that is not
/// JSON is still 401 with the challenge, not a `400 invalid_client_metadata`
/// without one, which tells a caller holding no token how its body fared.
#[tokio::test]
async fn a_wrong_registration_or_initial_access_token_is_401_with_a_bearer_challenge_whatever_the_body() {
    let s = start_fapi2();
    let meta = signer_meta();
    let (status, registered) = s.register(&meta).await;
    assert_eq!(status, 201, "{registered}");
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    let not_json = "this is not JSON";
    let put = http()
        .put(&uri)
        .bearer_auth("not-the-registration-access-token")
        .header("content-type", "application/json")
        .body(not_json)
        .send()
        .await
        .unwrap();
    let post = http()
        .post(format!("{}/register", s.base))
        .bearer_auth("not-the-initial-access-token")
        .header("content-type", "application/json")
        .body(not_json)
        .send()
        .await
        .unwrap();
    for (what, r) in [("RFC 7592 PUT", put), ("POST /register", post)] {
        let status = r.status().as_u16();
        let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{what}: {body}");
        assert!(
            challenge.as_deref().is_some_and(|c| c.starts_with("Bearer") && c.contains("error=\"invalid_token\"")),
            "{what}: {challenge:?}"
        );
    }
    assert_eq!(s.server.stop(), 0);
}

/// Under FAPI 2.0 every ID token is signed with the server's `signing_alg`
/// (5.4), and a client's metadata says so: `Admin::check_metadata` answers
/// it for a client made under the profile "rather than a default the server
/// would not follow". A `private_key_jwt` client registered before the
/// profile was turned on keeps authenticating, so its registration (RFC 7592
/// read) must say the algorithm its ID tokens now come in, not `RS256`,
/// which a client library that checks the alg it registered would then
/// refuse.
#[tokio::test]
async fn a_client_stored_before_fapi2_is_shown_with_the_id_token_alg_the_server_now_signs_with() {
    let (initial_token, initial_hash) = token_and_hash();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let on_sled = format!(
        "{}\n[registration]\nenabled = true\nscopes = [\"read\"]\ninitial_access_token_hash = \"{initial_hash}\"\n",
        fapi2_config(port).replace("backend = \"mem\"", "backend = \"sled\"\npath = \"data\"")
    );
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(&path, on_sled.replace("fapi2 = true", "fapi2 = false")).unwrap();
    let server = Server::start(&path, dir.path());
    let meta = signer_meta();
    let (status, registered) =
        Fapi2::answer(http().post(format!("{base}/register")).bearer_auth(&initial_token).json(&meta)).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["id_token_signed_response_alg"], "RS256", "{registered}");
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    let registration_token = registered["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(server.stop(), 0);

    std::fs::write(&path, &on_sled).unwrap();
    let server = Server::start(&path, dir.path());
    let s = Fapi2::without_admin(server, &base, initial_token);
    let (status, body) = s.assertion_token(&id, true).await;
    assert_eq!(status, 200, "the client still authenticates under the profile: {body}");
    let (status, shown) = Fapi2::answer(http().get(&uri).bearer_auth(&registration_token)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id_token_signed_response_alg"], "ES256", "ID tokens are signed with ES256 now: {shown}");
    assert_eq!(s.server.stop(), 0);
}

/// The same rule without the profile: a public client of open registration,
/// once the operator has set `initial_access_token_hash`, cannot give itself
/// a secret through its RFC 7592 update (`client_secret_basic` and
/// `client_credentials` are refused, and no `client_secret` is issued),
/// since it never held the initial access token that confidential clients
/// need. An update that omits `token_endpoint_auth_method` keeps the
/// client public rather than taking RFC 7591's default, a secret.
#[tokio::test]
async fn an_openly_registered_client_cannot_give_itself_a_secret_through_rfc7592_once_registration_needs_the_initial_token()
 {
    let (_, initial_hash) = token_and_hash();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let on_sled = fapi2_config(port)
        .replace("backend = \"mem\"", "backend = \"sled\"\npath = \"data\"")
        .replace("fapi2 = true", "fapi2 = false");
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(&path, format!("{on_sled}\n[registration]\nenabled = true\nscopes = [\"read\"]\n")).unwrap();
    let server = Server::start(&path, dir.path());
    let public = json!({"redirect_uris": [REDIRECT], "scope": "read"});
    let (status, registered) = Fapi2::answer(http().post(format!("{base}/register")).json(&public)).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    let mut registration_token = registered["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(server.stop(), 0);

    let gated = format!(
        "{on_sled}\n[registration]\nenabled = true\nscopes = [\"read\"]\ninitial_access_token_hash = \"{initial_hash}\"\n"
    );
    std::fs::write(&path, gated).unwrap();
    let server = Server::start(&path, dir.path());
    for method in ["client_secret_basic", "client_secret_post"] {
        let secret = json!({
            "client_id": id,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "client_credentials"],
            "scope": "read",
            "token_endpoint_auth_method": method,
        });
        let (status, body) = Fapi2::answer(http().put(&uri).bearer_auth(&registration_token).json(&secret)).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{method}: {body}");
        assert!(body.get("client_secret").is_none(), "{method}: {body}");
    }
    // Without a method, the update keeps the client public.
    let (status, updated) = Fapi2::answer(
        http().put(&uri).bearer_auth(&registration_token).json(&json!({"client_id": id, "redirect_uris": [REDIRECT]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["token_endpoint_auth_method"], "none", "{updated}");
    assert!(updated.get("client_secret").is_none(), "{updated}");
    registration_token = updated["registration_access_token"].as_str().unwrap().to_owned();
    let (status, shown) = Fapi2::answer(http().get(&uri).bearer_auth(&registration_token)).await;
    assert_eq!((status, shown["token_endpoint_auth_method"].as_str()), (200, Some("none")), "{shown}");
    assert_eq!(server.stop(), 0);
}

/// The admin API shows the same as the RFC 7592 read: a `private_key_jwt`
/// client the operator created before `[profile] fapi2` (with the RS256
/// default for ID tokens) is listed and shown, once the profile is on, with
/// the `id_token_signed_response_alg` the server now signs its ID tokens
/// with.
#[tokio::test]
async fn the_admin_api_shows_a_client_stored_before_fapi2_with_the_id_token_alg_the_server_now_signs_with() {
    let (admin_token, admin_hash) = token_and_hash();
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    let on_sled = format!(
        "{}\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_hash = \"{admin_hash}\"\n",
        fapi2_config(port).replace("backend = \"mem\"", "backend = \"sled\"\npath = \"data\"")
    );
    let admin = format!("http://127.0.0.1:{admin_port}");
    std::fs::write(&path, on_sled.replace("fapi2 = true", "fapi2 = false")).unwrap();
    let server = Server::start(&path, dir.path());
    let meta = json!({
        "client_id": "operator-signer",
        "grant_types": ["client_credentials"],
        "scope": "read",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_jwk()]},
    });
    let (status, created) =
        Fapi2::answer(http().post(format!("{admin}/admin/clients")).bearer_auth(&admin_token).json(&meta)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id_token_signed_response_alg"], "RS256", "{created}");
    assert_eq!(server.stop(), 0);

    std::fs::write(&path, &on_sled).unwrap();
    let server = Server::start(&path, dir.path());
    let (status, shown) =
        Fapi2::answer(http().get(format!("{admin}/admin/clients/operator-signer")).bearer_auth(&admin_token)).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id_token_signed_response_alg"], "ES256", "{shown}");
    let (status, list) = Fapi2::answer(http().get(format!("{admin}/admin/clients")).bearer_auth(&admin_token)).await;
    assert_eq!(status, 200, "{list}");
    for client in list["items"].as_array().unwrap() {
        assert_eq!(client["id_token_signed_response_alg"], "ES256", "{client}");
    }
    assert_eq!(server.stop(), 0);
}
