//! Recovery from IO errors: sled 0.34 keeps the first IO error it meets (a full
//! disk, say) and fails every later operation with it, even once the cause is
//! gone. [`ReopeningStore`] drops such a database and reopens the directory on
//! a later operation, so the server recovers when space returns, without a
//! restart. Nothing is lost: a write that failed was never acknowledged, and
//! what was acknowledged is on disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SigningKeyRecord, Store, StoreError, Swept,
    ThrottleKey, TokenHash,
};
use time::OffsetDateTime;

use crate::counters::Counters;
use crate::{Error, Options, SledStore};

/// How often a broken store may try to reopen.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A [`SledStore`] that reopens itself after an IO error.
#[derive(Debug)]
pub struct ReopeningStore {
    path: PathBuf,
    options: Options,
    /// Carried from one open store to the next, so an IO error does not reset
    /// the throttle.
    counters: Counters,
    state: Mutex<State>,
    /// Every store operation holds this shared; [`ReopeningStore::backup`]
    /// holds it alone, so the copy sees no operation half done.
    pause: tokio::sync::RwLock<()>,
}

#[derive(Debug)]
struct State {
    open: Option<Arc<SledStore>>,
    last_attempt: Option<Instant>,
}

impl ReopeningStore {
    /// Opens the store in `path`; errors at this first open are returned.
    pub fn open(path: impl Into<PathBuf>, options: Options) -> Result<Self, Error> {
        let path = path.into();
        let store = SledStore::open(&path, options)?;
        Ok(ReopeningStore {
            path,
            options,
            counters: store.counters(),
            state: Mutex::new(State { open: Some(Arc::new(store)), last_attempt: None }),
            pause: tokio::sync::RwLock::new(()),
        })
    }

    /// Writes a consistent copy of the store to `dest`, a directory that
    /// must not exist yet, while the server runs: store operations wait
    /// (those under way finish first) until the copy is flushed and synced.
    /// The copy is a sled store of this format; serve from it to restore.
    /// Answers the number of entries copied.
    pub async fn backup(&self, dest: &std::path::Path) -> Result<u64, StoreError> {
        let _alone = self.pause.write().await;
        let store = self.current()?;
        let dest = dest.to_owned();
        let copied = tokio::task::spawn_blocking(move || store.copy_to(&dest))
            .await
            .map_err(|e| StoreError::Unavailable(format!("the backup thread failed: {e}")))??;
        Ok(copied)
    }

    /// Flushes everything (for shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.current()?.flush().await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open store, reopening a broken one at most once per [`RETRY_EVERY`].
    fn current(&self) -> Result<Arc<SledStore>, StoreError> {
        let mut state = self.lock();
        if let Some(open) = &state.open {
            return Ok(open.clone());
        }
        if state.last_attempt.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            return Err(StoreError::Unavailable("the store is reopening after an IO error".into()));
        }
        state.last_attempt = Some(Instant::now());
        // Fails while operations that began on the broken database still hold
        // it (and its file lock); a later call tries again.
        let store = SledStore::open_with(&self.path, self.options, Some(self.counters.clone()))
            .map_err(|e| StoreError::Unavailable(format!("reopening the store: {e}")))?;
        let store = Arc::new(store);
        state.open = Some(store.clone());
        Ok(store)
    }

    /// Drops `failed` if it is still the open store, so the next operation
    /// reopens the directory.
    fn failed(&self, failed: &Arc<SledStore>) {
        let mut state = self.lock();
        if state.open.as_ref().is_some_and(|open| Arc::ptr_eq(open, failed)) {
            state.open = None;
            state.last_attempt = None;
        }
    }
}

macro_rules! reopening {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl Store for ReopeningStore {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                let _shared = self.pause.read().await;
                let store = self.current()?;
                let result = store.$m($($a),*).await;
                if matches!(result, Err(StoreError::Unavailable(_))) {
                    self.failed(&store);
                }
                result
            })*
        }
    };
}

oauth_core::with_store_methods!(reopening);
