//! Independent client libraries drive the real `oauth-server` binary: each test
//! starts the server on a free port with a configuration of its own and runs
//! one script of `interop/` under Node.js, which uses panva's `oauth4webapi` or
//! `openid-client` for the client side, or under Python with Authlib's client
//! (a second implementation of `private_key_jwt`). Those libraries check every
//! RFC rule they know strictly, so a flow that passes here works with clients
//! we did not write.
//!
//! `cargo xtask test` installs the scripts' npm packages (`npm ci` in
//! `interop/`) and Python packages (`interop/.venv`, from
//! `interop/requirements.txt`) before the tests run.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_oauth-server");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const CONFIDENTIAL_SECRET: &str = "demo-secret-0123456789-abcdefghijklmnop";

/// The `interop/` folder, with its packages installed.
fn interop() -> PathBuf {
    let dir = Path::new(ROOT).join("interop");
    assert!(
        dir.join("node_modules").is_dir(),
        "interop/node_modules is missing: run `npm ci --prefix interop` (cargo xtask test does it)"
    );
    dir
}

/// A running server, killed when dropped so that a failing test leaves none.
struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The quick-start example on a free port, plus `extra` TOML, in a fresh
    /// folder (so its sled store is fresh too).
    fn quickstart(extra: &str) -> Server {
        Server::with_config(|text| format!("{text}\n{extra}"))
    }

    /// The quick-start example on a free port, changed by `edit`, in a fresh
    /// folder.
    fn with_config(edit: impl FnOnce(&str) -> String) -> Server {
        let port = support::free_port();
        let text = std::fs::read_to_string(Path::new(ROOT).join("examples/quickstart.toml"))
            .unwrap()
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.toml");
        std::fs::write(&config, edit(&text)).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server did not start");
            if line.contains("listening on") {
                break;
            }
        }
        Server { child, base: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// Runs `interop/{script}` against this server; fails the test with the
    /// script's output when it fails.
    fn run(&self, script: &str, env: &[(&str, &str)]) {
        let out = Command::new("node")
            .arg(script)
            .current_dir(interop())
            .env("ISSUER", &self.base)
            .env("USERNAME", "alice")
            .env("PASSWORD", "alice-password")
            .env("PUBLIC_CLIENT", "demo-native")
            .env("CONFIDENTIAL_CLIENT", "demo-app")
            .env("CONFIDENTIAL_SECRET", CONFIDENTIAL_SECRET)
            .env("REDIRECT_URI", "http://127.0.0.1:9000/callback")
            .env("AUDIENCE", &self.base)
            .envs(env.iter().copied())
            .output()
            .expect("node is not installed (Debian package `nodejs`)");
        assert!(
            out.status.success(),
            "{script} failed:\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn oauth4webapi_completes_the_oauth_flows() {
    Server::quickstart("").run("oauth2-code-flow.mjs", &[]);
}

#[test]
fn an_agent_registers_itself_and_gets_a_token_for_one_resource_with_oauth4webapi() {
    let resource = "https://mcp.example.com/api";
    Server::quickstart(&format!(
        "[[resources]]\nuri = \"{resource}\"\nscopes = [\"read\"]\n\n\
         [registration]\nenabled = true\nscopes = [\"read\"]\n"
    ))
    .run("agent.mjs", &[("RESOURCE", resource)]);
}

/// The private key of `keys-app`, a test key made for this test with jose
/// (`generateKeyPair('ES256')`); its public half is in [`KEYS_CLIENT`].
const KEYS_CLIENT_JWK: &str = r#"{"kty":"EC","x":"2zZGSanZAXoZIjoaMsdzZGat7P7foN_l_C1EmBC7fKs","y":"2EwpmVXIIGPjXSPBG4QY9Nijq91VRT_zK8sfugUVtm0","crv":"P-256","d":"TBonjtCkru3l_yaMp_fGl-Hll5TvFm5YXYx12QWc6dM","kid":"interop-1","alg":"ES256"}"#;

/// A FAPI-style client: `private_key_jwt`, DPoP-bound tokens, PAR required.
const KEYS_CLIENT: &str = r#"
[[clients]]
client_id = "keys-app"
name = "Keys App"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{"keys":[{"kty":"EC","x":"2zZGSanZAXoZIjoaMsdzZGat7P7foN_l_C1EmBC7fKs","y":"2EwpmVXIIGPjXSPBG4QY9Nijq91VRT_zK8sfugUVtm0","crv":"P-256","kid":"interop-1","alg":"ES256","use":"sig"}]}'
redirect_uris = ["http://127.0.0.1:9000/callback"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["profile", "read"]
dpop_bound_access_tokens = true
require_pushed_authorization_requests = true
"#;

#[test]
fn oauth4webapi_completes_dpop_par_and_private_key_jwt() {
    let env = [("KEYS_CLIENT", "keys-app"), ("KEYS_CLIENT_JWK", KEYS_CLIENT_JWK)];
    Server::quickstart(KEYS_CLIENT).run("sender-constrained.mjs", &env);
}

/// oauth4webapi registers a `private_key_jwt` client with the public half of a
/// key it generates (RFC 7591, with the initial access token) on a FAPI 2.0
/// server, and uses it for PAR, the code with PKCE and DPoP, `/userinfo`, a
/// refresh and a revocation, each authenticated by assertion. The server is
/// the quick start without its clients (FAPI 2.0 refuses secret and public
/// ones): the demo account and a `[profile] fapi2` with registration.
#[test]
fn oauth4webapi_registers_a_private_key_jwt_client_and_completes_par_pkce_dpop_on_a_fapi2_server() {
    let (code, out, err) = support::run(&["gen-secret"], "");
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let (initial, hash) = (lines.next().unwrap().to_owned(), lines.next().unwrap().to_owned());
    let server = Server::with_config(|text| {
        let (head, rest) = text.split_once("[[clients]]").expect("the quick start has clients");
        let (_, accounts) = rest.split_once("[[accounts]]").expect("the quick start has accounts");
        format!(
            "{head}[[accounts]]{accounts}\n[profile]\nfapi2 = true\n\n\
             [registration]\nenabled = true\nscopes = [\"openid\", \"read\"]\ninitial_access_token_hash = \"{hash}\"\n"
        )
    });
    server.run("fapi2-registration.mjs", &[("INITIAL_ACCESS_TOKEN", initial.as_str())]);
}

/// A device client (RFC 8628), public, polling every 3 seconds.
const DEVICE_CLIENT: &str = r#"
[[clients]]
client_id = "tv"
name = "Living Room TV"
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
scopes = ["openid", "read"]

[device]
interval = 3
"#;

#[test]
fn oauth4webapi_completes_the_device_flow_with_the_user_steps_over_http() {
    Server::quickstart(DEVICE_CLIENT).run("device-flow.mjs", &[("DEVICE_CLIENT", "tv")]);
}

/// A `private_key_jwt` client without DPoP, for Authlib, which has no DPoP.
const KEYS_PLAIN_CLIENT: &str = r#"
[[clients]]
client_id = "keys-plain"
token_endpoint_auth_method = "private_key_jwt"
jwks = '{"keys":[{"kty":"EC","x":"2zZGSanZAXoZIjoaMsdzZGat7P7foN_l_C1EmBC7fKs","y":"2EwpmVXIIGPjXSPBG4QY9Nijq91VRT_zK8sfugUVtm0","crv":"P-256","kid":"interop-1","alg":"ES256","use":"sig"}]}'
grant_types = ["client_credentials"]
scopes = ["read"]
"#;

#[test]
fn authlib_authenticates_with_private_key_jwt() {
    let python = interop().join(".venv/bin/python");
    assert!(
        python.exists(),
        "interop/.venv is missing: run `cargo xtask test`, which installs interop/requirements.txt"
    );
    let server = Server::quickstart(KEYS_PLAIN_CLIENT);
    let out = Command::new(python)
        .arg("authlib-private-key-jwt.py")
        .current_dir(interop())
        .env("ISSUER", &server.base)
        .env("KEYS_PLAIN_CLIENT", "keys-plain")
        .env("KEYS_CLIENT_JWK", KEYS_CLIENT_JWK)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "authlib-private-key-jwt.py failed:\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn oauth4webapi_learns_and_uses_the_dpop_nonce() {
    let env = [("KEYS_CLIENT", "keys-app"), ("KEYS_CLIENT_JWK", KEYS_CLIENT_JWK)];
    Server::quickstart(&format!("{KEYS_CLIENT}\n[dpop]\nrequire_nonce = true\n")).run("sender-constrained.mjs", &env);
}

/// Two OpenID Connect relying parties and an account with standard claims
/// (and one attribute that is none), added to the quick start.
const OIDC_CONFIG: &str = r#"
[[clients]]
client_id = "rp-one"
name = "Relying Party One"
redirect_uris = ["http://127.0.0.1:9000/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:9000/signed-out"]
scopes = ["openid", "profile", "email"]

[[clients]]
client_id = "rp-two"
name = "Relying Party Two"
redirect_uris = ["http://127.0.0.1:9000/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:9000/signed-out"]
scopes = ["openid", "profile", "email"]

[[accounts]]
username = "carol"
# alice-password, as in the quick start.
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$ByN2IjtdguRcgBhZ9eyYDA$etKkPYIHXZ6XQFL5hKiZe0n4AZur0G8odmQqgHo2Zv8"
attributes = { name = "Carol", email = "carol@example.org", email_verified = "true", bsn = "999999990" }
"#;

#[test]
fn openid_client_validates_id_tokens_and_single_sign_on_and_logout() {
    Server::quickstart(OIDC_CONFIG).run(
        "oidc-sso-logout.mjs",
        &[
            ("USERNAME", "carol"),
            ("RP_ONE", "rp-one"),
            ("RP_TWO", "rp-two"),
            ("LOGOUT_URI", "http://127.0.0.1:9000/signed-out"),
        ],
    );
}
