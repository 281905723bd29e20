//! Throttle counters: kept in memory, written to the `throttle` tree at each
//! sweep and at shutdown.
//!
//! Every request that authenticates a client or an account reads its
//! counters, and every failed check adds to them. In sled each change would
//! be a compare-and-swap in the log; here it is a map update under one mutex,
//! which is also what makes the add-and-read atomic. sled is single-process,
//! so this memory is the one place every request of the node sees.
//!
//! The store contract lets counters be lost in a crash: here what changed since
//! the last sweep is. A clean shutdown writes them out ([`SledStore::flush`]),
//! so lockouts outlive a restart. A counter is written as before issue 17: the
//! JSON list of its failures' times, oldest first.
//!
//! [`SledStore::flush`]: crate::SledStore::flush

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use oauth_core::{StoreError, ThrottleKey};
use time::OffsetDateTime;

/// The counters of one store, shared with the store that replaces it after a
/// reopen, so that an IO error does not reset them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    inner: Arc<Mutex<Inner>>,
}

/// A counter to write: its key, and its encoded failures or `None` to remove it.
type Change = (ThrottleKey, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct Inner {
    live: HashMap<ThrottleKey, Vec<OffsetDateTime>>,
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
            match serde_json::from_slice::<Vec<OffsetDateTime>>(&v) {
                Ok(failures) => {
                    inner.live.insert(key, failures);
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

    pub(crate) fn record(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Vec<Vec<OffsetDateTime>> {
        let mut inner = self.lock();
        let counted = keys
            .iter()
            .map(|key| {
                let failures = inner.live.entry(*key).or_default();
                oauth_core::add_failure(failures, at, since);
                failures.clone()
            })
            .collect();
        inner.dirty.extend(keys);
        counted
    }

    pub(crate) fn forget(&self, keys: &[ThrottleKey], at: OffsetDateTime) {
        let mut inner = self.lock();
        for key in keys {
            let Some(failures) = inner.live.get_mut(key) else { continue };
            if oauth_core::remove_failure(failures, at) {
                if failures.is_empty() {
                    inner.live.remove(key);
                }
                inner.dirty.insert(*key);
            }
        }
    }

    pub(crate) fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Vec<OffsetDateTime> {
        self.lock().live.get(key).map(|f| f.iter().copied().filter(|t| *t >= since).collect()).unwrap_or_default()
    }

    /// Forgets the counters with no failure at or after `since`; how many.
    pub(crate) fn sweep(&self, since: OffsetDateTime) -> u64 {
        let mut inner = self.lock();
        let idle: Vec<ThrottleKey> =
            inner.live.iter().filter(|(_, f)| f.iter().all(|t| *t < since)).map(|(k, _)| *k).collect();
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

    /// The changed counters, encoded (`None`: none left, remove
    /// the key), unmarked.
    fn take_changed(&self) -> Result<Vec<Change>, StoreError> {
        let mut inner = self.lock();
        let Inner { live, dirty, stored } = &mut *inner;
        let mut changed = Vec::with_capacity(dirty.len());
        for key in dirty.drain() {
            let failures = live.get(&key).filter(|f| !f.is_empty());
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
