//! Brute-force throttling of logins, password grants and client authentication,
//! and the cap on unauthenticated authorization sessions per address.
//!
//! An attempt is counted **before** its check runs, atomically in the store
//! ([`Store::count_attempt`](crate::Store::count_attempt)), against every
//! subject it concerns:
//!
//! - the account name (or confidential `client_id`) from this peer address,
//!   up to `max_failures_per_account`;
//! - the account name (or client) from every address together, up to
//!   `max_failures_per_account_total`, so that a stranger elsewhere cannot lock
//!   a user out with ten requests;
//! - the peer address, up to `max_failures_per_ip`.
//!
//! A public client has no secret to guess, and an unknown `client_id` names
//! nobody: requests naming them count per address only, never against the
//! id. A counted attempt is *pending* while its check runs; when the check
//! passes it is taken back, when it fails it stays counted as a failure. So of
//! any number of concurrent attempts, at most the limit are ever checked, and a
//! burst cannot slip a guess past it.
//!
//! When failures fill a limit, every attempt is refused with
//! [`Error::Throttled`], correct credentials included, until the oldest
//! failure leaves the window. When pending attempts fill what the failures
//! leave, the attempt is not refused but told to wait
//! ([`Error::ThrottleBusy`]): the front end tries again when one settles, so
//! legitimate concurrent requests (a busy confidential client, a load test)
//! are queued, never failed, while a burst of guesses still gets no more than
//! the limit checked.
//!
//! A request can be cancelled between its count and its outcome (the client
//! hangs up, and the front end drops the request's future). Its counts would
//! then stay pending until the window ends, making everyone after it wait.
//! So a counted attempt that is dropped unsettled leaves its keys to
//! [`Orphans`], and the next throttled request takes them back first. So does
//! one cancelled while its count is in flight: a database may commit a
//! statement whose caller is gone, so the keys are held from before the
//! store call. Taking them back, not failing them, is safe: a cancelled
//! request's answer reached nobody, and the old throttle, which counted after
//! the check, forgot such an attempt too.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::authority::Authority;
use crate::error::{Error, ErrorCode, Result};
use crate::services::{SecurityEvent, ThrottleSubject};
use crate::session::AuthorizationSession;
use crate::store::{Attempt, ThrottleKey};
use crate::types::TokenHash;

/// The `[throttle]` limits. A limit of 0 switches that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// The sliding window.
    pub window: Duration,
    /// Failures allowed per account name or confidential `client_id` from one
    /// peer address within the window.
    pub max_failures_per_account: u32,
    /// Failures allowed per account name or confidential `client_id` from all
    /// addresses together within the window.
    pub max_failures_per_account_total: u32,
    /// Failures allowed per peer address within the window.
    pub max_failures_per_ip: u32,
    /// Authorization sessions that no one has logged in to yet, per peer
    /// address, within the session lifetime.
    pub max_pending_per_ip: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            window: Duration::seconds(900),
            max_failures_per_account: 10,
            max_failures_per_account_total: 100,
            max_failures_per_ip: 1000,
            max_pending_per_ip: 1000,
        }
    }
}

/// Who an attempt is counted against, besides its peer address.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted<'a> {
    /// A username, known or not (counting only known names would tell a
    /// guesser which names exist).
    Account(&'a str),
    /// A confidential client's `client_id`.
    Client(&'a str),
    /// Nobody but the address: a public client, or an unknown `client_id`.
    AddressOnly,
}

/// An attempt counted against its subjects, waiting for its outcome: pass it
/// to [`Authority::throttle_release`] when the check succeeds (or could not
/// run), to [`Authority::throttle_failed`] when it fails. Dropped unsettled
/// (its request was cancelled), it leaves its counts to [`Orphans`].
#[derive(Debug)]
pub(crate) struct CountedAttempt {
    keys: Vec<ThrottleKey>,
    at: OffsetDateTime,
    orphans: Arc<Orphans>,
}

impl Drop for CountedAttempt {
    fn drop(&mut self) {
        if !self.keys.is_empty() {
            self.orphans.leave(std::mem::take(&mut self.keys), self.at);
        }
    }
}

/// Counts left pending by requests cancelled mid-check, to be taken back by
/// the next throttled request.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// Set while `left` may hold something, so the common case costs one load.
    any: AtomicBool,
    left: Mutex<Vec<(Vec<ThrottleKey>, OffsetDateTime)>>,
}

impl Orphans {
    fn leave(&self, keys: Vec<ThrottleKey>, at: OffsetDateTime) {
        self.left.lock().unwrap_or_else(PoisonError::into_inner).push((keys, at));
        self.any.store(true, Ordering::Release);
    }

    fn pop(&self) -> Option<(Vec<ThrottleKey>, OffsetDateTime)> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let mut left = self.left.lock().unwrap_or_else(PoisonError::into_inner);
        let next = left.pop();
        if left.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        next
    }
}

/// A subject's key: the SHA-256 of `parts` joined. Distinct prefixes keep an
/// account named like a client from sharing its counter, the address comes
/// before the name so that no name can imitate another pair, and hashing
/// bounds the key size whatever the input.
fn key(parts: &[&str]) -> ThrottleKey {
    let digest = parts.iter().fold(Sha256::new(), |h, part| h.chain_update(part.as_bytes())).finalize();
    ThrottleKey(TokenHash::from_bytes(digest.into()))
}

impl Authority {
    /// Counts an attempt by `who` from `peer` against all of its subjects, or
    /// none, before its check runs. Refused with [`Error::Throttled`]
    /// (carrying `code`) when failures fill a subject's limit, and with
    /// [`Error::ThrottleBusy`] when attempts still being checked fill the rest.
    pub(crate) async fn throttle_count(
        &self,
        who: Counted<'_>,
        peer: Option<IpAddr>,
        code: ErrorCode,
    ) -> Result<CountedAttempt> {
        let s = self.settings.throttle;
        let now = self.now();
        // Without a peer address (a library caller that has none) every
        // attempt comes from the same unknown place; the per-address limit
        // then does not apply, since it would be one limit for everybody.
        let from = peer.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        let mut subjects = Vec::with_capacity(3);
        let (named, subject) = match who {
            Counted::Account(name) => (Some(("account", name)), ThrottleSubject::Account),
            Counted::Client(id) => (Some(("client", id)), ThrottleSubject::Client),
            Counted::AddressOnly => (None, ThrottleSubject::Address),
        };
        if let Some((kind, name)) = named {
            subjects.push((key(&[kind, "-from\0", &from, "\0", name]), s.max_failures_per_account));
            subjects.push((key(&[kind, "\0", name]), s.max_failures_per_account_total));
        }
        if peer.is_some() {
            subjects.push((key(&["peer\0", &from]), s.max_failures_per_ip));
        }
        self.adopt_orphans().await;
        match self.count_all(&subjects, now, s.window, code).await {
            Ok(attempt) => Ok(attempt),
            Err(refused @ Error::Throttled { .. }) => {
                // The store does not say which limit is full; the event names
                // the account or client the attempt was for, or the address
                // when it named nobody.
                self.report(SecurityEvent::ThrottleLockout { subject, peer });
                Err(refused)
            }
            Err(other) => Err(other),
        }
    }

    fn counted(&self, keys: Vec<ThrottleKey>, at: OffsetDateTime) -> CountedAttempt {
        CountedAttempt { keys, at, orphans: self.orphans.clone() }
    }

    /// Takes back the counts that cancelled requests left pending.
    async fn adopt_orphans(&self) {
        while let Some((keys, at)) = self.orphans.pop() {
            // Wrapped again, so that being cancelled here leaves them to the
            // next request rather than losing them.
            self.throttle_release(self.counted(keys, at)).await;
        }
    }

    /// The check passed, or could not run (the store failed): the attempt was
    /// no failure, so its counts are taken back.
    pub(crate) async fn throttle_release(&self, mut attempt: CountedAttempt) {
        self.uncount_all(&attempt.keys, attempt.at).await;
        // Settled only once the store has answered: cancelled before, the
        // attempt is still an orphan to take back.
        attempt.keys.clear();
    }

    /// The check failed: the attempt stays counted, as a failure.
    pub(crate) async fn throttle_failed(&self, mut attempt: CountedAttempt) {
        if attempt.keys.is_empty() {
            return;
        }
        // Left pending, the count still fills its slots until the window
        // ends, so an error here never lets another guess through.
        let _ = self.services.store.fail_attempt(&attempt.keys, attempt.at).await;
        attempt.keys.clear();
    }

    /// Counts a new unauthenticated session opened from `peer` at `at`,
    /// refusing it past `max_pending_per_ip` within the session lifetime.
    pub(crate) async fn pending_count(&self, peer: IpAddr, at: OffsetDateTime) -> Result<()> {
        let key = pending_key(peer);
        let subject = [(key, self.settings.throttle.max_pending_per_ip)];
        // A session opened at `t` lives while `now < t + session_ttl`, so it
        // counts while `t > now - session_ttl`: a window one tick shorter.
        let window = self.settings.session_ttl - Duration::NANOSECOND;
        self.adopt_orphans().await;
        match self.count_all(&subject, at, window, ErrorCode::TemporarilyUnavailable).await {
            // A pending session is no check that settles soon: it is counted
            // as settled at once, so a full cap refuses rather than waits.
            Ok(attempt) => {
                self.throttle_failed(attempt).await;
                Ok(())
            }
            Err(Error::Throttled { retry_after, .. }) => Err(Error::TooManyPending { retry_after }),
            // Only while a concurrent request is between its count and the
            // line above, which it reaches at once.
            Err(Error::ThrottleBusy { .. }) => Err(Error::TooManyPending { retry_after: 1 }),
            Err(other) => Err(other),
        }
    }

    /// Takes back the pending session opened from `peer` at `at`: someone
    /// logged in to it, or it was never stored.
    pub(crate) async fn pending_done(&self, peer: IpAddr, at: OffsetDateTime) {
        if self.settings.throttle.max_pending_per_ip > 0 {
            self.uncount_all(&[pending_key(peer)], at).await;
        }
    }

    /// Takes back `session`'s place among the pending sessions of the address
    /// that opened it: someone logged in to it, it ended without a login
    /// (`prompt=none`), or it was never stored. Every path that ends a
    /// pending session comes here once.
    pub(crate) async fn pending_settled(&self, session: &AuthorizationSession) {
        if let Some(peer) = session.opened_from() {
            self.pending_done(peer, session.created_at()).await;
        }
    }

    /// Counts at `now` against every `(key, limit)` (limits of 0 are off), in
    /// one store call; the attempt counted.
    async fn count_all(
        &self,
        subjects: &[(ThrottleKey, u32)],
        now: OffsetDateTime,
        window: Duration,
        code: ErrorCode,
    ) -> Result<CountedAttempt> {
        let on: Vec<(ThrottleKey, u32)> = subjects.iter().copied().filter(|(_, limit)| *limit > 0).collect();
        // Made before the store call and held across it: a request cancelled
        // while its count is in flight (a database may still commit it) leaves
        // the keys to the orphans, so the count cannot stay pending until the
        // window ends. Taking back an attempt that was never counted changes
        // nothing, since no other attempt has this one's instant.
        let mut attempt = self.counted(on.iter().map(|(key, _)| *key).collect(), now);
        if on.is_empty() {
            return Ok(attempt);
        }
        let counted = self.services.store.count_attempt(&on, now, now - window).await;
        if !matches!(counted, Ok(Attempt::Counted)) {
            // Refused, busy or failed: nothing was counted.
            attempt.keys.clear();
        }
        match counted? {
            Attempt::Counted => Ok(attempt),
            Attempt::Refused { until } => {
                let wait = (until - now).whole_seconds().max(1);
                Err(Error::Throttled { retry_after: u64::try_from(wait).unwrap_or(1), code })
            }
            _ => Err(Error::ThrottleBusy { code }),
        }
    }

    async fn uncount_all(&self, keys: &[ThrottleKey], at: OffsetDateTime) {
        if keys.is_empty() {
            return;
        }
        // A count that cannot be taken back stays counted until it leaves
        // the window: the error errs on the side of refusing, and failing the
        // request for it would turn a correct password into an error page.
        let _ = self.services.store.uncount_attempt(keys, at).await;
    }
}

fn pending_key(peer: IpAddr) -> ThrottleKey {
    key(&["pending\0", &peer.to_string()])
}
