//! What sled-specific promises hold: the format marker, corrupt records as
//! errors, and acknowledged writes surviving `kill -9` of the writing process.
//!
//! The crash test runs this same test binary as the writer child: the test
//! `crash_child_writer` does the writing when `OAUTH_CRASH_CHILD_DIR` is set,
//! and returns at once otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use oauth_core::{AccessTokenId, AccountId, Record, RecordKind, Store, StoreError, ThrottleKey, TokenHash};
use oauth_store_sled::{Error, FORMAT_VERSION, Options, SledStore};
use support::{T0, grant, when_unlocked};
use time::Duration;

const CHILD_ENV: &str = "OAUTH_CRASH_CHILD_DIR";

const KIND: RecordKind = RecordKind::new("test_records");

fn a_record(key: &str) -> Record {
    Record {
        kind: KIND,
        key: TokenHash::of(key),
        owner: Some(AccountId::from_random_bytes([7; 16])),
        value: b"value".to_vec(),
        expires_at: T0 + Duration::HOUR,
    }
}

#[tokio::test]
async fn reopening_keeps_every_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let (g, r) = grant(1);
    let (kept, taken) = (a_record("kept"), a_record("taken"));
    {
        let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
        store.insert_grant(&g, Some(&r)).await.unwrap();
        store.revoke_access_token(AccessTokenId::from_random_bytes([5; 16]), T0 + Duration::HOUR).await.unwrap();
        assert!(store.insert_record(&kept, T0).await.unwrap());
        assert!(store.insert_record(&taken, T0).await.unwrap());
        assert!(store.take_record(KIND, &taken.key, T0).await.unwrap().is_some());
    }
    let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
    assert_eq!(store.refresh_token(&r.hash, T0).await.unwrap().map(|f| f.grant), Some(g));
    assert!(store.access_token_revoked(AccessTokenId::from_random_bytes([5; 16]), None, T0).await.unwrap());
    assert_eq!(store.record(KIND, &kept.key, T0).await.unwrap(), Some(kept.clone()));
    assert_eq!(store.record(KIND, &taken.key, T0).await.unwrap(), None, "a taken record came back");
    assert_eq!(store.delete_records_of(KIND, kept.owner.unwrap()).await.unwrap(), 1, "the owner index survived");
}

#[tokio::test]
async fn throttle_counters_outlive_a_clean_restart_and_are_swept_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let key = ThrottleKey::for_test("alice");
    let since = T0 - Duration::minutes(15);
    {
        let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
        for i in 0..3 {
            let counted = store.record_failure(&[key], T0 + Duration::seconds(i), since).await.unwrap();
            assert_eq!(counted[0].len(), usize::try_from(i + 1).unwrap());
        }
        store.flush().await.unwrap();
    }
    let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
    assert_eq!(store.failures(&key, since).await.unwrap().len(), 3, "a lockout outlives a restart");
    let later = T0 + Duration::HOUR;
    assert_eq!(store.sweep(later, later - Duration::minutes(15)).await.unwrap().throttle_keys, 1);
    drop(store);
    let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
    assert!(store.failures(&key, since).await.unwrap().is_empty(), "the sweep forgot it on disk too");
}

/// A counter is written in the shape the store had before issue 17 (a JSON
/// list of times), so a rollback to that build reads it.
#[tokio::test]
async fn throttle_counters_keep_their_shape_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let key = ThrottleKey::for_test("alice");
    {
        let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
        store.record_failure(&[key], T0, T0 - Duration::minutes(15)).await.unwrap();
        store.flush().await.unwrap();
    }
    let db = when_unlocked(|| sled::open(dir.path())).unwrap();
    let raw = db.open_tree("throttle").unwrap().get(key.as_bytes()).unwrap().expect("the counter was written");
    let failures: Vec<time::OffsetDateTime> = serde_json::from_slice(&raw).unwrap();
    assert_eq!(failures, [T0]);
}

#[test]
fn a_store_of_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = when_unlocked(|| sled::open(dir.path())).unwrap();
        db.open_tree("meta").unwrap().insert("format_version", &(FORMAT_VERSION + 1).to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap_err();
    assert!(matches!(err, Error::UnsupportedFormat { found } if found == FORMAT_VERSION + 1), "{err}");
}

#[tokio::test]
async fn a_corrupt_record_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (g, r) = grant(2);
    {
        let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
        store.insert_grant(&g, Some(&r)).await.unwrap();
    }
    {
        let db = when_unlocked(|| sled::open(dir.path())).unwrap();
        db.open_tree("grants").unwrap().insert(g.id.as_uuid().as_bytes(), &b"{not json"[..]).unwrap();
        db.flush().unwrap();
    }
    let store = when_unlocked(|| SledStore::open(dir.path(), Options::default())).unwrap();
    let err = store.grant(g.id, T0).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    let err = store.refresh_token(&r.hash, T0).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[tokio::test]
async fn a_truncated_record_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let r = a_record("short");
    {
        let store = SledStore::open(dir.path(), Options::default()).unwrap();
        assert!(store.insert_record(&r, T0).await.unwrap());
    }
    // Cut inside the expiry, before the owner flag, and inside the owner.
    for cut in [5, 16, 20] {
        {
            let db = sled::open(dir.path()).unwrap();
            let tree = db.open_tree("records").unwrap();
            let (key, value) = tree.iter().next().unwrap().unwrap();
            tree.insert(&key, &value[..cut.min(value.len())]).unwrap();
            db.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), Options::default()).unwrap();
        let err = store.record(KIND, &r.key, T0).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "cut at {cut}: {err}");
        let err = store.take_record(KIND, &r.key, T0).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "cut at {cut}: {err}");
    }
}

/// The writer child of `acknowledged_writes_survive_sigkill`: eight tasks write
/// grants with refresh tokens, and revoke every tenth, printing `ack N` only
/// after the store acknowledged the write. Returns at once outside the crash
/// test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    // Each round writes its own records, so a later round never overwrites an
    // earlier round's acknowledged ones.
    let round: u64 = std::env::var("OAUTH_CRASH_ROUND").ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let store = Arc::new(SledStore::open(dir, Options::default()).unwrap());
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let n = round * 100_000_000 + t * 1_000_000 + i;
                let (g, r) = grant(n);
                store.insert_grant(&g, Some(&r)).await.unwrap();
                if n % 10 == 0 {
                    store.revoke_grant(g.id).await.unwrap();
                }
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {n}").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// `OAUTH_CRASH_ROUNDS` sets the rounds (default 3; the closing note of the
/// store issue reports a local run of 20).
#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let rounds: usize = std::env::var("OAUTH_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["crash_child_writer", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path())
            .env("OAUTH_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill at a different point each round: after 50 to 400 acknowledgements.
        let kill_after = 50 + (round * 97) % 350;
        let deadline = Instant::now() + StdDuration::from_secs(60);
        let mut seen = 0;
        while seen < kill_after && Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(n) = line.strip_prefix("ack ") {
                        acked.push(n.parse::<u64>().unwrap());
                        seen += 1;
                    }
                }
                _ => break,
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acknowledgements already in the pipe were acknowledged before the kill.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ack ") {
                acked.push(n.parse::<u64>().unwrap());
            }
        }
        child.wait().unwrap();
        assert!(seen > 0, "round {round}: the child acknowledged nothing");

        let store = SledStore::open(dir.path(), Options::default()).expect("the store opens cleanly after kill -9");
        for n in &acked {
            let (g, r) = grant(*n);
            let found = store.refresh_token(&r.hash, T0).await.unwrap();
            let found = found.unwrap_or_else(|| panic!("round {round}: acknowledged grant {n} was lost"));
            assert_eq!(found.grant.revoked, n % 10 == 0, "round {round}: revocation of {n}");
            assert_eq!(found.grant.id, g.id);
        }
    }
    eprintln!("{} acknowledged writes survived {rounds} kill -9 rounds", acked.len());
}
