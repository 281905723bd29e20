//! A store wrapper that bounds how long a request waits for the store.
//!
//! Each operation first takes a permit from a fixed pool. If no permit comes
//! within `store_timeout`, the request fails with a store error (answered 503)
//! before anything is written. Once an operation holds its permit it runs to
//! completion: a write that has been issued is always waited for, so no code is
//! consumed behind a 503. A store that hangs therefore holds at most the pool's
//! size of requests, and everything else is refused quickly.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, CodeRedemption, Grant, GrantId, RefreshLookup,
    RefreshRecord, Rotation, SessionId, SigningKeyRecord, Store, StoreError, Swept, ThrottleKey, TokenHash,
};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gated store.
#[derive(Debug)]
pub struct GatedStore<S: ?Sized> {
    permits: Arc<Semaphore>,
    timeout: Duration,
    inner: Arc<S>,
}

impl<S: Store + ?Sized> GatedStore<S> {
    /// Wraps `inner`, allowing `concurrency` operations at once and waiting at
    /// most `timeout` for a turn.
    pub fn new(inner: Arc<S>, concurrency: usize, timeout: Duration) -> Self {
        GatedStore { permits: Arc::new(Semaphore::new(concurrency.max(1))), timeout, inner }
    }

    async fn turn(&self) -> Result<OwnedSemaphorePermit, StoreError> {
        match tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(StoreError::Unavailable("store gate closed".into())),
            Err(_) => Err(StoreError::Unavailable("timed out waiting for the store".into())),
        }
    }
}

macro_rules! gated {
    ($(fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl<S: Store + ?Sized> Store for GatedStore<S> {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                let _permit = self.turn().await?;
                self.inner.$m($($a),*).await
            })*
        }
    };
}

oauth_core::with_store_methods!(gated);
