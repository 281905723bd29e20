//! The operator's first hour, through the real binary: a client secret from
//! `gen-secret` that works however a client encodes it, `hash-secret` refusing
//! empty input, `check-config` answering on stdout and warning about a moved
//! port, `"${NAME}"` values from the environment, and key files as `openssl`
//! writes them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod support;

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::*;

/// `gen-secret`'s two lines: the secret and its hash.
fn gen_secret() -> (String, String) {
    let (code, out, err) = run(&["gen-secret"], "");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    (lines[0].to_owned(), lines[1].to_owned())
}

/// `Authorization: Basic` as curl (`-u id:secret`) and most HTTP libraries
/// build it: `id:secret` in base64, with no form encoding of either part.
fn curl_basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A confidential client for the client credentials grant.
fn service_client(id: &str, hash: &str) -> String {
    format!(
        "[[clients]]\nclient_id = \"{id}\"\nclient_secret_hash = \"{hash}\"\n\
         grant_types = [\"client_credentials\"]\nscopes = [\"read\"]\n"
    )
}

async fn client_credentials_status(base: &str, authorization: &str) -> u16 {
    http()
        .post(format!("{base}/token"))
        .header("authorization", authorization)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn gen_secret_prints_256_bits_of_base64url_and_the_hash_hash_secret_gives() {
    let (secret, hash) = gen_secret();
    assert_eq!(secret.len(), 43, "{secret}");
    // The characters that form decoding (RFC 6749 2.3.1) leaves as they are.
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{secret}");
    let (code, again, _) = run(&["hash-secret", "--sha256"], &secret);
    assert_eq!((code, again.trim()), (0, hash.as_str()));
    assert_ne!(gen_secret().0, secret);
}

#[tokio::test]
async fn a_generated_secret_works_through_basic_authentication_as_curl_encodes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, hash) = gen_secret();
    // The recipe this replaces: standard base64 with a `+`, which Basic
    // credentials form-decode to a space (RFC 6749 2.3.1), so curl's header
    // does not carry the secret the client was given.
    let old_recipe = "kq3+Zt0b/9XyR8cM4vLw2nHj5sPa6dEf1gUoIi7rVbY=";
    let (_, old_hash, _) = run(&["hash-secret", "--sha256"], old_recipe);
    let extra = service_client("svc", &hash) + &service_client("old", old_hash.trim());
    let (config, base) = quickstart(dir.path(), &extra);
    let server = Server::start(&config, dir.path());

    assert_eq!(client_credentials_status(&base, &curl_basic("svc", &secret)).await, 200);
    assert_eq!(client_credentials_status(&base, &curl_basic("old", old_recipe)).await, 401);
    let encoded: String = form_urlencoded(old_recipe);
    assert_eq!(client_credentials_status(&base, &curl_basic("old", &encoded)).await, 200, "encoded, it works");
    assert_eq!(server.stop(), 0);
}

#[test]
fn hash_secret_refuses_empty_input_with_exit_2() {
    for input in ["", "\n", "\r\n"] {
        for args in [&["hash-secret"][..], &["hash-secret", "--sha256"]] {
            let (code, out, err) = run(args, input);
            assert_eq!(code, 2, "{args:?} {input:?}: {out} {err}");
            assert!(out.is_empty() && err.contains("empty"), "{err}");
        }
    }
}

#[test]
fn check_config_prints_ok_on_stdout() {
    let config = format!("{ROOT}/examples/quickstart.toml");
    let (code, out, err) = run(&["check-config", "--config", &config], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{config}: ok"));
    assert!(!err.contains("ok"), "{err}");
}

#[test]
fn check_config_warns_when_only_listen_moved() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{ROOT}/examples/quickstart.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:9090\"");
    let path = dir.path().join("moved.toml");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = run(&["check-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 0, "a warning, not an error: {err}");
    assert!(out.ends_with(": ok\n"), "{out}");
    assert!(err.contains("warning: issuer: is on port 8080 but listen is on port 9090"), "{err}");
}

#[test]
fn the_readme_moves_the_port_by_moving_issuer_and_listen_together() {
    let command = "sed 's/127.0.0.1:8080/127.0.0.1:9090/' examples/quickstart.toml > my.toml";
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    assert!(readme.lines().any(|l| l == command), "the README lost {command:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(format!("{ROOT}/examples/quickstart.toml"), dir.path().join("examples/quickstart.toml")).unwrap();
    let out = Command::new("sh").arg("-c").arg(command).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let moved = std::fs::read_to_string(dir.path().join("my.toml")).unwrap();
    assert!(moved.contains("issuer = \"http://127.0.0.1:9090\"") && moved.contains("listen = \"127.0.0.1:9090\""));
    let (code, out, err) = run(&["check-config", "--config", dir.path().join("my.toml").to_str().unwrap()], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with(": ok\n") && !err.contains("listen is on port"), "{out}{err}");
}

#[tokio::test]
async fn config_values_come_from_the_environment_and_an_unset_one_names_key_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, hash) = gen_secret();
    let (config, base) = quickstart(dir.path(), &service_client("svc", "${SVC_SECRET_HASH}"));
    let cfg = config.to_str().unwrap();

    let (code, _, err) = run(&["check-config", "--config", cfg], "");
    assert_eq!(code, 2);
    // svc comes after the quick start's own clients.
    let index = std::fs::read_to_string(&config).unwrap().matches("[[clients]]").count() - 1;
    let expected =
        format!("error: clients[{index}].client_secret_hash: the environment variable SVC_SECRET_HASH is not set");
    assert!(err.contains(&expected), "{err}");
    let (code, _, err) = run(&["--config", cfg], "");
    assert_eq!(code, 2, "the server refuses to start too: {err}");

    let env = [("SVC_SECRET_HASH", hash.as_str())];
    let (code, out, err) = support::run_env(&["check-config", "--config", cfg], "", &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with(": ok\n"), "{out}");
    let server = Server::start_env(&config, dir.path(), &env);
    assert_eq!(client_credentials_status(&base, &curl_basic("svc", &secret)).await, 200);
    assert_eq!(server.stop(), 0);
}

/// The key-file commands of docs/operations.md ("Signing keys"), each with the
/// `signing_alg` and file it is for.
const KEY_COMMANDS: &[(&str, &str, &str)] = &[
    ("ES256", "signing.pem", "openssl ecparam -name prime256v1 -genkey -noout -out signing.pem"),
    ("ES256", "signing.pem", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signing.pem"),
    ("EdDSA", "signing.pem", "openssl genpkey -algorithm ed25519 -out signing.pem"),
    ("RS256", "signing.pem", "openssl genrsa -traditional -out signing.pem 2048"),
    ("RS256", "signing.pem", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out signing.pem"),
    ("HS256", "signing.key", "head -c 32 /dev/urandom > signing.key"),
];

#[tokio::test]
async fn every_documented_key_file_command_makes_a_key_that_signs_tokens_that_verify() {
    let doc = std::fs::read_to_string(format!("{ROOT}/docs/operations.md")).unwrap();
    for (alg, file, command) in KEY_COMMANDS {
        assert!(doc.lines().any(|l| l.starts_with(command)), "docs/operations.md lost {command:?}");
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("sh").arg("-c").arg(command).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
        let (config, base) =
            quickstart(dir.path(), &format!("[tokens]\nsigning_alg = \"{alg}\"\nkey_file = \"{file}\"\n"));
        let (code, _, err) = run(&["check-config", "--config", config.to_str().unwrap()], "");
        assert_eq!(code, 0, "{command}: {err}");
        let server = Server::start(&config, dir.path());
        let token: serde_json::Value = http()
            .post(format!("{base}/token"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let introspected: serde_json::Value = http()
            .post(format!("{base}/introspect"))
            .basic_auth("demo-app", Some(SECRET))
            .form(&[("token", token["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(introspected["active"], true, "{command}");
        if *alg != "HS256" {
            let jwks: serde_json::Value =
                http().get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
            // The file's key, and the RS256 ID-token key beside it (the
            // file's key itself when it is RS256).
            let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
            let expected = if *alg == "RS256" { vec!["RS256"] } else { vec![*alg, "RS256"] };
            assert_eq!(algs.len(), expected.len(), "{jwks}");
            assert!(expected.iter().all(|a| algs.contains(a)), "{jwks}");
        }
        assert_eq!(server.stop(), 0);
    }
}
