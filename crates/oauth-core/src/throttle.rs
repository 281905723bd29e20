//! Brute-force throttling of logins, password grants and client authentication.
//!
//! Failures are counted per account name (or `client_id`) and per peer address
//! over a sliding window. Up to the limit, failures get their normal error with
//! no added delay. Past it, every attempt for that account, client or address
//! is refused with [`Error::Throttled`], correct credentials included, until the
//! oldest counted failure leaves the window. Counters live in the store so that
//! nodes share them.

use std::net::IpAddr;

use time::Duration;

use crate::authority::Authority;
use crate::error::{Error, ErrorCode, Result};
use crate::services::{SecurityEvent, ThrottleSubject};
use crate::store::ThrottleKey;
use crate::types::TokenHash;

/// The `[throttle]` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// The sliding window.
    pub window: Duration,
    /// Failures allowed per account name or `client_id` within the window.
    pub max_failures_per_account: u32,
    /// Failures allowed per peer address within the window.
    pub max_failures_per_ip: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings { window: Duration::seconds(900), max_failures_per_account: 10, max_failures_per_ip: 1000 }
    }
}

/// What a failure is counted against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted<'a> {
    /// A username, known or not.
    Account(&'a str),
    /// A `client_id`, known or not.
    Client(&'a str),
    /// The peer address (the TCP peer, or the forwarded one from a trusted proxy).
    Peer(IpAddr),
}

impl Counted<'_> {
    fn key(&self) -> ThrottleKey {
        // Distinct prefixes keep an account named like a client from sharing its
        // counter; hashing bounds the key size whatever the input.
        let raw = match self {
            Counted::Account(name) => format!("account\0{name}"),
            Counted::Client(id) => format!("client\0{id}"),
            Counted::Peer(ip) => format!("peer\0{ip}"),
        };
        ThrottleKey(TokenHash::of(&raw))
    }

    /// Which limit this is, for the lockout event.
    fn subject(&self) -> ThrottleSubject {
        match self {
            Counted::Account(_) => ThrottleSubject::Account,
            Counted::Client(_) => ThrottleSubject::Client,
            Counted::Peer(_) => ThrottleSubject::Address,
        }
    }

    fn limit(&self, s: &ThrottleSettings) -> u32 {
        match self {
            Counted::Account(_) | Counted::Client(_) => s.max_failures_per_account,
            Counted::Peer(_) => s.max_failures_per_ip,
        }
    }
}

impl Authority {
    /// Refuses the attempt when any subject is past its limit. `code` is the
    /// error the 429 body carries.
    pub(crate) async fn throttle_check(&self, subjects: &[Counted<'_>], code: ErrorCode) -> Result<()> {
        let s = self.settings.throttle;
        let now = self.now();
        let since = now - s.window;
        let mut retry_after = 0u64;
        let mut locked = None;
        for subject in subjects {
            let limit = subject.limit(&s) as usize;
            let failures = self.services.store.failures(&subject.key(), since).await?;
            if failures.len() >= limit && limit > 0 {
                // The attempt is allowed again once the oldest of the newest
                // `limit` failures leaves the window.
                let frees_at = failures[failures.len() - limit] + s.window;
                let wait = (frees_at - now).whole_seconds().max(1) as u64;
                retry_after = retry_after.max(wait);
                locked.get_or_insert(subject.subject());
            }
        }
        match locked {
            Some(subject) => {
                let peer = subjects.iter().find_map(|s| match s {
                    Counted::Peer(ip) => Some(*ip),
                    _ => None,
                });
                self.report(SecurityEvent::ThrottleLockout { subject, peer });
                Err(Error::Throttled { retry_after, code })
            }
            None => Ok(()),
        }
    }

    /// Counts one failure against every subject.
    pub(crate) async fn throttle_fail(&self, subjects: &[Counted<'_>]) -> Result<()> {
        let s = self.settings.throttle;
        let now = self.now();
        for subject in subjects {
            let keep = subject.limit(&s) as usize;
            self.services.store.record_failure(&subject.key(), now, now - s.window, keep).await?;
        }
        Ok(())
    }
}

/// The subjects of an attempt by `name` from `peer`.
pub(crate) fn subjects<'a>(who: Counted<'a>, peer: Option<IpAddr>) -> Vec<Counted<'a>> {
    let mut v = vec![who];
    v.extend(peer.map(Counted::Peer));
    v
}
