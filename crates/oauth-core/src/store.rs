//! The store trait: everything the flows persist, and the records they persist.
//!
//! One trait, one job: durable state. Every backend (`oauth-store-mem`,
//! `oauth-store-sled`, `oauth-store-postgres`) implements it and passes the one
//! conformance suite in `oauth-store-conformance`.
//!
//! Contract, for every backend:
//! - **Durability.** A method that changes a code, a grant, a refresh token, a
//!   revocation, an account or a signing key returns `Ok` only once the change
//!   is durable (for sled: flushed). A change that cannot be made durable is an
//!   `Err`, never acknowledged. Two exceptions, named on their methods: opening a
//!   session ([`Store::insert_session`]) and throttle counters may be lost in a
//!   crash, which only costs a user a retry.
//! - **Atomicity.** [`Store::replace_session`], [`Store::take_code`],
//!   [`Store::rotate_refresh`], [`Store::insert_record`],
//!   [`Store::replace_record`] and [`Store::take_record`] are compare-and-swap
//!   operations: of N concurrent calls on the same record, exactly one succeeds.
//! - **Expiry.** Expired sessions, codes and refresh tokens are never returned as
//!   usable, whether or not [`Store::sweep`] has removed them yet.
//! - **Errors.** A failing backend answers [`StoreError`], never a panic, and
//!   never "not found" for a failure.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::Account;
use crate::client::ClientRecord;
use crate::session::{Authentication, AuthorizationSession};
use crate::types::{AccessTokenId, AccountId, ClientId, GrantId, ResourceUri, Scope, SessionId, TokenHash};

/// A store failure. It says whether the backend could not answer, or answered
/// with data it cannot trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not do the operation (IO error, full disk, lost
    /// connection, timeout). Nothing was acknowledged; retrying may work.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The write would break a uniqueness rule, such as two accounts with one
    /// username.
    #[error("conflict: {0}")]
    Conflict(&'static str),
}

/// A grant: what one code exchange or password login authorized. It is the
/// refresh-token family, and access tokens carry its id, so revoking it refuses
/// everything minted from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant id (`gid` claim, refresh family id).
    pub id: GrantId,
    /// The client it was granted to.
    pub client_id: ClientId,
    /// The resource owner, when there is one.
    pub account: Option<AccountId>,
    /// The scope granted; a refresh may narrow it for one access token, never
    /// widen it.
    pub scope: Scope,
    /// When the grant was made. The refresh-token family ends
    /// `refresh_token_max_lifetime` after it; no refresh record outlives that.
    pub created_at: OffsetDateTime,
    /// When the record may go: after the last access token minted from the
    /// grant has expired, plus the leeway (so after the family's end for a
    /// grant with refresh tokens). Stores keep it until then.
    pub expires_at: OffsetDateTime,
    /// Set by revocation, code replay or refresh-token reuse; the record is kept
    /// until `expires_at` so access tokens carrying this `gid` stay refused.
    pub revoked: bool,
    /// The resource (RFC 8707) the grant's access tokens are for, their `aud`;
    /// `None` for the server's configured audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceUri>,
    /// The thumbprint of the DPoP key the family's refresh tokens are bound to
    /// (RFC 9449 5: those of public clients that sent a proof); a refresh must
    /// prove possession of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The login behind a code grant, which every ID token of the family
    /// repeats (`auth_time`, `sid`); `None` for grants without one (password,
    /// and grants stored before OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

impl Grant {
    /// Whether a token of this family may be rotated to `new`: the family is
    /// not revoked and `new` belongs to it. Every store's
    /// [`Store::rotate_refresh`] answers [`Rotation::NotFound`] otherwise.
    pub fn takes_rotation_to(&self, new: &RefreshRecord) -> bool {
        !self.revoked && new.grant == self.id
    }
}

/// One refresh token of a family, kept by its SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The family.
    pub grant: GrantId,
    /// 0 for the first token of a family, then one more per rotation.
    pub generation: u32,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// `refresh_token_ttl` after issue, capped by the family's end.
    pub expires_at: OffsetDateTime,
    /// True once this token has been rotated away; presenting it again is reuse.
    pub rotated: bool,
}

/// What [`Store::take_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// This call redeemed the code. The session is as it was just before
    /// (`CodeIssued`); the stored one is now `Exchanged`.
    Redeemed(Box<AuthorizationSession>),
    /// The code was redeemed before, creating this grant. The caller revokes it.
    Replayed(GrantId),
    /// No such code, or it has expired.
    NotFound,
}

/// What [`Store::rotate_refresh`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The old token was current: it is now rotated and the new one stored.
    Rotated,
    /// The old token had already been rotated. The store has revoked the whole
    /// family in the same step.
    Reused(GrantId),
    /// No such token, or it, or its grant, has expired or been revoked.
    NotFound,
}

/// A refresh token with its family and the family's account, as
/// [`Store::refresh_token`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLookup {
    /// The token's record.
    pub record: RefreshRecord,
    /// Its family.
    pub grant: Grant,
    /// The family's account as the store holds it, read with the token, so
    /// that a refresh learns whether the account is still enabled without a
    /// second read (on PostgreSQL, a second round trip). `None` when the
    /// family has no account or the account has been deleted.
    pub account: Option<Account>,
}

/// Which family a [`Record`] belongs to: a short name such as `"dpop_proof"`,
/// defined as a constant by the flow that keeps such records. The name is part
/// of the stored key, so two kinds never share a record, and renaming a kind
/// orphans its records (they expire and are swept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKind(&'static str);

impl RecordKind {
    /// Longest name, in bytes.
    pub const MAX_LEN: usize = 32;

    /// A kind named `name`: 1 to 32 characters of `a-z`, `0-9` and `_`. Used in
    /// a `const`, a bad name is a compile error.
    pub const fn new(name: &'static str) -> Self {
        let bytes = name.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() <= Self::MAX_LEN, "a record kind has 1 to 32 characters");
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            assert!(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_', "a record kind is [a-z0-9_]");
            i += 1;
        }
        RecordKind(name)
    }

    /// The name, as backends store it.
    pub fn name(&self) -> &'static str {
        self.0
    }
}

/// A short-lived record the flows keep by key, for the things that are not
/// codes, grants or accounts: replay caches (DPoP proofs, client assertions),
/// pushed authorization requests, device codes, browser sessions, remembered
/// consents. The store does not read `value`; the flow that owns the kind
/// encodes and decodes it. Expired records are never returned and are swept.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Its family.
    pub kind: RecordKind,
    /// Its key within the family: the SHA-256 of the secret or value that
    /// names it, so a stored key reveals nothing.
    pub key: TokenHash,
    /// The account it belongs to, if any, so that
    /// [`Store::delete_records_of`] can remove an account's records of a kind
    /// (log out everywhere, forget consents).
    pub owner: Option<AccountId>,
    /// The flow's data, opaque to the store.
    pub value: Vec<u8>,
    /// When it stops existing.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value may hold request parameters; keep it out of logs.
        f.debug_struct("Record")
            .field("kind", &self.kind.name())
            .field("owner", &self.owner)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A signing key as `oauth-jwt` keeps it. The store treats it as opaque bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// The key id (RFC 7638 thumbprint for asymmetric keys).
    pub kid: String,
    /// The JWS algorithm name, such as `ES256`.
    pub algorithm: String,
    /// The private or symmetric key material; empty for a public-only record
    /// (a key that signed once and is kept only to verify).
    pub secret: Vec<u8>,
    /// The public key material; empty for symmetric keys.
    pub public: Vec<u8>,
    /// When the key was created.
    pub created_at: OffsetDateTime,
    /// When it stopped signing; it still verifies for a while after.
    pub retired_at: Option<OffsetDateTime>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// A throttle counter's key: the SHA-256 of what is counted (an account name, a
/// client id, a peer address), so keys have a fixed size whatever the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ThrottleKey(pub(crate) TokenHash);

impl ThrottleKey {
    /// The key's bytes, for backends that index by bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Rebuilds a key from the bytes a store kept.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ThrottleKey(TokenHash::from_bytes(bytes))
    }

    /// A key for an arbitrary name, for store tests.
    #[cfg(feature = "testing")]
    pub fn for_test(name: &str) -> Self {
        ThrottleKey(TokenHash::of(name))
    }
}

/// Counts of what [`Store::sweep`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Sessions, with their code index entries.
    pub sessions: u64,
    /// Grants, with their refresh tokens.
    pub grants: u64,
    /// Refresh tokens past their own expiry.
    pub refresh_tokens: u64,
    /// Revoked access-token ids past their token's expiry.
    pub revoked_tokens: u64,
    /// Throttle counters with no failure inside the window.
    pub throttle_keys: u64,
    /// Expired [`Record`]s, of every kind.
    pub records: u64,
}

/// The list of [`Store`]'s methods, each with its documentation: the one place
/// their signatures are written. It calls macro `$callback` with them as
/// `/// docs fn name(&self, arg: Type, ...) -> Return;` items. The trait itself is
/// defined from it, and so are the wrappers (the forwarding impls here,
/// `oauth-runtime`'s `GatedStore`, `oauth-store-sled`'s `ReopeningStore`), so a
/// wrapper that misses a method does not compile.
#[doc(hidden)]
#[macro_export]
macro_rules! with_store_methods {
    ($callback:ident) => {
        $callback! {
            /// Stores a new session. Not necessarily durable: a session lost in a crash
            /// costs the user a new login.
            fn insert_session(&self, session: &AuthorizationSession) -> Result<(), StoreError>;
            /// The session with this id, unless it has expired (or never existed).
            fn session(&self, id: SessionId, now: OffsetDateTime) -> Result<Option<AuthorizationSession>, StoreError>;
            /// Replaces `old` by `new` if the stored session still equals `old`; returns
            /// whether it did. When `new` is `CodeIssued`, its code becomes redeemable by
            /// [`Store::take_code`]. Durable.
            fn replace_session(&self, old: &AuthorizationSession, new: &AuthorizationSession) -> Result<bool, StoreError>;
            /// Redeems a code, atomically and once: of concurrent calls for one code,
            /// exactly one gets [`CodeRedemption::Redeemed`]; the session becomes
            /// `Exchanged { grant }` and is kept until `retain_until`. Later calls mark
            /// the session replayed (see [`AuthorizationSession::mark_replayed`]) and get
            /// [`CodeRedemption::Replayed`] until then. Durable.
            fn take_code(&self, code: &TokenHash, grant: GrantId, retain_until: OffsetDateTime, now: OffsetDateTime) -> Result<CodeRedemption, StoreError>;
            /// Stores a new grant and, optionally, the first refresh token of its
            /// family. Durable.
            fn insert_grant(&self, grant: &Grant, refresh: Option<&RefreshRecord>) -> Result<(), StoreError>;
            /// The grant, revoked or not, unless it has expired.
            fn grant(&self, id: GrantId, now: OffsetDateTime) -> Result<Option<Grant>, StoreError>;
            /// The refresh token with its family, rotated or not, unless the token or the
            /// grant has expired. Revoked grants are returned (with `revoked` set), so the
            /// caller can tell reuse from an unknown token. The family's account comes
            /// with them, as [`Store::account`] would return it.
            fn refresh_token(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<RefreshLookup>, StoreError>;
            /// Rotates `old` to `new` (same grant, next generation) atomically. Of
            /// concurrent rotations of one token exactly one gets [`Rotation::Rotated`];
            /// presenting an already rotated token revokes its grant. Durable.
            fn rotate_refresh(&self, old: &TokenHash, new: &RefreshRecord, now: OffsetDateTime) -> Result<Rotation, StoreError>;
            /// Adds `record` to its family, a second successor of a rotated token that
            /// the reuse grace allows, when the family is live and not revoked;
            /// answers whether it did. Durable.
            fn add_refresh_token(&self, record: &RefreshRecord, now: OffsetDateTime) -> Result<bool, StoreError>;
            /// Revokes a grant: its refresh tokens stop working and access tokens that
            /// carry its id are refused. Idempotent. Durable.
            fn revoke_grant(&self, id: GrantId) -> Result<(), StoreError>;
            /// Revokes one access token by `jti` until its `expires_at`. Durable.
            fn revoke_access_token(&self, jti: AccessTokenId, expires_at: OffsetDateTime) -> Result<(), StoreError>;
            /// True when the access token `jti` was revoked, or its grant was.
            fn access_token_revoked(&self, jti: AccessTokenId, grant: Option<GrantId>, now: OffsetDateTime) -> Result<bool, StoreError>;
            /// Inserts or replaces an account by id. A username held by another account
            /// is [`StoreError::Conflict`]. Durable.
            fn put_account(&self, account: &Account) -> Result<(), StoreError>;
            /// The account with this id.
            fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
            /// The account with this username (exact, case-sensitive match).
            fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError>;
            /// Every account, for seeding from configuration.
            fn accounts(&self) -> Result<Vec<Account>, StoreError>;
            /// Up to `limit` accounts in id order (the bytes of the UUID), those
            /// after `after` when it is given: one page of a listing.
            fn accounts_after(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>, StoreError>;
            /// Removes an account; answers whether there was one. Its username is
            /// free again. Durable.
            fn delete_account(&self, id: AccountId) -> Result<bool, StoreError>;
            /// Up to `limit` grants of `account` that are live at `now` (neither
            /// expired nor revoked), in id order, those after `after` when it is
            /// given.
            fn grants_of(&self, account: AccountId, after: Option<GrantId>, limit: usize, now: OffsetDateTime) -> Result<Vec<Grant>, StoreError>;
            /// Stores a new client. A `client_id` the store holds already is
            /// [`StoreError::Conflict`]. Durable.
            fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
            /// Replaces the stored client with `client.id`; answers false, and
            /// stores nothing, when there is none. Durable.
            fn replace_client(&self, client: &ClientRecord) -> Result<bool, StoreError>;
            /// The stored client with this id (exact match).
            fn client_record(&self, id: &ClientId) -> Result<Option<ClientRecord>, StoreError>;
            /// Removes a stored client; answers whether there was one. Durable.
            fn delete_client(&self, id: &ClientId) -> Result<bool, StoreError>;
            /// Up to `limit` stored clients in `client_id` order (bytewise), those
            /// after `after` when it is given: one page of a listing.
            fn client_records(&self, after: Option<&ClientId>, limit: usize) -> Result<Vec<ClientRecord>, StoreError>;
            /// How many clients the store holds.
            fn count_clients(&self) -> Result<u64, StoreError>;
            /// Inserts or replaces a signing key by `kid`. Durable.
            fn put_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
            /// Every stored signing key.
            fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
            /// Records a failed attempt at `at` against each of `keys`, forgetting each
            /// key's failures before `since`, and answers each key's failures at or
            /// after `since` once it is added, oldest first, in the order of `keys`.
            /// Atomic per key: of N concurrent calls naming a key, each sees the new
            /// failure of every call before it, so the counts they answer are N
            /// distinct numbers. Not necessarily durable.
            fn record_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime, since: OffsetDateTime) -> Result<Vec<Vec<OffsetDateTime>>, StoreError>;
            /// Takes back one failure recorded at `at` from each of `keys` (an
            /// authorization session that no longer counts as pending). A key
            /// without one is left alone. Not necessarily durable.
            fn forget_failure(&self, keys: &[ThrottleKey], at: OffsetDateTime) -> Result<(), StoreError>;
            /// The failures recorded for `key` at or after `since`, oldest first.
            fn failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Vec<OffsetDateTime>, StoreError>;
            /// Removes every record that expired before `now` (sessions, grants with
            /// their refresh tokens, refresh tokens, revoked token ids, [`Record`]s) and throttle
            /// counters with no failure at or after `throttle_since`. Live records stay.
            fn sweep(&self, now: OffsetDateTime, throttle_since: OffsetDateTime) -> Result<Swept, StoreError>;
            /// Stores `record` unless a live record of its kind has its key, and
            /// answers whether it did; an expired record in the way is replaced. Of
            /// concurrent inserts of one key exactly one gets `true`, which is what
            /// the replay caches rest on. Durable.
            fn insert_record(&self, record: &Record, now: OffsetDateTime) -> Result<bool, StoreError>;
            /// The live record of `kind` with `key`.
            fn record(&self, kind: RecordKind, key: &TokenHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError>;
            /// Replaces `old` by `new` (the same kind and key) if the stored record
            /// still equals `old` in owner, value and expiry; answers whether it did.
            /// Durable.
            fn replace_record(&self, old: &Record, new: &Record) -> Result<bool, StoreError>;
            /// Removes the live record of `kind` with `key` and returns it: of
            /// concurrent calls exactly one gets it. Durable.
            fn take_record(&self, kind: RecordKind, key: &TokenHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError>;
            /// Removes every record of `kind` that `owner` owns, live or not, and
            /// answers how many there were. Durable.
            fn delete_records_of(&self, kind: RecordKind, owner: AccountId) -> Result<u64, StoreError>;
            /// Answers `Ok` when the backend can serve requests (`/healthz`).
            fn ping(&self) -> Result<(), StoreError>;
        }
    };
}

macro_rules! define_store {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        /// The persistence the flows need. See the module docs for the contract.
        #[async_trait]
        pub trait Store: Send + Sync {
            $($(#[$doc])* async fn $m(&self $(, $a: $t)*) -> $r;)*
        }
    };
}

with_store_methods!(define_store);

macro_rules! forward_store {
    ($($method:tt)*) => {
        crate::forward::forward_async!(Store { $($method)* });
    };
}

with_store_methods!(forward_store);

/// The first half of [`Store::rotate_refresh`], the same for every backend
/// that can read before it swaps: the live token `old` with its family, when
/// that family takes the rotation to `new` ([`Grant::takes_rotation_to`]).
/// `None` means the store answers [`Rotation::NotFound`]. The second half, the
/// swap that decides between [`Rotation::Rotated`] and [`Rotation::Reused`], is
/// each backend's own atomic step.
pub async fn rotation_family<S: Store + ?Sized>(
    store: &S,
    old: &TokenHash,
    new: &RefreshRecord,
    now: OffsetDateTime,
) -> Result<Option<RefreshLookup>, StoreError> {
    Ok(store.refresh_token(old, now).await?.filter(|found| found.grant.takes_rotation_to(new)))
}

/// Forgets the failures in `failures` (oldest first) before `since`, then adds
/// one at `at`, keeping the order: the rule of [`Store::record_failure`] for
/// backends that keep a key's failures as one list.
pub fn add_failure(failures: &mut Vec<OffsetDateTime>, at: OffsetDateTime, since: OffsetDateTime) {
    failures.retain(|t| *t >= since);
    let i = failures.partition_point(|t| *t <= at);
    failures.insert(i, at);
}

/// Takes one failure at `at` out of `failures`: the rule of
/// [`Store::forget_failure`]. False when there is none.
pub fn remove_failure(failures: &mut Vec<OffsetDateTime>, at: OffsetDateTime) -> bool {
    match failures.iter().position(|t| *t == at) {
        Some(i) => {
            failures.remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_family_takes_rotation_only_to_its_own_records_and_only_while_live() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let grant = Grant {
            id: GrantId::from_random_bytes([1; 16]),
            client_id: ClientId::parse("app").unwrap(),
            account: None,
            scope: Scope::parse("read").unwrap(),
            created_at: at,
            expires_at: at + time::Duration::days(90),
            revoked: false,
            resource: None,
            dpop_jkt: None,
            authentication: None,
        };
        let record = |family: GrantId| RefreshRecord {
            hash: TokenHash::of("next"),
            grant: family,
            generation: 1,
            issued_at: at,
            expires_at: at + time::Duration::days(14),
            rotated: false,
        };
        assert!(grant.takes_rotation_to(&record(grant.id)));
        assert!(!grant.takes_rotation_to(&record(GrantId::from_random_bytes([2; 16]))), "another family's record");
        assert!(!Grant { revoked: true, ..grant.clone() }.takes_rotation_to(&record(grant.id)), "a revoked family");
    }

    #[test]
    fn a_failure_is_added_in_order_and_the_window_forgets_older_ones() {
        let at = datetime!(2026-01-01 00:00 UTC);
        let s = time::Duration::SECOND;
        let mut f = vec![at, at + 2 * s];
        add_failure(&mut f, at + s, at);
        assert_eq!(f, [at, at + s, at + 2 * s]);
        add_failure(&mut f, at + 3 * s, at + s);
        assert_eq!(f, [at + s, at + 2 * s, at + 3 * s], "the failure before `since` left the window");
        assert!(remove_failure(&mut f, at + 2 * s));
        assert!(!remove_failure(&mut f, at + 2 * s), "only one was there");
        assert_eq!(f, [at + s, at + 3 * s]);
    }
}
