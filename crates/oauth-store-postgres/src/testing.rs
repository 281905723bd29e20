//! Test support (feature `testing`): a fresh database per test on the
//! server `OAUTH_TEST_POSTGRES_URL` names, dropped when the test ends.
//!
//! `cargo xtask test` starts a throwaway server and sets the variable, or sets
//! `OAUTH_TEST_POSTGRES_ERROR` to why it could not. Without either, every test
//! that needs the server fails with a message that says how to get one (the
//! Debian package `postgresql`): no backend's check is ever skipped, and a run
//! without a database cannot pass as green.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support fails by panicking, like the tests")]

use std::sync::Arc;

pub mod cluster;

use oauth_core::Store;

use crate::{Options, PostgresStore, Tls, TlsMode};

/// The variable naming the test server.
pub const URL_VAR: &str = "OAUTH_TEST_POSTGRES_URL";

/// The server's URL. Without one the calling test fails, saying why.
pub fn server_url() -> String {
    if let Ok(why) = std::env::var("OAUTH_TEST_POSTGRES_ERROR") {
        panic!("no PostgreSQL for the tests: {why} (the Debian package `postgresql` provides initdb and pg_ctl)");
    }
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{URL_VAR} is not set: run the tests with `cargo xtask test`, which starts a throwaway PostgreSQL \
             (Debian package `postgresql`), or set it to a server where this user may create databases"
        ),
    }
}

/// The default options, without TLS: the test servers listen on 127.0.0.1
/// without it (the TLS tests start servers of their own).
pub fn options() -> Options {
    Options { tls: Tls { mode: TlsMode::Disable, ca_file: None }, ..Options::default() }
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.dbname(name);
    // Rebuild a key=value string, which every field of Config can express.
    let mut parts = Vec::new();
    for host in config.get_hosts() {
        match host {
            tokio_postgres::config::Host::Tcp(h) => parts.push(format!("host={h}")),
            tokio_postgres::config::Host::Unix(p) => parts.push(format!("host={}", p.display())),
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(password)));
    }
    parts.push(format!("dbname={name}"));
    parts.join(" ")
}

/// A database made for one test, dropped with it.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    /// Its name.
    pub name: String,
    /// A connection string for it (key=value form).
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh database; fails the test when there is no server.
    pub async fn create() -> Self {
        let admin_url = server_url();
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).unwrap();
        let name = format!("oauth_test_{}", uuid::Uuid::from_bytes(random).simple());
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = with_database(&admin_url, &name);
        TestDatabase { admin_url, name, url }
    }

    /// A store on this database, schema migrated.
    pub async fn store(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url, options()).await.unwrap())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any async context we can block on: use a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        })
        .join();
    }
}
