//! An in-memory [`Store`] for oauth-rs.
//!
//! Everything lives in one mutex-guarded set of maps and is gone when the
//! process ends, so this store is for tests and single-process development. For
//! anything that must survive a restart use `oauth-store-sled`; for several
//! server nodes, `oauth-store-postgres`.
//!
//! It passes the same conformance suite as the durable stores
//! (`oauth-store-conformance`), so code tested against it behaves the same on
//! them, durability apart.
//!
//! # Examples
//!
//! Two runnable programs show how the crates fit together when embedded
//! (`cargo xtask test` builds both):
//! - [`oauth-core/examples/medmij_steps.rs`](https://example.invalid/oauth-rs/crates/oauth-core/examples/medmij_steps.rs)
//!   (`cargo run -p oauth-core --example medmij_steps`): only the core, over a
//!   store of its own, driving the MedMij steps (create session, check
//!   resource, decide, exchange);
//! - [`oauth-http/examples/embed_http.rs`](https://example.invalid/oauth-rs/crates/oauth-http/examples/embed_http.rs)
//!   (`cargo run -p oauth-http --example embed_http`): every endpoint served
//!   by `oauth-http` on the memory store, with a resource check of its own.
//!
//! # Feature flags
//!
//! None.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SessionState, SigningKeyRecord, Store,
    StoreError, Swept, ThrottleKey, TokenHash,
};
use time::OffsetDateTime;

/// The in-memory store. Cheap to create; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<SessionId, AuthorizationSession>,
    codes: HashMap<TokenHash, SessionId>,
    grants: HashMap<GrantId, Grant>,
    refresh: HashMap<TokenHash, RefreshRecord>,
    revoked: HashMap<AccessTokenId, OffsetDateTime>,
    accounts: BTreeMap<AccountId, Account>,
    clients: BTreeMap<String, ClientRecord>,
    usernames: HashMap<String, AccountId>,
    keys: BTreeMap<String, SigningKeyRecord>,
    throttle: HashMap<ThrottleKey, Vec<OffsetDateTime>>,
    records: HashMap<(RecordKind, TokenHash), Record>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        // A poisoned lock means a panic mid-update; the maps may be half
        // changed, so refuse rather than serve them.
        self.inner.lock().map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

impl Inner {
    /// The refresh record and its grant, if both are live at `now`.
    fn live_refresh(&self, hash: &TokenHash, now: OffsetDateTime) -> Option<(&RefreshRecord, &Grant)> {
        let record = self.refresh.get(hash).filter(|r| now < r.expires_at)?;
        let grant = self.grants.get(&record.grant).filter(|g| now < g.expires_at)?;
        Some((record, grant))
    }
}

#[async_trait]
impl Store for MemStore {
    async fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError> {
        self.lock()?.sessions.insert(session.id(), session.clone());
        Ok(())
    }

    async fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError> {
        Ok(self.lock()?.sessions.get(&id).filter(|s| now < s.expires_at()).cloned())
    }

    async fn replace_session(
        &self,
        old: &AuthorizationSession,
        new: &AuthorizationSession,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.sessions.get(&old.id()) != Some(old) || old.id() != new.id() {
            return Ok(false);
        }
        if let SessionState::CodeIssued { code, .. } = new.state() {
            inner.codes.insert(*code, new.id());
        }
        inner.sessions.insert(new.id(), new.clone());
        Ok(true)
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut inner = self.lock()?;
        let Some(session) = inner.codes.get(code).and_then(|id| inner.sessions.get(id)) else {
            return Ok(CodeRedemption::NotFound);
        };
        // The one mutex makes the read and the write below one step.
        let (next, outcome) = session.redeem(code, grant, retain_until, now);
        if let Some(next) = next {
            inner.sessions.insert(next.id(), next);
        }
        Ok(outcome)
    }

    async fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.grants.insert(grant.id, grant.clone());
        if let Some(r) = refresh {
            inner.refresh.insert(r.hash, r.clone());
        }
        Ok(())
    }

    async fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError> {
        Ok(self.lock()?.grants.get(&id).filter(|g| now < g.expires_at).cloned())
    }

    async fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError> {
        let inner = self.lock()?;
        Ok(inner.live_refresh(hash, now).map(|(record, grant)| RefreshLookup {
            record: record.clone(),
            grant: grant.clone(),
            account: grant.account.and_then(|id| inner.accounts.get(&id)).cloned(),
        }))
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut inner = self.lock()?;
        let Some((record, grant)) = inner.live_refresh(old, now) else {
            return Ok(Rotation::NotFound);
        };
        if !grant.takes_rotation_to(new) {
            return Ok(Rotation::NotFound);
        }
        let (rotated, grant_id) = (record.rotated, grant.id);
        if rotated {
            if let Some(g) = inner.grants.get_mut(&grant_id) {
                g.revoked = true;
            }
            return Ok(Rotation::Reused(grant_id));
        }
        if let Some(r) = inner.refresh.get_mut(old) {
            r.rotated = true;
        }
        inner.refresh.insert(new.hash, new.clone());
        Ok(Rotation::Rotated)
    }

    async fn add_refresh_token(&self, record: &RefreshRecord, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let live = inner.grants.get(&record.grant).is_some_and(|g| now < g.expires_at && !g.revoked);
        if live {
            inner.refresh.insert(record.hash, record.clone());
        }
        Ok(live)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError> {
        if let Some(g) = self.lock()?.grants.get_mut(&id) {
            g.revoked = true;
        }
        Ok(())
    }

    async fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.lock()?.revoked.insert(jti, expires_at);
        Ok(())
    }

    async fn access_token_revoked(
        &self,
        jti: AccessTokenId,
        grant: Option<GrantId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let inner = self.lock()?;
        let by_jti = inner.revoked.get(&jti).is_some_and(|exp| now < *exp);
        let by_grant = grant.and_then(|g| inner.grants.get(&g)).is_some_and(|g| g.revoked);
        Ok(by_jti || by_grant)
    }

    async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.usernames.get(&account.username).is_some_and(|id| *id != account.id) {
            return Err(StoreError::Conflict("username already taken"));
        }
        if let Some(previous) = inner.accounts.insert(account.id, account.clone()) {
            inner.usernames.remove(&previous.username);
        }
        inner.usernames.insert(account.username.clone(), account.id);
        Ok(())
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        Ok(self.lock()?.accounts.get(&id).cloned())
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let inner = self.lock()?;
        Ok(inner.usernames.get(username).and_then(|id| inner.accounts.get(id)).cloned())
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut all: Vec<Account> = self.lock()?.accounts.values().cloned().collect();
        all.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(all)
    }

    async fn accounts_after(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        let inner = self.lock()?;
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(inner.accounts.range((from, std::ops::Bound::Unbounded)).take(limit).map(|(_, a)| a.clone()).collect())
    }

    async fn delete_account(&self, id: AccountId) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        match inner.accounts.remove(&id) {
            Some(gone) => {
                inner.usernames.remove(&gone.username);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn grants_of(
        &self,
        account: AccountId,
        after: Option<GrantId>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>, StoreError> {
        let inner = self.lock()?;
        let mut live: Vec<Grant> = inner
            .grants
            .values()
            .filter(|g| g.account == Some(account) && !g.revoked && now < g.expires_at)
            .filter(|g| after.is_none_or(|a| g.id > a))
            .cloned()
            .collect();
        live.sort_by_key(|g| g.id);
        live.truncate(limit);
        Ok(live)
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if inner.clients.contains_key(client.id.as_str()) {
            return Err(StoreError::Conflict("client_id already taken"));
        }
        inner.clients.insert(client.id.as_str().to_owned(), client.clone());
        Ok(())
    }

    async fn replace_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        match inner.clients.get_mut(client.id.as_str()) {
            Some(stored) => {
                *stored = client.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn client_record(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.lock()?.clients.get(id.as_str()).cloned())
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.lock()?.clients.remove(id.as_str()).is_some())
    }

    async fn client_records(&self, after: Option<&ClientId>, limit: usize) -> Result<Vec<ClientRecord>, StoreError> {
        let inner = self.lock()?;
        // `String`'s order is bytewise, the order the contract names.
        let from = after.map_or(std::ops::Bound::Unbounded, |a| std::ops::Bound::Excluded(a.as_str().to_owned()));
        Ok(inner.clients.range((from, std::ops::Bound::Unbounded)).take(limit).map(|(_, c)| c.clone()).collect())
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        Ok(self.lock()?.clients.len() as u64)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.lock()?.keys.insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        Ok(self.lock()?.keys.values().cloned().collect())
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<Vec<OffsetDateTime>>, StoreError> {
        // One lock over every key's failures makes the add-and-read atomic.
        let mut guard = self.lock()?;
        let map = &mut guard.throttle;
        Ok(keys
            .iter()
            .map(|key| {
                let failures = map.entry(*key).or_default();
                oauth_core::add_failure(failures, at, since);
                failures.clone()
            })
            .collect())
    }

    async fn forget_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime) -> Result<(), StoreError> {
        let mut guard = self.lock()?;
        let map = &mut guard.throttle;
        for key in keys {
            if let Some(failures) = map.get_mut(key) {
                oauth_core::remove_failure(failures, at);
                if failures.is_empty() {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }

    async fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError> {
        let guard = self.lock()?;
        Ok(guard.throttle.get(key).map(|f| f.iter().copied().filter(|t| *t >= since).collect()).unwrap_or_default())
    }

    async fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError> {
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        let mut swept = Swept::default();

        let before = inner.sessions.len();
        inner.sessions.retain(|_, s| now < s.expires_at());
        swept.sessions = (before - inner.sessions.len()) as u64;
        let sessions = &inner.sessions;
        inner.codes.retain(|_, id| sessions.contains_key(id));

        let before = inner.grants.len();
        inner.grants.retain(|_, g| now < g.expires_at);
        swept.grants = (before - inner.grants.len()) as u64;

        let before = inner.refresh.len();
        let grants = &inner.grants;
        inner.refresh.retain(|_, r| now < r.expires_at && grants.contains_key(&r.grant));
        swept.refresh_tokens = (before - inner.refresh.len()) as u64;

        let before = inner.revoked.len();
        inner.revoked.retain(|_, exp| now < *exp);
        swept.revoked_tokens = (before - inner.revoked.len()) as u64;

        let before = inner.throttle.len();
        inner.throttle.retain(|_, f| f.iter().any(|t| *t >= throttle_since));
        swept.throttle_keys = (before - inner.throttle.len()) as u64;

        let before = inner.records.len();
        inner.records.retain(|_, r| now < r.expires_at);
        swept.records = (before - inner.records.len()) as u64;
        Ok(swept)
    }

    async fn insert_record(&self, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        let key = (record.kind, record.key);
        if inner.records.get(&key).is_some_and(|r| now < r.expires_at) {
            return Ok(false);
        }
        inner.records.insert(key, record.clone());
        Ok(true)
    }

    async fn record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        Ok(self.lock()?.records.get(&(kind, *key)).filter(|r| now < r.expires_at).cloned())
    }

    async fn replace_record(&self, old: &Record, new: &Record) -> Result<bool, StoreError> {
        if (old.kind, old.key) != (new.kind, new.key) {
            return Ok(false);
        }
        let mut inner = self.lock()?;
        match inner.records.get_mut(&(old.kind, old.key)) {
            Some(stored) if stored == old => {
                *stored = new.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn take_record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let mut inner = self.lock()?;
        Ok(inner.records.remove(&(kind, *key)).filter(|r| now < r.expires_at))
    }

    async fn delete_records_of(&self, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError> {
        let mut inner = self.lock()?;
        let before = inner.records.len();
        inner.records.retain(|(k, _), r| *k != kind || r.owner != Some(owner));
        Ok((before - inner.records.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}
