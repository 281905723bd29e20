//! Test support (feature `testing`): a fresh database per test on the
//! server `OAUTH_TEST_POSTGRES_URL` names, dropped when the test ends.
//!
//! `cargo xtask test` starts a throwaway server and sets the variable, or sets
//! `OAUTH_TEST_POSTGRES_ERROR` to why it could not. Without either, tests
//! fail under CI (`CI` set) and are skipped, with a message, elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support fails by panicking, like the tests")]

use std::sync::Arc;

use oauth_core::Store;

use crate::{Options, PostgresStore};

/// The variable naming the test server.
pub const URL_VAR: &str = "OAUTH_TEST_POSTGRES_URL";

/// The server's URL; `None` (after saying why) when tests should be skipped.
pub fn server_url() -> Option<String> {
    if let Ok(why) = std::env::var("OAUTH_TEST_POSTGRES_ERROR") {
        panic!("no PostgreSQL for the tests: {why}");
    }
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{URL_VAR} is not set: run the tests with `cargo xtask test`, which starts a throwaway PostgreSQL \
             (Debian package `postgresql`)"
        ),
        _ => {
            eprintln!("skipped: {URL_VAR} is not set (`cargo xtask test` starts a throwaway PostgreSQL)");
            None
        }
    }
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
    /// Creates a fresh database. Without a server outside CI, ends the test
    /// process with success, which skips it (nextest runs each test alone).
    pub async fn create() -> Self {
        let Some(admin_url) = server_url() else {
            // Outside CI without a server: a throwaway process-exit skip.
            std::process::exit(0);
        };
        let name = format!("oauth_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = with_database(&admin_url, &name);
        TestDatabase { admin_url, name, url }
    }

    /// A store on this database, schema migrated.
    pub async fn store(&self) -> Arc<dyn Store> {
        Arc::new(PostgresStore::connect(&self.url, Options::default()).await.unwrap())
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
