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

gated! {
    fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError>;
    fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError>;
    fn replace_session(&self, old: &AuthorizationSession, new: &AuthorizationSession) -> Result<bool, StoreError>;
    fn take_code(&self, code: &TokenHash, grant: GrantId, retain_until: OffsetDateTime, now: OffsetDateTime) -> Result<CodeRedemption, StoreError>;
    fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError>;
    fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError>;
    fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError>;
    fn rotate_refresh(&self, old: &TokenHash, new: &RefreshRecord, now: OffsetDateTime) -> Result<Rotation, StoreError>;
    fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError>;
    fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError>;
    fn access_token_revoked(&self, jti: AccessTokenId, grant: Option<GrantId>, now: OffsetDateTime) -> Result<bool, StoreError>;
    fn put_account(&self, account: &Account) -> Result<(), StoreError>;
    fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
    fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError>;
    fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    fn record_failure(&self, key: &ThrottleKey, at: OffsetDateTime, since: OffsetDateTime, keep: usize) -> Result<(), StoreError>;
    fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError>;
    fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError>;
    fn ping(&self) -> Result<(), StoreError>;
}
