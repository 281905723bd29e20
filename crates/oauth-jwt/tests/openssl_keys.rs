//! Key files as `openssl` writes them load as signing keys: SEC 1 and PKCS#8
//! for ES256, PKCS#1 and PKCS#8 for RS256, PKCS#8 for EdDSA. The commands are
//! the ones `docs/operations.md` shows. A key loaded from either form of the
//! same key gets the same key id, so converting a file never changes the kid.
//!
//! Needs the `openssl` command (Debian package `openssl`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::io::Write;
use std::process::{Command, Stdio};

use oauth_jwt::{Error, SigningAlg, SigningKey};

/// Runs `openssl` with `args`, feeding `stdin`; its standard output.
fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command is missing (Debian package openssl)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The same private key as PKCS#8.
fn to_pkcs8(pem: &[u8]) -> Vec<u8> {
    openssl(&["pkcs8", "-topk8", "-nocrypt"], pem)
}

fn begins(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem).lines().find(|l| l.contains("PRIVATE KEY")).unwrap_or("").to_owned()
}

#[test]
fn an_sec1_ec_key_from_openssl_ecparam_loads_for_es256() {
    // `openssl ecparam -genkey` writes an EC PARAMETERS block, then the key.
    let sec1 = openssl(&["ecparam", "-name", "prime256v1", "-genkey"], b"");
    assert_eq!(begins(&sec1), "-----BEGIN EC PRIVATE KEY-----");
    let key = SigningKey::from_pem(SigningAlg::Es256, &sec1).unwrap();
    let same = SigningKey::from_pem(SigningAlg::Es256, &to_pkcs8(&sec1)).unwrap();
    assert_eq!(key.kid(), same.kid());
    // Without the parameters block (`-noout`) too.
    let bare = openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout"], b"");
    SigningKey::from_pem(SigningAlg::Es256, &bare).unwrap();
}

#[test]
fn a_pkcs8_ec_key_from_openssl_genpkey_loads_for_es256() {
    let pkcs8 = openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], b"");
    assert_eq!(begins(&pkcs8), "-----BEGIN PRIVATE KEY-----");
    SigningKey::from_pem(SigningAlg::Es256, &pkcs8).unwrap();
}

#[test]
fn an_ec_key_on_another_curve_is_refused_for_es256() {
    let p384 = openssl(&["ecparam", "-name", "secp384r1", "-genkey"], b"");
    assert!(matches!(SigningKey::from_pem(SigningAlg::Es256, &p384), Err(Error::BadKey(_))));
}

#[test]
fn a_pkcs1_rsa_key_from_openssl_genrsa_loads_for_rs256() {
    let pkcs1 = openssl(&["genrsa", "-traditional", "2048"], b"");
    assert_eq!(begins(&pkcs1), "-----BEGIN RSA PRIVATE KEY-----");
    let key = SigningKey::from_pem(SigningAlg::Rs256, &pkcs1).unwrap();
    let same = SigningKey::from_pem(SigningAlg::Rs256, &to_pkcs8(&pkcs1)).unwrap();
    assert_eq!(key.kid(), same.kid());
}

#[test]
fn a_pkcs8_rsa_key_from_openssl_genpkey_loads_for_rs256() {
    let pkcs8 = openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], b"");
    assert_eq!(begins(&pkcs8), "-----BEGIN PRIVATE KEY-----");
    SigningKey::from_pem(SigningAlg::Rs256, &pkcs8).unwrap();
}

#[test]
fn a_pkcs8_ed25519_key_from_openssl_genpkey_loads_for_eddsa() {
    let pkcs8 = openssl(&["genpkey", "-algorithm", "ed25519"], b"");
    assert_eq!(begins(&pkcs8), "-----BEGIN PRIVATE KEY-----");
    SigningKey::from_pem(SigningAlg::EdDsa, &pkcs8).unwrap();
}

#[test]
fn a_key_of_another_kind_or_an_encrypted_key_is_refused_with_a_reason() {
    let ec = openssl(&["ecparam", "-name", "prime256v1", "-genkey"], b"");
    let rsa = openssl(&["genrsa", "-traditional", "2048"], b"");
    let encrypted = openssl(&["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:secret"], &ec);
    assert_eq!(begins(&encrypted), "-----BEGIN ENCRYPTED PRIVATE KEY-----");
    for (alg, pem) in [(SigningAlg::Rs256, &ec), (SigningAlg::Es256, &rsa), (SigningAlg::EdDsa, &ec)] {
        let err = SigningKey::from_pem(alg, pem).unwrap_err();
        assert!(matches!(err, Error::BadKey(_)), "{alg:?}: {err}");
    }
    let err = SigningKey::from_pem(SigningAlg::Es256, &encrypted).unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");
    let public = openssl(&["ec", "-pubout"], &ec);
    assert!(matches!(SigningKey::from_pem(SigningAlg::Es256, &public), Err(Error::BadKey(_))));
}
