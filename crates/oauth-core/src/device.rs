//! The device authorization grant's records (RFC 8628), and the small state
//! machine a device request goes through beside the authorization session.
//!
//! ```text
//! Pending --(the browser session's consent: approve)--> Approved --(one poll takes it)--> gone
//!    \------(deny, or the resource check refuses)-----> Denied
//! ```
//!
//! A device request is a [`Record`] of kind [`DEVICE_CODE`], keyed by the
//! SHA-256 of the device code (the code itself is never stored), and a second
//! record of kind [`DEVICE_USER_CODE`], keyed by the SHA-256 of the user
//! code's letters, whose value is the device code's hash: the index the user
//! page looks a typed code up by. [`Store::insert_record`] refuses a live
//! duplicate key, so a user code is unique among live ones.
//!
//! The user's side is an [`AuthorizationSession`] opened for the device
//! request (it names it: [`AuthorizationSession::device_user_code`]): the
//! same login, single sign-on, resource check and consent page as the code
//! flow. The session never issues a code, and never skips the consent page
//! (the user must see the user code there). A device request changes state
//! only through `DeviceRequest::decided_by`, which takes the session in
//! `Approved` or `Denied`, so the device is approved only by a logged-in user
//! who saw the code on the consent page, once: `Pending` is the only state
//! that takes a decision, and the store's compare-and-swap makes the first
//! decision the only one.
//!
//! Polls keep their own bookkeeping in the record (the time of the last poll,
//! the interval, grown by 5 s per poll that came too soon), so every node
//! answers `slow_down` alike. An approved request is redeemed by
//! [`Store::take_record`]: of concurrent polls exactly one gets it.
//!
//! The record outlives its device code by the code's lifetime again, so a
//! poll after `expires_in` is told `expired_token` rather than `invalid_grant`;
//! the sweep removes it after that.
//!
//! [`Store::insert_record`]: crate::Store::insert_record
//! [`Store::take_record`]: crate::Store::take_record

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::session::{Authentication, AuthorizationSession, SessionState};
use crate::store::{Record, RecordKind};
use crate::types::{AccountId, ClientId, ResourceUri, Scope, TokenHash, UserCode};

/// The kind of a device request's record, keyed by the device code's SHA-256.
pub const DEVICE_CODE: RecordKind = RecordKind::new("device_code");

/// The kind of a user code's index record, keyed by the SHA-256 of its
/// letters; the value is the device code's hash.
pub const DEVICE_USER_CODE: RecordKind = RecordKind::new("device_user_code");

/// How much `slow_down` adds to the interval (RFC 8628 3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::seconds(5);

/// Where a device request is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeviceState {
    /// Waiting for the user.
    Pending,
    /// A logged-in user approved `scope` on the consent page that showed the
    /// user code.
    Approved {
        /// Who approved.
        account: AccountId,
        /// What the resource check allowed and the user approved.
        scope: Scope,
        /// The login behind the approval, for the ID token.
        authentication: Authentication,
    },
    /// The user, or the resource check, refused. An end: no tokens.
    Denied,
}

/// A device request as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    client_id: ClientId,
    scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceUri>,
    user_code: UserCode,
    /// When the device code stops working (`expires_in` after the request).
    #[serde(with = "time::serde::timestamp")]
    expires_at: OffsetDateTime,
    /// The current minimum time between polls, in seconds.
    interval: i64,
    /// When the device last polled.
    #[serde(default, with = "time::serde::timestamp::option", skip_serializing_if = "Option::is_none")]
    last_poll: Option<OffsetDateTime>,
    state: DeviceState,
    /// The peer address of an unauthenticated (public client's) request and
    /// the instant its entry in that address's pending count expires (its
    /// `expires_at`, kept here exactly, since `expires_at` is stored in whole
    /// seconds), while the request counts as pending: until it is decided or
    /// expires. Requests stored before issue 17d hold their creation time
    /// here, which matches no entry: they leave the count when they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opened_from: Option<(IpAddr, OffsetDateTime)>,
}

/// Whether a poll kept to the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// The first poll, or one at least the interval after the previous one.
    Kept,
    /// Sooner than the interval after the previous poll: `slow_down`.
    TooSoon,
}

impl DeviceRequest {
    /// A new pending request.
    pub(crate) fn new(
        client_id: ClientId,
        (scope, resource): (Scope, Option<ResourceUri>),
        user_code: UserCode,
        expires_at: OffsetDateTime,
        interval: Duration,
    ) -> Self {
        DeviceRequest {
            client_id,
            scope,
            resource,
            user_code,
            expires_at,
            interval: interval.whole_seconds(),
            last_poll: None,
            state: DeviceState::Pending,
            opened_from: None,
        }
    }

    /// The same request, counted as pending against `peer` until `until`.
    pub(crate) fn counted_from(self, peer: IpAddr, until: OffsetDateTime) -> Self {
        DeviceRequest { opened_from: Some((peer, until)), ..self }
    }

    /// The peer address the request counts as pending against and the
    /// instant its entry expires, if it was counted.
    pub(crate) fn opened_from(&self) -> Option<(IpAddr, OffsetDateTime)> {
        self.opened_from
    }

    /// The client the device code was issued to.
    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }
    /// The scope the device asked for.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }
    /// The resource (RFC 8707) the device asked for.
    pub fn resource(&self) -> Option<&ResourceUri> {
        self.resource.as_ref()
    }
    /// The user code.
    pub fn user_code(&self) -> &UserCode {
        &self.user_code
    }
    /// When the device code stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
    /// The current interval between polls.
    pub fn interval(&self) -> Duration {
        Duration::seconds(self.interval)
    }
    /// Where the request is.
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// The request after a poll at `now`, and whether the poll kept to the
    /// interval. The first poll always does; one that comes sooner than the
    /// interval after the previous one grows the interval by
    /// [`SLOW_DOWN_STEP`] for every later poll.
    pub(crate) fn polled(&self, now: OffsetDateTime) -> (Self, Pace) {
        let pace = match self.last_poll {
            Some(last) if now - last < self.interval() => Pace::TooSoon,
            _ => Pace::Kept,
        };
        let interval = match pace {
            Pace::TooSoon => self.interval + SLOW_DOWN_STEP.whole_seconds(),
            Pace::Kept => self.interval,
        };
        (DeviceRequest { last_poll: Some(now), interval, ..self.clone() }, pace)
    }

    /// The request as the user's decision in `session` leaves it: `session`
    /// must be the authorization session opened for this request (`key` is
    /// the device code's hash), in `Approved` (after the consent page) or
    /// `Denied`. Only a `Pending` request that has not expired takes a
    /// decision: there is no second approval, and no approval after a deny.
    pub(crate) fn decided_by(
        &self,
        key: &TokenHash,
        session: &AuthorizationSession,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let illegal = |to| Error::IllegalTransition { from: self.state_name(), to };
        if session.device_code() != Some(key) || session.client_id() != &self.client_id {
            return Err(illegal("Decided(another request's session)"));
        }
        if self.state != DeviceState::Pending {
            return Err(illegal("Decided"));
        }
        if now >= self.expires_at {
            return Err(Error::SessionExpired);
        }
        let state = match session.state() {
            SessionState::Approved { account, scope } => {
                let authentication = *session.authentication().ok_or(illegal("Approved(without a login)"))?;
                DeviceState::Approved { account: *account, scope: scope.clone(), authentication }
            }
            SessionState::Denied => DeviceState::Denied,
            _ => return Err(illegal("Decided(an undecided session)")),
        };
        Ok(DeviceRequest { state, ..self.clone() })
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            DeviceState::Pending => "Pending",
            DeviceState::Approved { .. } => "Approved",
            DeviceState::Denied => "Denied",
        }
    }

    /// The record that keeps this request under `key`, the device code's
    /// hash, until the code's lifetime (`ttl`) has passed twice.
    pub(crate) fn to_record(&self, key: TokenHash, ttl: Duration) -> Result<Record> {
        let value = serde_json::to_vec(self).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Record { kind: DEVICE_CODE, key, owner: None, value, expires_at: self.expires_at + ttl })
    }

    /// Reads a request back from its record.
    pub(crate) fn from_record(record: &Record) -> Result<Self> {
        if record.kind != DEVICE_CODE {
            return Err(Error::Internal("not a device request's record".into()));
        }
        serde_json::from_slice(&record.value)
            .map_err(|_| Error::Internal("a device request's record is corrupt".into()))
    }
}

/// The index record of `user_code`, naming the device request `device` (its
/// hash) until `expires_at`.
pub(crate) fn user_code_record(user_code: &UserCode, device: &TokenHash, expires_at: OffsetDateTime) -> Record {
    Record {
        kind: DEVICE_USER_CODE,
        key: user_code_key(user_code),
        owner: None,
        value: device.as_bytes().to_vec(),
        expires_at,
    }
}

/// The key of `user_code`'s index record.
pub(crate) fn user_code_key(user_code: &UserCode) -> TokenHash {
    TokenHash::of(&format!("user_code\0{}", user_code.letters()))
}

/// The device request an index record names.
pub(crate) fn indexed_device(record: &Record) -> Result<TokenHash> {
    let bytes: [u8; 32] =
        record.value.as_slice().try_into().map_err(|_| Error::Internal("a user code's record is corrupt".into()))?;
    Ok(TokenHash::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::device_session;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

    fn key() -> TokenHash {
        TokenHash::of("device-code")
    }

    fn pending() -> DeviceRequest {
        DeviceRequest::new(
            ClientId::parse("app").unwrap(),
            (Scope::parse("read write").unwrap(), None),
            UserCode::parse("BCDF-GHJK").unwrap(),
            T0 + Duration::seconds(600),
            Duration::seconds(5),
        )
    }

    fn approved_session() -> AuthorizationSession {
        let s = device_session(key()).authenticate(AccountId::from_random_bytes([1; 16]), login(), T0).unwrap();
        s.resource_checked(Scope::parse("read").unwrap(), T0).unwrap().approve(T0).unwrap()
    }

    fn login() -> Authentication {
        Authentication { auth_time: T0, sid: None }
    }

    fn illegal(r: Result<DeviceRequest>) -> bool {
        matches!(r, Err(Error::IllegalTransition { .. }))
    }

    #[test]
    fn the_first_poll_is_never_too_soon_and_each_early_poll_adds_five_seconds() {
        let (first, pace) = pending().polled(T0);
        assert_eq!(pace, Pace::Kept);
        let (on_time, pace) = first.polled(T0 + Duration::seconds(5));
        assert_eq!((pace, on_time.interval()), (Pace::Kept, Duration::seconds(5)));
        let (early, pace) = on_time.polled(T0 + Duration::seconds(9));
        assert_eq!((pace, early.interval()), (Pace::TooSoon, Duration::seconds(10)));
        let (still_early, pace) = early.polled(T0 + Duration::seconds(18));
        assert_eq!((pace, still_early.interval()), (Pace::TooSoon, Duration::seconds(15)), "the grown interval holds");
        let (kept, pace) = still_early.polled(T0 + Duration::seconds(33));
        assert_eq!((pace, kept.interval()), (Pace::Kept, Duration::seconds(15)), "and never shrinks");
    }

    #[test]
    fn only_the_approved_session_of_this_request_approves_it() {
        let approved = pending().decided_by(&key(), &approved_session(), T0).unwrap();
        assert!(matches!(approved.state(), DeviceState::Approved { scope, .. } if scope.to_string() == "read"));
        let other = device_session(TokenHash::of("another device"));
        let other = other.authenticate(AccountId::from_random_bytes([1; 16]), login(), T0).unwrap();
        let other = other.resource_checked(Scope::parse("read").unwrap(), T0).unwrap().approve(T0).unwrap();
        assert!(illegal(pending().decided_by(&key(), &other, T0)), "another request's session");
        let checked = device_session(key()).authenticate(AccountId::from_random_bytes([1; 16]), login(), T0).unwrap();
        assert!(illegal(pending().decided_by(&key(), &checked, T0)), "a session that has not approved");
        assert!(illegal(pending().decided_by(&key(), &device_session(key()), T0)), "nobody logged in");
    }

    #[test]
    fn a_device_request_is_decided_once_and_never_approved_after_a_deny() {
        let approved = pending().decided_by(&key(), &approved_session(), T0).unwrap();
        assert!(illegal(approved.decided_by(&key(), &approved_session(), T0)), "no second approval");
        let denied = pending().decided_by(&key(), &device_session(key()).deny(T0).unwrap(), T0).unwrap();
        assert_eq!(denied.state(), &DeviceState::Denied);
        assert!(illegal(denied.decided_by(&key(), &approved_session(), T0)), "no approval after a deny");
    }

    #[test]
    fn an_expired_device_request_takes_no_decision() {
        let late = T0 + Duration::seconds(600);
        assert_eq!(pending().decided_by(&key(), &approved_session(), late), Err(Error::SessionExpired));
    }

    #[test]
    fn a_device_request_survives_its_record_and_the_record_outlives_the_code() {
        let (polled, _) = pending().decided_by(&key(), &approved_session(), T0).unwrap().polled(T0);
        let record = polled.to_record(key(), Duration::seconds(600)).unwrap();
        assert_eq!(record.expires_at, T0 + Duration::seconds(1200));
        assert_eq!(DeviceRequest::from_record(&record).unwrap(), polled);
        let index = user_code_record(polled.user_code(), &key(), polled.expires_at());
        assert_eq!(indexed_device(&index).unwrap(), key());
        assert_eq!(index.expires_at, T0 + Duration::seconds(600), "the user code is free again at expiry");
    }

    #[test]
    fn a_waiting_device_costs_two_small_records() {
        // docs/benchmarks.md quotes these sizes for a million waiting devices.
        let (polled, _) = pending().polled(T0);
        let record = polled.to_record(key(), Duration::seconds(600)).unwrap();
        let index = user_code_record(polled.user_code(), &key(), polled.expires_at());
        assert!(record.value.len() <= 160, "{} bytes: {}", record.value.len(), String::from_utf8_lossy(&record.value));
        assert_eq!(index.value.len(), 32);
        println!("device request value: {} bytes; user code value: {} bytes", record.value.len(), index.value.len());
    }
}
