//! A database that goes away and comes back, and schema versions: the store
//! answers `Unavailable` promptly during an outage and serves again after it,
//! applies migrations once, and refuses a schema newer than it knows.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_core::{Store, StoreError};
use oauth_store_postgres::testing::{TestDatabase, options, with_database};
use oauth_store_postgres::{Error, Options, PostgresStore, SCHEMA_VERSION};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP relay to the database that can be cut (every connection dropped,
/// new ones refused) and restored.
struct Relay {
    port: u16,
    up: watch::Sender<bool>,
}

impl Relay {
    async fn to(target: (String, u16)) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, state) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !*state.borrow() {
                    continue; // dropped: refused
                }
                let mut state = state.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Relay { port, up }
    }
}

fn host_and_port(url: &str) -> (String, u16) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => panic!("the outage test needs a TCP server URL"),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_gives_prompt_errors_and_service_resumes_after_it() {
    let db = TestDatabase::create().await;
    db.store().await; // migrate directly
    let relay = Relay::to(host_and_port(&db.url)).await;
    let through = with_database(&format!("host=127.0.0.1 port={} user=postgres", relay.port), &db.name);
    let options = Options { pool_size: 4, connect_timeout: Duration::from_secs(1), ..options() };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&through, options).await.unwrap());
    store.ping().await.unwrap();

    relay.up.send_replace(false);
    let started = Instant::now();
    for _ in 0..3 {
        match store.ping().await {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("during the outage: {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10), "errors took {:?}", started.elapsed());

    relay.up.send_replace(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the store did not come back after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.accounts().await.unwrap().is_empty());
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let db = TestDatabase::create().await;
    for _ in 0..2 {
        PostgresStore::connect(&db.url, options()).await.unwrap();
    }
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let versions = client.query("SELECT version FROM oauth_schema_migrations ORDER BY version", &[]).await.unwrap();
    let versions: Vec<i32> = versions.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    client
        .execute("INSERT INTO oauth_schema_migrations (version) VALUES ($1)", &[&(SCHEMA_VERSION + 1)])
        .await
        .unwrap();
    match PostgresStore::connect(&db.url, options()).await {
        Err(Error::NewerSchema { found }) => assert_eq!(found, SCHEMA_VERSION + 1),
        other => panic!("a newer schema was not refused: {other:?}"),
    }
}
