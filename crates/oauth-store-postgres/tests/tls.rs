//! TLS to the database, against a PostgreSQL of its own that serves a
//! certificate from a CA made here and refuses clients without TLS: each
//! `[store] tls` mode connects when it should and is refused when the
//! certificate does not pass its check.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::path::Path;

use oauth_core::Store;
use oauth_store_postgres::testing::cluster::{Setup, Throwaway};
use oauth_store_postgres::{Error, Options, PostgresStore, Tls, TlsMode};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA's certificate (PEM) and a server certificate it signed for `names`,
/// with the server's key.
fn ca_and_server(names: &[&str]) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "oauth-rs test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    let server = server.signed_by(&key, &ca).unwrap();
    (ca.pem(), server.pem(), key.serialize_pem())
}

async fn connect(url: &str, mode: TlsMode, ca_file: Option<&Path>) -> Result<PostgresStore, Error> {
    let options = Options {
        connect_timeout: std::time::Duration::from_secs(5),
        tls: Tls { mode, ca_file: ca_file.map(Path::to_owned) },
        ..Options::default()
    };
    PostgresStore::connect(url, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tls_mode_checks_what_it_promises() {
    // The certificate names 127.0.0.1 only: `localhost` reaches the same
    // server under a name the certificate does not carry.
    let (ca, cert, key) = ca_and_server(&["127.0.0.1"]);
    let (other_ca, _, _) = ca_and_server(&["127.0.0.1"]);
    let cluster = Throwaway::start_with(&Setup {
        settings: &[("ssl", "on"), ("ssl_cert_file", "server.crt"), ("ssl_key_file", "server.key")],
        files: &[("server.crt", cert.as_bytes()), ("server.key", key.as_bytes())],
        hba: Some(
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\nhostssl all all ::1/128 trust\n",
        ),
    })
    .unwrap_or_else(|why| panic!("cannot start a PostgreSQL with TLS: {why}"));
    let files = tempfile::tempdir().unwrap();
    let (ca_file, other_ca_file) = (files.path().join("ca.pem"), files.path().join("other-ca.pem"));
    std::fs::write(&ca_file, &ca).unwrap();
    std::fs::write(&other_ca_file, &other_ca).unwrap();
    let by_ip = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.port);
    let by_name = format!("host=localhost port={} user=postgres dbname=postgres", cluster.port);

    // verify-full with the CA: connects, migrates, serves.
    let store = connect(&by_ip, TlsMode::VerifyFull, Some(&ca_file)).await.expect("verify-full with the right CA");
    store.ping().await.unwrap();
    assert!(store.accounts().await.unwrap().is_empty());

    // The same certificate under a name it does not carry: verify-full
    // refuses, verify-ca (chain only) accepts.
    let refused = connect(&by_name, TlsMode::VerifyFull, Some(&ca_file)).await;
    assert!(matches!(refused, Err(Error::Connect(_))), "verify-full accepted a certificate for another name");
    connect(&by_name, TlsMode::VerifyCa, Some(&ca_file)).await.expect("verify-ca ignores the name");

    // A certificate from a CA not trusted: refused by both checking modes,
    // and by the default (the system's roots).
    for mode in [TlsMode::VerifyFull, TlsMode::VerifyCa] {
        let refused = connect(&by_ip, mode, Some(&other_ca_file)).await;
        assert!(refused.is_err(), "{mode:?} accepted a certificate from an untrusted CA");
    }
    let refused = connect(&by_ip, TlsMode::default(), None).await;
    assert!(refused.is_err(), "the default trusted a self-made CA");

    // require: encrypted, unchecked. disable: this server refuses it.
    connect(&by_ip, TlsMode::Require, None).await.expect("require takes any certificate");
    let refused = connect(&by_ip, TlsMode::Disable, None).await;
    assert!(matches!(refused, Err(Error::Connect(_))), "the server let a client in without TLS");

    // A Unix socket has no TLS: verify-full there connects without it.
    let socket = format!("host={} port={} user=postgres dbname=postgres", cluster.socket_dir().display(), cluster.port);
    connect(&socket, TlsMode::VerifyFull, None).await.expect("verify-full over a Unix socket");

    // An sslmode in the URL that contradicts store.tls is refused.
    let conflict = connect(&format!("{by_ip} sslmode=disable"), TlsMode::VerifyFull, Some(&ca_file)).await;
    assert!(matches!(conflict, Err(Error::Url(_))), "{conflict:?}");
}
