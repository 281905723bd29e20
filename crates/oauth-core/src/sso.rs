//! Single sign-on's records: browser sessions and remembered consents, kept
//! as [`Record`]s of two kinds, and the proof values the authorization
//! session's single sign-on transitions demand.
//!
//! A browser session is named by its cookie, an opaque secret of 256 bits;
//! the store keys the record by the secret's SHA-256 and never sees the
//! secret. Its owner is the account, so [`Store::delete_records_of`] ends
//! every session of an account at once (a disabled account, "log out
//! everywhere"). A remembered consent is keyed by the account and client, and
//! owned by the account, so "forget consents" is the same call with the
//! other kind.
//!
//! The values are JSON, written and read only here.
//!
//! [`Store::delete_records_of`]: crate::Store::delete_records_of

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::store::{Record, RecordKind};
use crate::types::{AccountId, ClientId, Scope, Sid, TokenHash};

/// The kind of a browser session's record. Owned by the account.
pub const BROWSER_SESSION: RecordKind = RecordKind::new("browser_session");

/// The kind of a remembered consent's record. Owned by the account.
pub const REMEMBERED_CONSENT: RecordKind = RecordKind::new("consent");

/// A browser session's stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SessionValue {
    /// The issuer it was made by: a cookie is never accepted by another
    /// issuer, even one sharing the store.
    issuer: String,
    account: AccountId,
    #[serde(with = "time::serde::timestamp")]
    auth_time: OffsetDateTime,
    sid: Sid,
    #[serde(with = "time::serde::timestamp")]
    last_used: OffsetDateTime,
}

/// A browser session the store holds live for this issuer, with an enabled
/// account: the proof [`AuthorizationSession::resume`] takes. Only the lookup
/// in the single sign-on flow makes one.
///
/// [`AuthorizationSession::resume`]: crate::AuthorizationSession::resume
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBrowserSession {
    value: SessionValue,
    record: Record,
}

impl LiveBrowserSession {
    /// The signed-in account.
    pub fn account(&self) -> AccountId {
        self.value.account
    }
    /// When the user entered their password.
    pub fn auth_time(&self) -> OffsetDateTime {
        self.value.auth_time
    }
    /// The session's id, the `sid` of its ID tokens.
    pub fn sid(&self) -> Sid {
        self.value.sid
    }
    /// When the session was last used, to the minute: a use is written back
    /// at most once a minute.
    pub fn last_used(&self) -> OffsetDateTime {
        self.value.last_used
    }

    pub(crate) fn record(&self) -> &Record {
        &self.record
    }

    /// Reads a stored record for `issuer`: `None` for another issuer's.
    pub(crate) fn from_record(record: Record, issuer: &str) -> Result<Option<Self>> {
        let value: SessionValue = decode(&record.value)?;
        if value.issuer != issuer || record.owner != Some(value.account) {
            return Ok(None);
        }
        Ok(Some(LiveBrowserSession { value, record }))
    }

    /// The record of a session that starts now for `account`, named by
    /// `key` (the cookie's SHA-256).
    pub(crate) fn new_record(
        issuer: &str,
        key: TokenHash,
        account: AccountId,
        sid: Sid,
        now: OffsetDateTime,
        lifetime: time::Duration,
        idle: time::Duration,
    ) -> Result<Record> {
        let value = SessionValue { issuer: issuer.to_owned(), account, auth_time: now, sid, last_used: now };
        Ok(Record {
            kind: BROWSER_SESSION,
            key,
            owner: Some(account),
            value: encode(&value)?,
            expires_at: (now + lifetime).min(now + idle),
        })
    }

    /// The record after a use at `now`: the idle timer starts again, never
    /// past the session's absolute end.
    pub(crate) fn touched(
        &self,
        now: OffsetDateTime,
        lifetime: time::Duration,
        idle: time::Duration,
    ) -> Result<Record> {
        let value = SessionValue { last_used: now, ..self.value.clone() };
        Ok(Record {
            value: encode(&value)?,
            expires_at: (self.value.auth_time + lifetime).min(now + idle),
            ..self.record.clone()
        })
    }
}

/// A remembered consent's stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ConsentValue {
    client_id: ClientId,
    scope: Scope,
}

/// The key of `account`'s remembered consent for `client`.
pub(crate) fn consent_key(account: AccountId, client: &ClientId) -> TokenHash {
    TokenHash::of(&format!("consent\0{account}\0{client}"))
}

/// A remembered consent's record, owned by `account`.
pub(crate) fn consent_record(
    account: AccountId,
    client: &ClientId,
    scope: Scope,
    expires_at: OffsetDateTime,
) -> Result<Record> {
    Ok(Record {
        kind: REMEMBERED_CONSENT,
        key: consent_key(account, client),
        owner: Some(account),
        value: encode(&ConsentValue { client_id: client.clone(), scope })?,
        expires_at,
    })
}

/// The scope a stored consent record approved, if it is `client`'s.
pub(crate) fn consented_scope(record: &Record, client: &ClientId) -> Result<Option<Scope>> {
    let value: ConsentValue = decode(&record.value)?;
    Ok((&value.client_id == client).then_some(value.scope))
}

/// Why no consent page is needed: the proof
/// [`AuthorizationSession::approve_remembered`] takes. Only the consent
/// check of the single sign-on flow makes one.
///
/// [`AuthorizationSession::approve_remembered`]: crate::AuthorizationSession::approve_remembered
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGiven {
    account: AccountId,
    client: ClientId,
    /// The scope consented to; `None` for a client that needs no consent.
    scope: Option<Scope>,
}

impl ConsentGiven {
    /// A remembered consent of `account` to `client` for `scope`.
    pub(crate) fn remembered(account: AccountId, client: ClientId, scope: Scope) -> Self {
        ConsentGiven { account, client, scope: Some(scope) }
    }

    /// A client that needs no consent (`skip_consent`).
    pub(crate) fn not_needed(account: AccountId, client: ClientId) -> Self {
        ConsentGiven { account, client, scope: None }
    }

    /// Whether this consent lets `account` give `client` the scope `scope`.
    pub(crate) fn covers(&self, account: AccountId, client: &ClientId, scope: &Scope) -> bool {
        self.account == account
            && &self.client == client
            && self.scope.as_ref().is_none_or(|approved| scope.is_subset(approved))
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("encoding a record: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Store(crate::StoreError::Corrupt(format!("single sign-on record: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn account() -> AccountId {
        AccountId::from_random_bytes([1; 16])
    }

    #[test]
    fn a_browser_session_is_read_only_by_its_own_issuer() {
        let sid = Sid::from_random_bytes([2; 16]);
        let rec = LiveBrowserSession::new_record(
            "https://as.example/a",
            TokenHash::of("cookie"),
            account(),
            sid,
            T0,
            time::Duration::hours(10),
            time::Duration::minutes(30),
        )
        .unwrap();
        assert_eq!(rec.expires_at, T0 + time::Duration::minutes(30), "the idle timeout comes first");
        assert!(LiveBrowserSession::from_record(rec.clone(), "https://as.example/b").unwrap().is_none());
        let live = LiveBrowserSession::from_record(rec, "https://as.example/a").unwrap().unwrap();
        assert_eq!((live.account(), live.sid(), live.auth_time()), (account(), sid, T0));
    }

    #[test]
    fn touching_restarts_the_idle_timer_but_never_passes_the_lifetime() {
        let (lifetime, idle) = (time::Duration::hours(10), time::Duration::minutes(30));
        let rec = LiveBrowserSession::new_record(
            "i",
            TokenHash::of("c"),
            account(),
            Sid::from_random_bytes([2; 16]),
            T0,
            lifetime,
            idle,
        )
        .unwrap();
        let live = LiveBrowserSession::from_record(rec, "i").unwrap().unwrap();
        let later = T0 + time::Duration::minutes(20);
        let touched = live.touched(later, lifetime, idle).unwrap();
        assert_eq!(touched.expires_at, later + idle);
        let last = T0 + time::Duration::minutes(590);
        assert_eq!(live.touched(last, lifetime, idle).unwrap().expires_at, T0 + lifetime);
    }

    #[test]
    fn a_consent_covers_its_account_client_and_a_narrower_scope_only() {
        let app = ClientId::parse("app").unwrap();
        let given = ConsentGiven::remembered(account(), app.clone(), Scope::parse("openid read").unwrap());
        assert!(given.covers(account(), &app, &Scope::parse("read").unwrap()));
        assert!(!given.covers(account(), &app, &Scope::parse("read write").unwrap()), "wider");
        assert!(!given.covers(AccountId::from_random_bytes([9; 16]), &app, &Scope::parse("read").unwrap()));
        assert!(!given.covers(account(), &ClientId::parse("other").unwrap(), &Scope::parse("read").unwrap()));
        let skip = ConsentGiven::not_needed(account(), app.clone());
        assert!(skip.covers(account(), &app, &Scope::parse("anything at all").unwrap()));
    }

    #[test]
    fn consent_records_name_their_client() {
        let app = ClientId::parse("app").unwrap();
        let rec = consent_record(account(), &app, Scope::parse("read").unwrap(), T0).unwrap();
        assert_eq!(rec.key, consent_key(account(), &app));
        assert_eq!(consented_scope(&rec, &app).unwrap(), Some(Scope::parse("read").unwrap()));
        assert_eq!(consented_scope(&rec, &ClientId::parse("other").unwrap()).unwrap(), None);
    }
}
