//! Throttle counters: kept in memory, written to the `throttle` tree at each
//! sweep and at shutdown.
//!
//! Every client authentication and login counts its attempt before the check
//! and takes it back after a success, so a counter changes twice per request
//! on the server's hottest route. In sled each change would be a
//! compare-and-swap in the log; here it is a map update under one mutex, which
//! is also what makes the count atomic. sled is single-process, so this memory
//! is the one place every request of the node sees.
//!
//! The store contract lets counters be lost in a crash: here what changed since
//! the last sweep is. A clean shutdown writes them out ([`SledStore::flush`]),
//! so lockouts outlive a restart. Only failures are written: an attempt whose
//! check was running when the server stopped will never settle.
//!
//! [`SledStore::flush`]: crate::SledStore::flush

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use oauth_core::{Attempt, Attempts, StoreError, ThrottleKey};
use time::OffsetDateTime;

/// The counters of one store, shared with the store that replaces it after a
/// reopen, so that an IO error does not reset them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    inner: Arc<Mutex<Inner>>,
}

/// A counter to write: its key, and its encoded attempts or `None` to remove it.
type Change = (ThrottleKey, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct Inner {
    live: HashMap<ThrottleKey, Attempts>,
    /// Keys whose failures changed since they were last written to the tree.
    dirty: HashSet<ThrottleKey>,
    /// Keys the tree holds, so that a key never written is never removed.
    stored: HashSet<ThrottleKey>,
}

impl Counters {
    /// The counters the tree holds. An undecodable counter (one written by an
    /// older build, say) is dropped: a counter is expendable, and refusing to
    /// open the store for one would cost far more.
    pub(crate) fn load(tree: &sled::Tree) -> Result<Self, sled::Error> {
        let mut inner = Inner::default();
        for entry in tree.iter() {
            let (k, v) = entry?;
            let Ok(bytes) = <[u8; 32]>::try_from(k.as_ref()) else { continue };
            let key = ThrottleKey::from_bytes(bytes);
            inner.stored.insert(key);
            match serde_json::from_slice::<Attempts>(&v) {
                Ok(attempts) => {
                    inner.live.insert(key, attempts);
                }
                // Rewritten (or removed) at the next sweep.
                Err(_) => {
                    inner.dirty.insert(key);
                }
            }
        }
        Ok(Counters { inner: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map holds only counters, and no update can stop half way.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count(&self, keys: &[(ThrottleKey, u32)], at: OffsetDateTime, since: OffsetDateTime) -> Attempt {
        let mut inner = self.lock();
        let attempt = Attempts::count_in(&mut inner.live, keys, at, since);
        if attempt == Attempt::Counted {
            inner.dirty.extend(keys.iter().map(|(key, _)| *key));
        }
        attempt
    }

    pub(crate) fn fail(&self, keys: &[ThrottleKey], at: OffsetDateTime) {
        let mut inner = self.lock();
        if Attempts::fail_in(&mut inner.live, keys, at) {
            inner.dirty.extend(keys);
        }
    }

    pub(crate) fn uncount(&self, keys: &[ThrottleKey], at: OffsetDateTime) {
        let mut inner = self.lock();
        if Attempts::uncount_in(&mut inner.live, keys, at) {
            // Taking back a pending attempt (every success) changes nothing
            // written, unless the key has failures on disk.
            let Inner { dirty, stored, .. } = &mut *inner;
            dirty.extend(keys.iter().filter(|key| stored.contains(*key)));
        }
    }

    /// Forgets the counters with no attempt at or after `since`; how many.
    pub(crate) fn sweep(&self, since: OffsetDateTime) -> u64 {
        let mut inner = self.lock();
        let idle: Vec<ThrottleKey> = inner.live.iter().filter(|(_, a)| a.idle_since(since)).map(|(k, _)| *k).collect();
        for key in &idle {
            inner.live.remove(key);
            inner.dirty.insert(*key);
        }
        idle.len() as u64
    }

    /// Writes the changed counters to `tree` (not flushed; the caller
    /// flushes). After an error the counters stay marked, for the next try.
    pub(crate) fn write_to(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let changed = self.take_changed()?;
        for (i, (key, value)) in changed.iter().enumerate() {
            let written = match value {
                Some(v) => tree.insert(key.as_bytes(), v.as_slice()).map(drop),
                None => tree.remove(key.as_bytes()).map(drop),
            };
            if let Err(e) = written {
                self.lock().dirty.extend(changed[i..].iter().map(|(k, _)| *k));
                return Err(crate::io(e));
            }
        }
        Ok(())
    }

    /// The changed counters' failures, encoded (`None`: none left, remove
    /// the key), unmarked.
    fn take_changed(&self) -> Result<Vec<Change>, StoreError> {
        let mut inner = self.lock();
        let Inner { live, dirty, stored } = &mut *inner;
        let mut changed = Vec::with_capacity(dirty.len());
        for key in dirty.drain() {
            let failures = live.get(&key).map(Attempts::failures).filter(|a| !a.is_empty());
            match failures {
                Some(a) => {
                    stored.insert(key);
                    changed.push((key, Some(crate::encode(&a)?)));
                }
                None if stored.remove(&key) => changed.push((key, None)),
                None => {}
            }
        }
        Ok(changed)
    }
}
