//! The embedded durable [`Store`] for oauth-rs, on sled 0.34. The server's
//! default.
//!
//! - **Durability.** Every write that changes a code, a grant, a refresh token,
//!   a revocation, an account or a signing key is flushed before the call
//!   returns; a failed flush is an error, never an acknowledgement. Concurrent
//!   writers share one flush through a group-commit thread (`commit.rs`), so
//!   throughput grows with concurrency instead of collapsing.
//! - **Atomicity.** Code redemption, session updates and refresh rotation are
//!   compare-and-swap loops on the record; there is no read-then-write window.
//! - **Format.** Records are JSON in named trees; the `meta` tree holds a format
//!   version, and a store written in another version is refused with
//!   [`Error::UnsupportedFormat`] at open. A record that cannot be decoded is
//!   [`StoreError::Corrupt`], never a panic.
//!
//! What "durable" means depends on [`Durability`]. sled's own flush makes its
//! log stable with `sync_file_range` on Linux: that survives the death of the
//! process (`kill -9`), but flushes neither the disk's cache nor file metadata,
//! so alone it promises nothing across an operating-system crash or a power
//! loss ([`Durability::Process`]). [`Durability::Power`], the default, ends
//! every group commit with an `fdatasync` of sled's files (and of a directory
//! when sled created a file in it), so an acknowledged write also survives
//! those; `commit.rs` lists which files sled 0.34 leaves unsynced and why.
//!
//! After an IO error (a full disk) sled fails every later operation, even once
//! the cause is gone; [`ReopeningStore`] reopens the directory then, and is
//! what the server uses.
//!
//! sled is single-process: one server owns the directory. For several server
//! nodes use `oauth-store-postgres`; for tests, `oauth-store-mem`.
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

mod commit;
mod counters;
mod records;
mod reopen;

use std::path::Path;

use async_trait::async_trait;
use oauth_core::{
    AccessTokenId, Account, AccountId, AuthorizationSession, ClientId, ClientRecord, CodeRedemption, Grant, GrantId,
    Record, RecordKind, RefreshLookup, RefreshRecord, Rotation, SessionId, SessionState, SigningKeyRecord, Store,
    StoreError, Swept, ThrottleKey, TokenHash,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use commit::GroupCommit;
use counters::Counters;
pub use reopen::ReopeningStore;

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FORMAT_KEY: &[u8] = b"format_version";

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// sled could not open the directory (missing permissions, a lock held by
    /// another process, a corrupt log).
    #[error("cannot open the sled store: {0}")]
    Open(#[from] sled::Error),
    /// The directory holds a store in a format this build does not know.
    #[error("the store has format version {found}; this build reads version {FORMAT_VERSION}")]
    UnsupportedFormat {
        /// The version found on disk.
        found: u32,
    },
    /// The format marker itself is unreadable.
    #[error("the store's format marker is corrupt")]
    CorruptFormat,
    /// The group-commit thread could not be started.
    #[error("cannot start the commit thread: {0}")]
    Thread(std::io::Error),
    /// At [`Durability::Power`], the files sled wrote while opening could not
    /// be synced.
    #[error("cannot sync the store's files: {0}")]
    Sync(std::io::Error),
}

/// Options for [`SledStore::open`] and [`ReopeningStore::open`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// sled's page cache, in bytes.
    pub cache_capacity: u64,
    /// What an acknowledged write survives.
    pub durability: Durability,
}

impl Default for Options {
    fn default() -> Self {
        Options { cache_capacity: 64 * 1024 * 1024, durability: Durability::Power }
    }
}

/// What an acknowledged write survives (`[store] durability`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// sled's flush alone (`sync_file_range`): survives the death of the
    /// server process, not an operating-system crash or a power loss.
    Process,
    /// sled's flush, then `fdatasync` of its files in the same group commit:
    /// survives a power loss too. The default.
    #[default]
    Power,
}

/// The sled store.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    trees: Trees,
    commit: GroupCommit,
    counters: Counters,
}

#[derive(Debug, Clone)]
struct Trees {
    sessions: sled::Tree,
    codes: sled::Tree,
    grants: sled::Tree,
    refresh: sled::Tree,
    revoked: sled::Tree,
    accounts: sled::Tree,
    usernames: sled::Tree,
    keys: sled::Tree,
    throttle: sled::Tree,
    /// [`Record`]s by kind and key (`records.rs`).
    records: sled::Tree,
    /// The owned records' index: kind, owner and key, no value.
    records_owned: sled::Tree,
    /// Clients created through the admin API or registration, by `client_id`.
    clients: sled::Tree,
    /// The grants' index by account: account id and grant id, no value.
    grants_by_account: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        Self::open_with(path, options, None)
    }

    /// Opens the store in `path`, taking over `counters` (those of the store it
    /// replaces) instead of reading them from the directory.
    pub(crate) fn open_with(
        path: impl AsRef<Path>,
        options: Options,
        counters: Option<Counters>,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let db = sled::Config::new().path(path).cache_capacity(options.cache_capacity).open()?;
        let meta = db.open_tree("meta")?;
        match meta.get(FORMAT_KEY)? {
            None => {
                meta.insert(FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(v.as_ref().try_into().map_err(|_| Error::CorruptFormat)?);
                if found != FORMAT_VERSION {
                    return Err(Error::UnsupportedFormat { found });
                }
            }
        }
        let trees = Trees {
            sessions: db.open_tree("sessions")?,
            codes: db.open_tree("codes")?,
            grants: db.open_tree("grants")?,
            refresh: db.open_tree("refresh")?,
            revoked: db.open_tree("revoked")?,
            accounts: db.open_tree("accounts")?,
            usernames: db.open_tree("usernames")?,
            keys: db.open_tree("keys")?,
            throttle: db.open_tree("throttle")?,
            records: db.open_tree("records")?,
            records_owned: db.open_tree("records_owned")?,
            clients: db.open_tree("clients")?,
            grants_by_account: db.open_tree("grants_by_account")?,
        };
        index_grants_by_account(&meta, &trees)?;
        let counters = match counters {
            Some(c) => c,
            None => Counters::load(&trees.throttle)?,
        };
        // Before the first acknowledgement: the format marker, sled's `conf`
        // and snapshot, and the directory entries of a new store.
        let synced = commit::files_for(options.durability, path).map_err(Error::Sync)?;
        let commit = GroupCommit::start(db.clone(), synced).map_err(Error::Thread)?;
        Ok(SledStore { db, trees, commit, counters })
    }

    /// Flushes everything, counters included (for shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.counters.write_to(&self.trees.throttle)?;
        self.durable().await
    }

    /// Copies every tree to a new sled database in `dest` (which must not
    /// exist), then flushes and syncs it. Consistent only if nothing writes
    /// meanwhile: [`ReopeningStore::backup`] sees to that. Blocking.
    pub(crate) fn copy_to(&self, dest: &Path) -> Result<u64, StoreError> {
        if dest.exists() {
            return Err(StoreError::Conflict("the backup directory exists already"));
        }
        // The throttle counters live in memory between sweeps; the copy holds
        // them as they are now, so a restore keeps current lockouts.
        self.counters.write_to(&self.trees.throttle)?;
        let copy = sled::Config::new().path(dest).open().map_err(io)?;
        let mut copied = 0u64;
        for name in self.db.tree_names() {
            let from = self.db.open_tree(&name).map_err(io)?;
            let to = copy.open_tree(&name).map_err(io)?;
            for entry in from.iter() {
                let (k, v) = entry.map_err(io)?;
                to.insert(k, v).map_err(io)?;
                copied += 1;
            }
        }
        copy.flush().map_err(io)?;
        drop(copy);
        // sled's own flush does not sync its files or directory (see
        // commit.rs); the copy is synced whole before it is reported done.
        sync_dir_tree(dest).map_err(|e| StoreError::Unavailable(format!("syncing the backup: {e}")))?;
        Ok(copied)
    }

    fn sweep_records(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        records::sweep(&self.trees, now)
    }

    /// The throttle counters, to hand to the store that replaces this one.
    pub(crate) fn counters(&self) -> Counters {
        self.counters.clone()
    }

    async fn durable(&self) -> Result<(), StoreError> {
        self.commit.durable().await.map_err(StoreError::Unavailable)
    }
}

/// Set in `meta` once every grant is in `grants_by_account`; a store written
/// before that index existed gets it built at its first open by this build.
const GRANTS_INDEXED_KEY: &[u8] = b"grants_by_account_built";

fn index_grants_by_account(meta: &sled::Tree, trees: &Trees) -> Result<(), Error> {
    if meta.contains_key(GRANTS_INDEXED_KEY)? {
        return Ok(());
    }
    for entry in trees.grants.iter() {
        let (key, value) = entry?;
        if let Ok(grant) = serde_json::from_slice::<Grant>(&value) {
            if let Some(account) = grant.account {
                trees.grants_by_account.insert(grant_index_key(account, &key), &[])?;
            }
        }
    }
    meta.insert(GRANTS_INDEXED_KEY, &[1])?;
    Ok(())
}

fn grant_index_key(account: AccountId, grant: &[u8]) -> Vec<u8> {
    let mut k = account.as_uuid().as_bytes().to_vec();
    k.extend_from_slice(grant);
    k
}

pub(crate) fn io(e: sled::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, what: &str, key: &[u8]) -> Result<Option<T>, StoreError> {
    tree.get(key).map_err(io)?.map(|v| decode(what, &v)).transpose()
}

/// Replaces the record at `key` by `f(current)` with compare-and-swap, retrying
/// when another writer got there first. `f` returns `None` to leave the record
/// alone; the result is what `f` decided, with the record as it was.
fn cas_update<T, R>(
    tree: &sled::Tree,
    what: &str,
    key: &[u8],
    mut f: impl FnMut(&T) -> Result<(Option<T>, R), StoreError>,
) -> Result<Option<R>, StoreError>
where
    T: Serialize + DeserializeOwned,
{
    loop {
        let Some(current) = tree.get(key).map_err(io)? else {
            return Ok(None);
        };
        let value: T = decode(what, &current)?;
        let (next, result) = f(&value)?;
        let Some(next) = next else {
            return Ok(Some(result));
        };
        match tree.compare_and_swap(key, Some(&current), Some(encode(&next)?)).map_err(io)? {
            Ok(()) => return Ok(Some(result)),
            Err(_) => continue,
        }
    }
}

fn time_key(t: OffsetDateTime) -> [u8; 16] {
    t.unix_timestamp_nanos().to_be_bytes()
}

fn key_time(bytes: &[u8]) -> Result<OffsetDateTime, StoreError> {
    let raw: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Corrupt("revocation expiry".into()))?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from_be_bytes(raw))
        .map_err(|_| StoreError::Corrupt("revocation expiry".into()))
}

#[async_trait]
impl Store for SledStore {
    async fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError> {
        let key = session.id().as_uuid().into_bytes();
        self.trees.sessions.insert(key, encode(session)?).map_err(io)?;
        Ok(())
    }

    async fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError> {
        let s: Option<AuthorizationSession> = get(&self.trees.sessions, "session", id.as_uuid().as_bytes())?;
        Ok(s.filter(|s| now < s.expires_at()))
    }

    async fn replace_session(
        &self,
        old: &AuthorizationSession,
        new: &AuthorizationSession,
    ) -> Result<bool, StoreError> {
        if old.id() != new.id() {
            return Ok(false);
        }
        if let SessionState::CodeIssued { code, .. } = new.state() {
            // Index first: if the swap below loses, the index points at a session
            // without that code, which `take_code` treats as unknown.
            self.trees.codes.insert(code.as_bytes(), new.id().as_uuid().as_bytes()).map_err(io)?;
        }
        let swapped = cas_update(&self.trees.sessions, "session", old.id().as_uuid().as_bytes(), |cur| {
            Ok(if cur == old { (Some(new.clone()), true) } else { (None, false) })
        })?;
        let swapped = swapped.unwrap_or(false);
        if swapped {
            self.durable().await?;
        }
        Ok(swapped)
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        grant: GrantId,
        retain_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let Some(id) = self.trees.codes.get(code.as_bytes()).map_err(io)? else {
            return Ok(CodeRedemption::NotFound);
        };
        let outcome = cas_update(&self.trees.sessions, "session", &id, |s: &AuthorizationSession| {
            Ok(s.redeem(code, grant, retain_until, now))
        })?;
        let outcome = outcome.unwrap_or(CodeRedemption::NotFound);
        if !matches!(outcome, CodeRedemption::NotFound) {
            self.durable().await?;
        }
        Ok(outcome)
    }

    async fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError> {
        // Index first, so a stored grant always has its entry; an entry whose
        // grant is gone is skipped by `grants_of` and removed by the sweep.
        if let Some(account) = grant.account {
            self.trees
                .grants_by_account
                .insert(grant_index_key(account, grant.id.as_uuid().as_bytes()), &[])
                .map_err(io)?;
        }
        self.trees.grants.insert(grant.id.as_uuid().as_bytes(), encode(grant)?).map_err(io)?;
        if let Some(r) = refresh {
            self.trees.refresh.insert(r.hash.as_bytes(), encode(r)?).map_err(io)?;
        }
        self.durable().await
    }

    async fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError> {
        let g: Option<Grant> = get(&self.trees.grants, "grant", id.as_uuid().as_bytes())?;
        Ok(g.filter(|g| now < g.expires_at))
    }

    async fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError> {
        let Some(record) = get::<RefreshRecord>(&self.trees.refresh, "refresh token", hash.as_bytes())? else {
            return Ok(None);
        };
        if now >= record.expires_at {
            return Ok(None);
        }
        let Some(grant) = self.grant(record.grant, now).await? else {
            return Ok(None);
        };
        let account = match grant.account {
            Some(id) => self.account(id).await?,
            None => None,
        };
        Ok(Some(RefreshLookup { record, grant, account }))
    }

    async fn rotate_refresh(
        &self,
        old: &TokenHash,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let Some(found) = oauth_core::rotation_family(self, old, new, now).await? else {
            return Ok(Rotation::NotFound);
        };
        // The swap on the old record decides the race: only one caller flips
        // `rotated` from false to true.
        let won = cas_update(&self.trees.refresh, "refresh token", old.as_bytes(), |r: &RefreshRecord| {
            Ok(if r.rotated { (None, false) } else { (Some(RefreshRecord { rotated: true, ..r.clone() }), true) })
        })?;
        if won == Some(true) {
            self.trees.refresh.insert(new.hash.as_bytes(), encode(new)?).map_err(io)?;
            self.durable().await?;
            Ok(Rotation::Rotated)
        } else {
            self.revoke_grant(found.grant.id).await?;
            Ok(Rotation::Reused(found.grant.id))
        }
    }

    async fn add_refresh_token(&self, record: &RefreshRecord, now: OffsetDateTime) -> Result<bool, StoreError> {
        // A revocation between this read and the insert is harmless: every
        // use of a refresh token reads its family's `revoked` first.
        let live = self.grant(record.grant, now).await?.is_some_and(|g| !g.revoked);
        if live {
            self.trees.refresh.insert(record.hash.as_bytes(), encode(record)?).map_err(io)?;
            self.durable().await?;
        }
        Ok(live)
    }

    async fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError> {
        cas_update(&self.trees.grants, "grant", id.as_uuid().as_bytes(), |g: &Grant| {
            Ok(if g.revoked { (None, ()) } else { (Some(Grant { revoked: true, ..g.clone() }), ()) })
        })?;
        self.durable().await
    }

    async fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        self.trees.revoked.insert(jti.as_uuid().as_bytes(), &time_key(expires_at)).map_err(io)?;
        self.durable().await
    }

    async fn access_token_revoked(
        &self,
        jti: AccessTokenId,
        grant: Option<GrantId>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if let Some(exp) = self.trees.revoked.get(jti.as_uuid().as_bytes()).map_err(io)? {
            if now < key_time(&exp)? {
                return Ok(true);
            }
        }
        match grant {
            Some(g) => {
                Ok(get::<Grant>(&self.trees.grants, "grant", g.as_uuid().as_bytes())?.is_some_and(|g| g.revoked))
            }
            None => Ok(false),
        }
    }

    async fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let id = account.id.as_uuid().into_bytes();
        // Claim the username first; a claim held by another id is a conflict.
        match self.trees.usernames.compare_and_swap(account.username.as_bytes(), None as Option<&[u8]>, Some(&id)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.current.as_deref() == Some(&id[..]) => {}
            Ok(Err(_)) => return Err(StoreError::Conflict("username already taken")),
            Err(e) => return Err(io(e)),
        }
        let previous = self.trees.accounts.insert(id, encode(account)?).map_err(io)?;
        if let Some(prev) = previous {
            let prev: Account = decode("account", &prev)?;
            if prev.username != account.username {
                self.trees
                    .usernames
                    .compare_and_swap(prev.username.as_bytes(), Some(&id), None as Option<&[u8]>)
                    .map_err(io)?
                    .ok();
            }
        }
        self.durable().await
    }

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
        get(&self.trees.accounts, "account", id.as_uuid().as_bytes())
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        match self.trees.usernames.get(username.as_bytes()).map_err(io)? {
            Some(id) => get(&self.trees.accounts, "account", &id),
            None => Ok(None),
        }
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut all = Vec::new();
        for entry in self.trees.accounts.iter() {
            let (_, v) = entry.map_err(io)?;
            all.push(decode::<Account>("account", &v)?);
        }
        all.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(all)
    }

    async fn accounts_after(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError> {
        let entries = match after {
            Some(a) => self.trees.accounts.range::<&[u8], _>((
                std::ops::Bound::Excluded(&a.as_uuid().as_bytes()[..]),
                std::ops::Bound::Unbounded,
            )),
            None => self.trees.accounts.iter(),
        };
        let mut out = Vec::new();
        for entry in entries.take(limit) {
            let (_, v) = entry.map_err(io)?;
            out.push(decode::<Account>("account", &v)?);
        }
        Ok(out)
    }

    async fn delete_account(&self, id: AccountId) -> Result<bool, StoreError> {
        let key = id.as_uuid().into_bytes();
        let Some(gone) = self.trees.accounts.remove(key).map_err(io)? else {
            return Ok(false);
        };
        let gone: Account = decode("account", &gone)?;
        // Free the username only if it is still this account's.
        self.trees
            .usernames
            .compare_and_swap(gone.username.as_bytes(), Some(&key[..]), None as Option<&[u8]>)
            .map_err(io)?
            .ok();
        self.durable().await?;
        Ok(true)
    }

    async fn grants_of(
        &self,
        account: AccountId,
        after: Option<GrantId>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<Vec<Grant>, StoreError> {
        let prefix = account.as_uuid().as_bytes().to_vec();
        let start = match after {
            Some(g) => std::ops::Bound::Excluded(grant_index_key(account, g.as_uuid().as_bytes())),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut out = Vec::new();
        for entry in self.trees.grants_by_account.range((start, std::ops::Bound::Unbounded)) {
            let (k, _) = entry.map_err(io)?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if let Some(g) = get::<Grant>(&self.trees.grants, "grant", &k[16..])? {
                if !g.revoked && now < g.expires_at && g.account == Some(account) {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let inserted = self
            .trees
            .clients
            .compare_and_swap(client.id.as_str().as_bytes(), None as Option<&[u8]>, Some(encode(client)?))
            .map_err(io)?;
        if inserted.is_err() {
            return Err(StoreError::Conflict("client_id already taken"));
        }
        self.durable().await
    }

    async fn replace_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let replaced = cas_update(&self.trees.clients, "client", client.id.as_str().as_bytes(), |_: &ClientRecord| {
            Ok((Some(client.clone()), ()))
        })?;
        if replaced.is_some() {
            self.durable().await?;
        }
        Ok(replaced.is_some())
    }

    async fn client_record(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError> {
        get(&self.trees.clients, "client", id.as_str().as_bytes())
    }

    async fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let gone = self.trees.clients.remove(id.as_str().as_bytes()).map_err(io)?.is_some();
        if gone {
            self.durable().await?;
        }
        Ok(gone)
    }

    async fn client_records(&self, after: Option<&ClientId>, limit: usize) -> Result<Vec<ClientRecord>, StoreError> {
        let entries = match after {
            Some(a) => self
                .trees
                .clients
                .range::<&[u8], _>((std::ops::Bound::Excluded(a.as_str().as_bytes()), std::ops::Bound::Unbounded)),
            None => self.trees.clients.iter(),
        };
        let mut out = Vec::new();
        for entry in entries.take(limit) {
            let (_, v) = entry.map_err(io)?;
            out.push(decode::<ClientRecord>("client", &v)?);
        }
        Ok(out)
    }

    async fn count_clients(&self) -> Result<u64, StoreError> {
        Ok(self.trees.clients.len() as u64)
    }

    async fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.trees.keys.insert(key.kid.as_bytes(), encode(key)?).map_err(io)?;
        self.durable().await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        self.trees.keys.iter().map(|e| e.map_err(io).and_then(|(_, v)| decode("signing key", &v))).collect()
    }

    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<Vec<Vec<OffsetDateTime>>, StoreError> {
        // In memory, written out at sweeps and shutdown (`counters.rs`).
        Ok(self.counters.record(keys, at, since))
    }

    async fn forget_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime) -> Result<(), StoreError> {
        self.counters.forget(keys, at);
        Ok(())
    }

    async fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError> {
        Ok(self.counters.failures(key, since))
    }

    async fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        for entry in self.trees.sessions.iter() {
            let (k, v) = entry.map_err(io)?;
            let s: AuthorizationSession = decode("session", &v)?;
            if now >= s.expires_at()
                && self.trees.sessions.compare_and_swap(&k, Some(&v), None as Option<&[u8]>).map_err(io)?.is_ok()
            {
                swept.sessions += 1;
            }
        }
        for entry in self.trees.codes.iter() {
            let (k, id) = entry.map_err(io)?;
            if !self.trees.sessions.contains_key(&id).map_err(io)? {
                self.trees.codes.remove(&k).map_err(io)?;
            }
        }
        for entry in self.trees.grants.iter() {
            let (k, v) = entry.map_err(io)?;
            let g: Grant = decode("grant", &v)?;
            if now >= g.expires_at
                && self.trees.grants.compare_and_swap(&k, Some(&v), None as Option<&[u8]>).map_err(io)?.is_ok()
            {
                swept.grants += 1;
            }
        }
        for entry in self.trees.grants_by_account.iter() {
            let (k, _) = entry.map_err(io)?;
            if !self.trees.grants.contains_key(&k[16..]).map_err(io)? {
                self.trees.grants_by_account.remove(&k).map_err(io)?;
            }
        }
        for entry in self.trees.refresh.iter() {
            let (k, v) = entry.map_err(io)?;
            let r: RefreshRecord = decode("refresh token", &v)?;
            let orphan = !self.trees.grants.contains_key(r.grant.as_uuid().as_bytes()).map_err(io)?;
            if (now >= r.expires_at || orphan) && self.trees.refresh.remove(&k).map_err(io)?.is_some() {
                swept.refresh_tokens += 1;
            }
        }
        for entry in self.trees.revoked.iter() {
            let (k, v) = entry.map_err(io)?;
            if now >= key_time(&v)? && self.trees.revoked.remove(&k).map_err(io)?.is_some() {
                swept.revoked_tokens += 1;
            }
        }
        swept.throttle_keys = self.counters.sweep(throttle_since);
        self.counters.write_to(&self.trees.throttle)?;
        swept.records = self.sweep_records(now)?;
        self.durable().await?;
        Ok(swept)
    }

    async fn insert_record(&self, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError> {
        let inserted = records::insert(&self.trees, record, now)?;
        if inserted {
            self.durable().await?;
        }
        Ok(inserted)
    }

    async fn record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        records::get(&self.trees, kind, key, now)
    }

    async fn replace_record(&self, old: &Record, new: &Record) -> Result<bool, StoreError> {
        let replaced = records::replace(&self.trees, old, new)?;
        if replaced {
            self.durable().await?;
        }
        Ok(replaced)
    }

    async fn take_record(
        &self,
        kind: RecordKind,
        key: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let taken = records::take(&self.trees, kind, key, now)?;
        if taken.is_some() {
            self.durable().await?;
        }
        Ok(taken)
    }

    async fn delete_records_of(&self, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError> {
        let deleted = records::delete_owned(&self.trees, kind, owner)?;
        self.durable().await?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.get(FORMAT_KEY).map(|_| ()).map_err(io)
    }
}

/// `fsync`s every file under `dir`, then every directory, deepest first.
fn sync_dir_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_dir_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}
