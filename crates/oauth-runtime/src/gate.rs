//! A store wrapper that bounds how long a request waits for the store, and
//! times every operation (the server shows the figures at `/metrics`).
//!
//! Each operation first takes a permit from a fixed pool. If no permit comes
//! within `store_timeout`, the request fails with a store error (answered 503)
//! before anything is written. Once an operation holds its permit it runs to
//! completion: a write that has been issued is always waited for, so no code is
//! consumed behind a 503. A store that hangs therefore holds at most the pool's
//! size of requests, and everything else is refused quickly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SigningKeyRecord, Store, StoreError, Swept,
    ThrottleKey, TokenHash,
};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gated store.
#[derive(Debug)]
pub struct GatedStore<S: ?Sized> {
    permits: Arc<Semaphore>,
    timeout: Duration,
    timings: Arc<StoreTimings>,
    inner: Arc<S>,
}

/// Count and total time of each store operation.
#[derive(Debug, Default)]
pub struct StoreTimings {
    by_operation: Mutex<BTreeMap<&'static str, (u64, Duration)>>,
}

impl StoreTimings {
    fn record(&self, operation: &'static str, took: Duration) {
        let mut m = self.by_operation.lock().unwrap_or_else(|e| e.into_inner());
        let entry = m.entry(operation).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    /// Each operation with its count and total time, by operation name.
    pub fn snapshot(&self) -> Vec<(&'static str, u64, Duration)> {
        let m = self.by_operation.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(op, (count, total))| (*op, *count, *total)).collect()
    }
}

impl<S: Store + ?Sized> GatedStore<S> {
    /// Wraps `inner`, allowing `concurrency` operations at once and waiting at
    /// most `timeout` for a turn.
    pub fn new(inner: Arc<S>, concurrency: usize, timeout: Duration) -> Self {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        GatedStore { permits, timeout, timings: Arc::default(), inner }
    }

    /// The operation timings, for a metrics page (`oauth-http`'s
    /// `Frontend::with_store_timings`).
    pub fn timings(&self) -> Arc<StoreTimings> {
        self.timings.clone()
    }

    async fn turn(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        // The common case, a free permit, needs no timer.
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        match tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(StoreError::Unavailable("store gate closed".into())),
            Err(_) => Err(StoreError::Unavailable("timed out waiting for the store".into())),
        }
    }
}

macro_rules! gated {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl<S: Store + ?Sized> Store for GatedStore<S> {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                let _permit = self.turn().await?;
                let started = std::time::Instant::now();
                let result = self.inner.$m($($a),*).await;
                self.timings.record(stringify!($m), started.elapsed());
                result
            })*
        }
    };
}

oauth_core::with_store_methods!(gated);
