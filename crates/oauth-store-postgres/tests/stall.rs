//! A stalled database and the statement timeout, from both sides: a write the
//! server cannot finish within `statement_timeout` fails (a 503) and leaves
//! nothing behind, and a write the server committed is reported as done
//! however late its answer arrives.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_core::{
    AccessTokenId, AccountId, ClientId, Grant, GrantId, RefreshRecord, Rotation, Scope, Store, StoreError, TokenHash,
};
use oauth_store_postgres::testing::{TestDatabase, options, with_database};
use oauth_store_postgres::{Options, PostgresStore};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);
const TIMEOUT: Duration = Duration::from_millis(300);

fn family(n: u8) -> (Grant, RefreshRecord) {
    let g = Grant {
        id: GrantId::from_random_bytes([n; 16]),
        client_id: ClientId::parse("stall-client").unwrap(),
        account: Some(AccountId::from_random_bytes([n; 16])),
        scope: Scope::parse("read").unwrap(),
        created_at: NOW,
        expires_at: NOW + time::Duration::DAY,
        revoked: false,
        resource: None,
        dpop_jkt: None,
        authentication: None,
    };
    let r = RefreshRecord {
        hash: TokenHash::of(&format!("stall-{n}-0")),
        grant: g.id,
        generation: 0,
        issued_at: NOW,
        expires_at: NOW + time::Duration::HOUR,
        rotated: false,
    };
    (g, r)
}

fn next(r: &RefreshRecord, n: u8, generation: u32) -> RefreshRecord {
    RefreshRecord { hash: TokenHash::of(&format!("stall-{n}-{generation}")), generation, ..r.clone() }
}

async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

fn timed_options() -> Options {
    Options { statement_timeout: TIMEOUT, ..options() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_stalled_past_the_statement_timeout_fails_and_leaves_nothing() {
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(&db.url, timed_options()).await.unwrap();
    let (g, r0) = family(1);
    store.insert_grant(&g, Some(&r0)).await.unwrap();

    // Another session holds the token's row and the revocation table: the
    // database is stalled for these writes.
    let locker = raw(&db.url).await;
    locker.batch_execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT 1 FROM oauth_refresh_tokens WHERE hash = $1 FOR UPDATE", &[&r0.hash.as_bytes().as_slice()])
        .await
        .unwrap();
    locker.batch_execute("LOCK TABLE oauth_revoked_access_tokens IN SHARE MODE").await.unwrap();

    let r1 = next(&r0, 1, 1);
    let started = Instant::now();
    // Without a statement timeout the rotation would wait for the lock as
    // long as it is held.
    let rotation = tokio::time::timeout(Duration::from_secs(5), store.rotate_refresh(&r0.hash, &r1, NOW))
        .await
        .expect("the stalled rotation was not cut off by the statement timeout");
    assert!(matches!(rotation, Err(StoreError::Unavailable(_))), "{rotation:?}");
    let took = started.elapsed();
    assert!(took >= TIMEOUT && took < Duration::from_secs(5), "the rotation failed after {took:?}");
    let jti = AccessTokenId::from_random_bytes([9; 16]);
    let revocation =
        tokio::time::timeout(Duration::from_secs(5), store.revoke_access_token(jti, NOW + time::Duration::HOUR))
            .await
            .expect("the stalled revocation was not cut off by the statement timeout");
    assert!(matches!(revocation, Err(StoreError::Unavailable(_))), "{revocation:?}");

    // The stall ends. Nothing of the failed writes took effect.
    locker.batch_execute("ROLLBACK").await.unwrap();
    let old = store.refresh_token(&r0.hash, NOW).await.unwrap().unwrap();
    assert!(!old.record.rotated, "a failed rotation rotated the token");
    assert_eq!(store.refresh_token(&r1.hash, NOW).await.unwrap(), None, "a failed rotation stored its successor");
    assert!(!store.access_token_revoked(jti, None, NOW).await.unwrap(), "a failed revocation took effect");
    // And the store serves: the client's retry works.
    assert_eq!(store.rotate_refresh(&r0.hash, &r1, NOW).await.unwrap(), Rotation::Rotated);
    store.revoke_access_token(jti, NOW + time::Duration::HOUR).await.unwrap();
    assert!(store.access_token_revoked(jti, None, NOW).await.unwrap());
}

/// A TCP relay to the database whose answers (server to client) can be held
/// back; what the client sends always passes.
struct Relay {
    port: u16,
    hold: watch::Sender<bool>,
}

impl Relay {
    async fn to(target: (String, u16)) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (hold, held) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target.clone()).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
                let mut held = held.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if held.wait_for(|h| !*h).await.is_err() {
                            return;
                        }
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Relay { port, hold }
    }
}

fn host_and_port(url: &str) -> (String, u16) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(_) => panic!("the stall test needs a TCP server URL"),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_write_whose_answer_is_late_is_reported_done() {
    let db = TestDatabase::create().await;
    let relay = Relay::to(host_and_port(&db.url)).await;
    let through = with_database(&format!("host=127.0.0.1 port={} user=postgres", relay.port), &db.name);
    // One connection, its statements prepared by a first round, so that the
    // held answers below are those of the writes themselves.
    let store = Arc::new(PostgresStore::connect(&through, Options { pool_size: 1, ..timed_options() }).await.unwrap());
    let (g, r0) = family(2);
    store.insert_grant(&g, Some(&r0)).await.unwrap();
    let r1 = next(&r0, 2, 1);
    assert_eq!(store.rotate_refresh(&r0.hash, &r1, NOW).await.unwrap(), Rotation::Rotated);
    store.revoke_access_token(AccessTokenId::from_random_bytes([1; 16]), NOW).await.unwrap();

    // The answers stall for three statement timeouts.
    relay.hold.send_replace(true);
    let r2 = next(&r0, 2, 2);
    let rotating = tokio::spawn({
        let (store, r1, r2) = (store.clone(), r1.clone(), r2.clone());
        async move { store.rotate_refresh(&r1.hash, &r2, NOW).await }
    });
    // Seen directly: the rotation committed while its answer is held.
    let direct = raw(&db.url).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = direct
            .query("SELECT 1 FROM oauth_refresh_tokens WHERE hash = $1", &[&r2.hash.as_bytes().as_slice()])
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the rotation never reached the database");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(TIMEOUT * 3).await;
    assert!(!rotating.is_finished(), "the answer was held, yet the rotation returned");
    relay.hold.send_replace(false);
    let result = tokio::time::timeout(Duration::from_secs(10), rotating).await.unwrap().unwrap();
    assert_eq!(result.unwrap(), Rotation::Rotated, "a committed rotation was reported as failed");
    assert!(store.refresh_token(&r1.hash, NOW).await.unwrap().unwrap().record.rotated);
}
