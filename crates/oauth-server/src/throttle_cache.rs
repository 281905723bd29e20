//! A per-node cache of the throttle's reads, for a store shared by several
//! nodes (PostgreSQL), where each read is a database round trip.
//!
//! Every `client_credentials` request, and every other request that
//! authenticates a client or an account, reads the failures of its subjects
//! before its check runs (`oauth_core::throttle`). SPEC-2 lets a node keep those
//! reads for up to [`TTL`], so that a healthy client pays no round trip: with
//! attempts still being checked counted in memory per node, and only failures
//! written, the success path of a request then costs the throttle nothing in
//! the database. What keeps the throttle sound:
//!
//! - a failure recorded on this node merges into its keys' cached reads the
//!   answer of the store's add-and-read, which holds every failure up to and
//!   including this one (merged, not replaced: the answers of concurrent adds
//!   arrive in any order), so this node never admits past the limit on its
//!   own cache;
//! - a read that started before a failure was recorded here (or a forgotten
//!   one, or an add that failed, or an add cancelled before its answer came:
//!   the store may have taken it) is not cached, and no read is served for
//!   those keys until one started after it;
//! - a failure recorded on another node is seen here at the latest [`TTL`]
//!   after it: across N nodes at most N x limit attempts are checked in that
//!   first second, and a lockout then holds on every node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SigningKeyRecord, Store, StoreError, Swept,
    ThrottleKey, TokenHash,
};
use time::OffsetDateTime;

/// How long a read may be used (SPEC-2: at most one second).
pub(crate) const TTL: Duration = Duration::from_secs(1);

/// Past this many keys, entries older than [`TTL`] are dropped (and all, if
/// that is not enough), so that many peer addresses cannot grow the cache.
const MAX_KEYS: usize = 100_000;

/// The store with the throttle's reads cached.
#[derive(Debug)]
pub(crate) struct ThrottleCache<S: ?Sized> {
    entries: Mutex<HashMap<ThrottleKey, Entry>>,
    inner: Arc<S>,
}

#[derive(Debug, Clone)]
enum Entry {
    /// The failures at or after `since`, as read from the store at `read_at`
    /// (the moment the read started), or as answered by this node's add at
    /// `read_at` (the moment the answer came).
    Read { read_at: Instant, since: OffsetDateTime, failures: Vec<OffsetDateTime> },
    /// The key changed here at this moment in a way no answer told (a
    /// forgotten failure, an add that failed); reads started before it are
    /// stale.
    Changed(Instant),
}

impl<S: Store + ?Sized> ThrottleCache<S> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: Arc<S>) -> Self {
        ThrottleCache { entries: Mutex::new(HashMap::new()), inner }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ThrottleKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, key: &ThrottleKey, since: OffsetDateTime) -> Option<Vec<OffsetDateTime>> {
        match self.lock().get(key)? {
            // A later `since` only drops failures that left the window; an
            // earlier one would need failures the read did not fetch.
            Entry::Read { read_at, since: read_since, failures } if read_at.elapsed() < TTL && since >= *read_since => {
                Some(failures.iter().copied().filter(|t| *t >= since).collect())
            }
            _ => None,
        }
    }

    fn remember(&self, key: ThrottleKey, read_at: Instant, since: OffsetDateTime, failures: &[OffsetDateTime]) {
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(Entry::Changed(at) | Entry::Read { read_at: at, .. }) if *at >= read_at => return,
            _ => {}
        }
        Self::make_room(&mut entries);
        entries.insert(key, Entry::Read { read_at, since, failures: failures.to_vec() });
    }

    /// Takes the answer of this node's add into the cache. Answers of
    /// concurrent adds can arrive in any order, and an earlier add's answer
    /// lacks the later adds: so the answer is merged with what the cache
    /// holds (each time as often as either list has it), never put in its
    /// place. Both are snapshots of one growing list, so the merge holds no
    /// failure the store lacks and loses none that either saw.
    fn merge_answer(&self, key: ThrottleKey, at: Instant, since: OffsetDateTime, answer: &[OffsetDateTime]) {
        let mut entries = self.lock();
        let mut merged = answer.to_vec();
        if let Some(Entry::Read { read_at, failures, .. }) = entries.get(&key) {
            if read_at.elapsed() < TTL {
                let mut i = 0;
                for t in failures.iter().filter(|t| **t >= since) {
                    // Both lists are sorted; `t` is missing from the merge
                    // when the answer has fewer of it.
                    while i < merged.len() && merged[i] < *t {
                        i += 1;
                    }
                    if i < merged.len() && merged[i] == *t {
                        i += 1;
                    } else {
                        merged.insert(i, *t);
                        i += 1;
                    }
                }
            }
        }
        Self::make_room(&mut entries);
        entries.insert(key, Entry::Read { read_at: at, since, failures: merged });
    }

    /// Past [`MAX_KEYS`], drops the entries older than [`TTL`] (and all, if
    /// that is not enough).
    fn make_room(entries: &mut HashMap<ThrottleKey, Entry>) {
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| match e {
                Entry::Read { read_at, .. } => read_at.elapsed() < TTL,
                Entry::Changed(at) => at.elapsed() < TTL,
            });
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
    }

    fn changed(&self, keys: &[ThrottleKey]) {
        let now = Instant::now();
        let mut entries = self.lock();
        for key in keys {
            entries.insert(*key, Entry::Changed(now));
        }
    }
}

/// Marks `keys` changed when dropped, unless the add's answer was merged.
struct ChangedUnlessAnswered<'a, S: Store + ?Sized> {
    cache: &'a ThrottleCache<S>,
    keys: &'a [ThrottleKey],
    answered: bool,
}

impl<S: Store + ?Sized> Drop for ChangedUnlessAnswered<'_, S> {
    fn drop(&mut self) {
        if !self.answered {
            self.cache.changed(self.keys);
        }
    }
}

macro_rules! forward_except_throttle {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl<S: Store + ?Sized> Store for ThrottleCache<S> {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                forward_except_throttle!(@body self $m $($a)*)
            })*
        }
    };
    (@body $self:ident failures $key:ident $since:ident) => {{
        if let Some(hit) = $self.cached($key, $since) {
            return Ok(hit);
        }
        let read_at = Instant::now();
        let failures = $self.inner.failures($key, $since).await?;
        $self.remember(*$key, read_at, $since, &failures);
        Ok(failures)
    }};
    (@body $self:ident record_failure $keys:ident $at:ident $since:ident) => {{
        // Dropped before the answer is merged (the request was cancelled
        // while the add was on its way, and the store may have taken it),
        // the guard marks the keys changed: no read started before that
        // moment is served for them, so the cache never hides this node's
        // own failure once its attempt has let go of its place.
        let mut guard = ChangedUnlessAnswered { cache: $self, keys: $keys, answered: false };
        match $self.inner.record_failure($keys, $at, $since).await {
            Ok(answer) => {
                guard.answered = true;
                // The answer holds every failure up to this one: this node's
                // next check counts it without a round trip.
                let answered_at = Instant::now();
                for (key, failures) in $keys.iter().zip(&answer) {
                    $self.merge_answer(*key, answered_at, $since, failures);
                }
                Ok(answer)
            }
            // Written or not, this node's next check reads the store: the
            // guard marks the keys changed as it drops.
            Err(e) => Err(e),
        }
    }};
    (@body $self:ident forget_failure $keys:ident $at:ident) => {{
        let result = $self.inner.forget_failure($keys, $at).await;
        $self.changed($keys);
        result
    }};
    (@body $self:ident $m:ident $($a:ident)*) => {
        $self.inner.$m($($a),*).await
    };
}

oauth_core::with_store_methods!(forward_except_throttle);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use oauth_store_mem::MemStore;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    /// A store that counts the throttle reads that reach it.
    #[derive(Debug, Default)]
    struct Counting {
        inner: MemStore,
        reads: AtomicUsize,
    }

    macro_rules! counting {
        ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
            #[async_trait]
            impl Store for Counting {
                $(async fn $m(&self $(, $a: $t)*) -> $r {
                    if stringify!($m) == "failures" {
                        self.reads.fetch_add(1, Ordering::SeqCst);
                    }
                    self.inner.$m($($a),*).await
                })*
            }
        };
    }
    oauth_core::with_store_methods!(counting);

    fn key() -> ThrottleKey {
        ThrottleKey::from_bytes([7; 32])
    }

    async fn fail(node: &ThrottleCache<Counting>, n: i64) {
        for i in 0..n {
            let at = NOW + time::Duration::milliseconds(i);
            node.record_failure(&[key()], at, NOW - time::Duration::HOUR).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_healthy_subject_reads_the_store_once_a_second() {
        let store = Arc::new(Counting::default());
        let node = ThrottleCache::new(store.clone());
        for _ in 0..50 {
            assert!(node.failures(&key(), NOW - time::Duration::HOUR).await.unwrap().is_empty());
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_on_this_node_counts_at_once_from_the_answer_of_its_add() {
        let store = Arc::new(Counting::default());
        let node = ThrottleCache::new(store.clone());
        assert!(node.failures(&key(), NOW - time::Duration::HOUR).await.unwrap().is_empty());
        fail(&node, 3).await;
        assert_eq!(node.failures(&key(), NOW - time::Duration::HOUR).await.unwrap().len(), 3);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1, "no read after the adds: their answers were cached");
    }

    /// The answers of two concurrent adds can arrive in either order; the
    /// earlier add's answer, arriving last, must not hide the later add.
    #[tokio::test]
    async fn an_add_answer_arriving_late_does_not_hide_a_later_failure() {
        let store = Arc::new(Counting::default());
        let node = ThrottleCache::new(store.clone());
        let since = NOW - time::Duration::HOUR;
        let (first, second) = (NOW, NOW + time::Duration::milliseconds(1));
        node.merge_answer(key(), Instant::now(), since, &[first, second]);
        node.merge_answer(key(), Instant::now(), since, &[first]);
        assert_eq!(node.failures(&key(), since).await.unwrap(), [first, second]);
        node.merge_answer(key(), Instant::now(), since, &[first, first, second]);
        assert_eq!(node.failures(&key(), since).await.unwrap(), [first, first, second], "as often as either has it");
        assert_eq!(store.reads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_forgotten_failure_is_read_again() {
        let store = Arc::new(Counting::default());
        let node = ThrottleCache::new(store.clone());
        fail(&node, 2).await;
        node.forget_failure(&[key()], NOW).await.unwrap();
        assert_eq!(node.failures(&key(), NOW - time::Duration::HOUR).await.unwrap().len(), 1);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    }

    /// Two nodes on one store: a lockout made on A is seen on B within TTL.
    #[tokio::test]
    async fn a_lockout_on_one_node_holds_on_the_other_within_a_second() {
        let store = Arc::new(Counting::default());
        let (a, b) = (ThrottleCache::new(store.clone()), ThrottleCache::new(store.clone()));
        let since = NOW - time::Duration::HOUR;
        assert!(b.failures(&key(), since).await.unwrap().is_empty(), "B caches a clean read");
        let cached_at = Instant::now();
        fail(&a, 10).await;
        assert_eq!(a.failures(&key(), since).await.unwrap().len(), 10);
        // B may still use its read, but not for longer than TTL.
        loop {
            let seen = b.failures(&key(), since).await.unwrap().len();
            if seen == 10 {
                break;
            }
            assert_eq!(seen, 0);
            assert!(cached_at.elapsed() < TTL, "B still saw no failures {:?} after A's lockout", cached_at.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(cached_at.elapsed() <= TTL + Duration::from_millis(200));
    }

    /// A store whose add is taken at once but answered late, as a
    /// PostgreSQL add whose statement was sent when its request was dropped
    /// (a client that hung up).
    #[derive(Debug, Default)]
    struct LateAnswer {
        inner: MemStore,
    }

    macro_rules! late_answer {
        ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
            #[async_trait]
            impl Store for LateAnswer {
                $(async fn $m(&self $(, $a: $t)*) -> $r {
                    let answer = self.inner.$m($($a),*).await;
                    if stringify!($m) == "record_failure" {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    answer
                })*
            }
        };
    }
    oauth_core::with_store_methods!(late_answer);

    /// Review of issue 17: `throttle_failed` frees the attempt's place when
    /// its future is dropped, so this node's cache must not go on hiding a
    /// failure whose add was cancelled after the store took it.
    #[tokio::test]
    async fn a_cancelled_add_the_store_took_is_not_hidden_by_the_cache() {
        let store = Arc::new(LateAnswer::default());
        let node = ThrottleCache::new(store.clone());
        let since = NOW - time::Duration::HOUR;
        assert!(node.failures(&key(), since).await.unwrap().is_empty(), "a clean read, cached");
        let keys = [key()];
        let add = node.record_failure(&keys, NOW, since);
        assert!(tokio::time::timeout(Duration::from_millis(20), add).await.is_err(), "cancelled");
        assert_eq!(store.inner.failures(&key(), since).await.unwrap().len(), 1, "the store took the failure");
        assert_eq!(node.failures(&key(), since).await.unwrap().len(), 1, "this node's own failure is hidden");
    }

    #[tokio::test]
    async fn a_narrower_window_is_served_from_the_cache_a_wider_one_is_not() {
        let store = Arc::new(Counting::default());
        let node = ThrottleCache::new(store.clone());
        fail(&node, 3).await;
        node.forget_failure(&[ThrottleKey::from_bytes([8; 32])], NOW).await.unwrap();
        assert_eq!(node.failures(&key(), NOW - time::Duration::HOUR).await.unwrap().len(), 3);
        assert_eq!(node.failures(&key(), NOW + time::Duration::milliseconds(1)).await.unwrap().len(), 2);
        assert_eq!(store.reads.load(Ordering::SeqCst), 0, "both from the answer of the last add");
        assert_eq!(node.failures(&key(), NOW - time::Duration::DAY).await.unwrap().len(), 3);
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    }
}
