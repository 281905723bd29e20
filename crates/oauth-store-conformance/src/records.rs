//! Checks of the [`Record`] operations: single insert, compare-and-swap,
//! single take, expiry, deletion by owner, and the sweep.

use std::sync::Arc;

use oauth_core::{AccountId, Record, RecordKind, Store, TokenHash};
use time::Duration;

use crate::{RACERS, T0};

const SESSIONS: RecordKind = RecordKind::new("conformance_sessions");
const PROOFS: RecordKind = RecordKind::new("conformance_proofs");

fn record(kind: RecordKind, key: &str, owner: Option<u8>, value: &str) -> Record {
    Record {
        kind,
        key: TokenHash::of(key),
        owner: owner.map(|o| AccountId::from_random_bytes([o; 16])),
        value: value.as_bytes().to_vec(),
        expires_at: T0 + Duration::HOUR,
    }
}

/// A record is inserted once per key, read back equal, swapped only from what
/// is stored, and taken once.
pub async fn records_insert_once_swap_and_take_once(store: Arc<dyn Store>) {
    let first = record(SESSIONS, "k", Some(1), "first");
    assert!(store.insert_record(&first, T0).await.expect("insert"));
    assert!(!store.insert_record(&record(SESSIONS, "k", Some(2), "second"), T0).await.expect("insert"));
    assert_eq!(store.record(SESSIONS, &first.key, T0).await.expect("read"), Some(first.clone()));

    let next = Record { value: b"next".to_vec(), expires_at: T0 + Duration::HOUR * 2, ..first.clone() };
    let stale = Record { value: b"stale".to_vec(), ..first.clone() };
    assert!(!store.replace_record(&stale, &next).await.expect("swap"), "swapped from a value never stored");
    assert!(store.replace_record(&first, &next).await.expect("swap"));
    assert!(!store.replace_record(&first, &next).await.expect("swap"), "swapped twice from the same old value");
    let moved = Record { key: TokenHash::of("elsewhere"), ..next.clone() };
    assert!(!store.replace_record(&next, &moved).await.expect("swap"), "a swap may not change the key");
    assert_eq!(store.record(SESSIONS, &first.key, T0).await.expect("read"), Some(next.clone()));

    assert_eq!(store.take_record(SESSIONS, &first.key, T0).await.expect("take"), Some(next));
    assert_eq!(store.take_record(SESSIONS, &first.key, T0).await.expect("take"), None);
    assert_eq!(store.record(SESSIONS, &first.key, T0).await.expect("read"), None);
    assert_eq!(store.take_record(SESSIONS, &TokenHash::of("never"), T0).await.expect("take"), None);
}

/// Two kinds never share a record, even with one key.
pub async fn record_kinds_are_separate(store: Arc<dyn Store>) {
    let session = record(SESSIONS, "shared", None, "a session");
    let proof = record(PROOFS, "shared", None, "a proof");
    assert!(store.insert_record(&session, T0).await.expect("insert"));
    assert!(store.insert_record(&proof, T0).await.expect("insert"), "another kind's record blocked the key");
    assert_eq!(store.take_record(PROOFS, &proof.key, T0).await.expect("take"), Some(proof));
    assert_eq!(store.record(SESSIONS, &session.key, T0).await.expect("read"), Some(session));
}

/// An expired record is never returned, not even by a take, and its key is
/// free for a new one.
pub async fn expired_records_are_gone_and_their_keys_free(store: Arc<dyn Store>) {
    let old = record(PROOFS, "jti", None, "old");
    assert!(store.insert_record(&old, T0).await.expect("insert"));
    let later = old.expires_at;
    assert_eq!(store.record(PROOFS, &old.key, later).await.expect("read"), None, "returned at its expiry");
    let new = Record { value: b"new".to_vec(), expires_at: later + Duration::HOUR, ..old.clone() };
    assert!(store.insert_record(&new, later).await.expect("insert"), "an expired record kept its key");
    assert_eq!(store.record(PROOFS, &old.key, later).await.expect("read"), Some(new.clone()));
    assert_eq!(store.take_record(PROOFS, &old.key, new.expires_at).await.expect("take"), None);
}

/// Of concurrent inserts of one key exactly one succeeds, and its record is
/// the one stored: the replay caches rest on this.
pub async fn racing_record_inserts_have_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let r = record(PROOFS, "replayed-jti", None, &format!("racer {i}"));
                (store.insert_record(&r, T0).await.expect("insert"), r)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (won, r) = t.await.expect("task");
        if won {
            winners.push(r);
        }
    }
    assert_eq!(winners.len(), 1, "{} inserts of one key succeeded", winners.len());
    assert_eq!(store.record(PROOFS, &TokenHash::of("replayed-jti"), T0).await.expect("read"), winners.pop());
}

/// Of concurrent takes of one record exactly one gets it: a pushed request or
/// a device code is used once.
pub async fn racing_record_takes_have_one_winner(store: Arc<dyn Store>) {
    let r = record(SESSIONS, "once", Some(3), "used once");
    assert!(store.insert_record(&r, T0).await.expect("insert"));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_record(SESSIONS, &TokenHash::of("once"), T0).await.expect("take") })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.expect("task"));
    }
    assert_eq!(got, vec![r], "a record was taken more or less than once");
}

/// Deleting an owner's records of a kind removes those and nothing else, and
/// follows a record whose owner a swap changed.
pub async fn an_owners_records_are_deleted_by_kind(store: Arc<dyn Store>) {
    let mine = [record(SESSIONS, "a", Some(1), "1"), record(SESSIONS, "b", Some(1), "2")];
    let theirs = record(SESSIONS, "c", Some(2), "3");
    let other_kind = record(PROOFS, "d", Some(1), "4");
    let unowned = record(SESSIONS, "e", None, "5");
    for r in mine.iter().chain([&theirs, &other_kind, &unowned]) {
        assert!(store.insert_record(r, T0).await.expect("insert"));
    }
    // "c" changes hands from owner 2 to owner 1.
    let handed = Record { owner: mine[0].owner, ..theirs.clone() };
    assert!(store.replace_record(&theirs, &handed).await.expect("swap"));

    let owner = mine[0].owner.expect("owner");
    assert_eq!(store.delete_records_of(SESSIONS, owner).await.expect("delete"), 3);
    for gone in [&mine[0], &mine[1], &handed] {
        assert_eq!(store.record(SESSIONS, &gone.key, T0).await.expect("read"), None);
    }
    assert_eq!(store.record(PROOFS, &other_kind.key, T0).await.expect("read"), Some(other_kind));
    assert_eq!(store.record(SESSIONS, &unowned.key, T0).await.expect("read"), Some(unowned));
    let former = theirs.owner.expect("owner");
    assert_eq!(store.delete_records_of(SESSIONS, former).await.expect("delete"), 0, "the former owner still had it");
    assert_eq!(store.delete_records_of(SESSIONS, owner).await.expect("delete"), 0);
}

/// The sweep removes expired records of every kind and leaves live ones.
pub async fn sweep_removes_expired_records(store: Arc<dyn Store>) {
    let dead = Record { expires_at: T0 + Duration::SECOND, ..record(SESSIONS, "dead", Some(1), "x") };
    let dead_proof = Record { expires_at: T0 + Duration::SECOND, ..record(PROOFS, "dead", None, "x") };
    let live = record(SESSIONS, "live", Some(1), "y");
    for r in [&dead, &dead_proof, &live] {
        assert!(store.insert_record(r, T0).await.expect("insert"));
    }
    let now = T0 + Duration::minutes(1);
    let swept = store.sweep(now, now).await.expect("sweep");
    assert_eq!(swept.records, 2, "{swept:?}");
    assert_eq!(store.record(SESSIONS, &live.key, now).await.expect("read"), Some(live.clone()));
    let owner = live.owner.expect("owner");
    assert_eq!(store.delete_records_of(SESSIONS, owner).await.expect("delete"), 1, "only the live one is left");
}
