//! Brute-force throttling of logins, password grants, client authentication
//! and device user codes, and the one cap on what unauthenticated requests
//! leave pending per address (authorization sessions, a public client's
//! device requests and pushed requests; see [`Authority::pending_count`]).
//!
//! An attempt is throttled against every subject it concerns:
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
//! id.
//!
//! # Admission
//!
//! An attempt may run its check when, for each of its subjects, the failures
//! in the window plus the attempts **this node** is still checking stay under
//! the limit. Then it counts as pending on this node, in memory
//! ([`InFlight`]), until its check settles: a pass only takes it back; a
//! failure is first added to the store ([`Store::record_failure`], an atomic
//! add-and-read), then taken back. When failures alone fill a limit the
//! attempt is refused with [`Error::Throttled`] (429 with `Retry-After`),
//! correct credentials included, until the oldest failure that fills it leaves
//! the window. When this node's pending attempts fill what the failures
//! leave, the attempt waits here until an attempt on a key it found full
//! settles, then looks again: legitimate concurrent requests (a busy
//! confidential client, a load test) queue, never fail, and no store is
//! polled. Waiters are queued per key, so a settle wakes only the attempts
//! waiting on its own keys: a crowd waiting on one account costs nothing to
//! the settles of others (test
//! `throttle_waiters::a_settle_on_one_key_wakes_no_waiter_of_another`).
//!
//! A settle frees one place, so it wakes one waiter of each of its keys, the
//! first in its queue, not the crowd (test
//! `throttle_waiters::a_settle_that_frees_one_place_wakes_one_waiter_not_the_crowd_of_its_key`).
//! That waiter holds the wake until it leaves its wait, and then passes it
//! to the next waiter of the key whenever the reason it was woken still
//! stands, so no wake-up is lost:
//!
//! - refused, or dropped (its request cancelled, even before it ran): the
//!   freed place is unused, and the failure that may have refused it may
//!   refuse the next one too: the next is woken, each with its own read, so
//!   a settle that records a failure reaches every waiter of its key one
//!   after another (tests
//!   `throttle_waiters::a_settle_that_records_a_failure_still_answers_every_waiter_of_its_key`
//!   and `tests::a_woken_waiter_dropped_before_it_runs_passes_its_wake_on`);
//! - admitted: it took the place; the next is woken only if the key still
//!   has room;
//! - waiting again: the next is woken only if the key it was woken on has
//!   room. A key that is full again has an attempt of this node pending on
//!   it (failures alone filling it would refuse), whose settle wakes the
//!   queue again.
//!
//! An attempt that finds a key full and settles on it before it is queued
//! sees the settle in the key's `settled_at` and reads again.
//!
//! Only failures are written to the store: a request whose check passes
//! writes nothing for the throttle. Failures are read through the store,
//! which may keep each read for up to one second per node (SPEC-2; the
//! server's `throttle_cache` does so for PostgreSQL), and which updates that
//! copy at once from the answer of this node's own add.
//!
//! # The guarantee
//!
//! - **On one node, at most the limit are ever checked**: of any number of
//!   concurrent attempts on a subject, at most `limit` minus its failures run
//!   their check, since each is pending here until its failure is in this
//!   node's view of the store. (Every settle marks its keys; an attempt that
//!   read the failures before a settle on one of its keys reads them again,
//!   so no freed slot is counted twice.) The test `attacks::a_burst_of_password_guesses_gets_at_most_the_limit_checked`
//!   proves it over HTTP: 50 concurrent password grants, the right password
//!   at position 31, limit 10: no token, on sled and on PostgreSQL.
//! - **Across N nodes sharing a store, at most N × limit in the first
//!   second**: each node admits up to the limit on its own view, and sees the
//!   others' failures within the second its cached read may live. After that
//!   second every node refuses once the failures fill the limit.
//!
//! A request cancelled while its check runs (the client hangs up, and the
//! front end drops the request's future) drops its [`PendingAttempt`], which
//! takes its place back: nothing is left behind, in memory or in the store.
//!
//! # Failing closed
//!
//! A failure is never lost: when the store refuses its add (a timeout, an
//! outage), or the request is dropped while the add is on its way, the
//! failure is kept in this node's memory for the window and admission counts
//! it on top of the store's failures (tests
//! `throttle_fail_open::a_failure_the_store_refuses_still_counts_against_the_limit`
//! and `a_failure_whose_add_is_cancelled_still_counts_against_the_limit`).
//! The list is bounded ([`MAX_UNRECORDED`] times, oldest dropped first).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::authority::Authority;
use crate::error::{Error, ErrorCode, Result};
use crate::services::{SecurityEvent, ThrottleSubject};
use crate::session::AuthorizationSession;
use crate::store::ThrottleKey;
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
    /// Things pending from one peer address, all kinds together, each for
    /// its own lifetime: authorization sessions no one has logged in to yet,
    /// a public client's undecided device requests, and its unused pushed
    /// authorization requests.
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

/// The attempts this node is checking, per key: pure bookkeeping in memory,
/// shared by every request of the node.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    state: Mutex<InFlightState>,
    /// The id of the next attempt that may wait ([`Turn`]): ids grow with
    /// arrival, so a key's queue in id order is first come, first served.
    next_wait: AtomicU64,
}

#[derive(Debug, Default)]
struct InFlightState {
    /// What this node knows of each key some attempt holds, waits on or is
    /// admitting: kept while any of them does, then dropped (see
    /// [`KeyState::is_idle`]), so the map stays as small as the traffic.
    keys: HashMap<ThrottleKey, KeyState>,
    /// Moves at every settle, on any key. An attempt reads it with the
    /// failures ([`InFlight::snapshot`]), and a key's `settled_at` says
    /// whether a settle on that key came after.
    settles: u64,
    /// Failures this node could not add to the store (the add failed, or
    /// was cancelled before its answer came), per key: admission counts them
    /// on top of the store's, so that a store refusing writes never lets a
    /// guess past the limit. Times older than the window are dropped when
    /// read, and the whole list is bounded (see [`MAX_UNRECORDED`]).
    unrecorded: HashMap<ThrottleKey, Vec<OffsetDateTime>>,
    /// The number of times in `unrecorded`.
    unrecorded_len: usize,
    /// The attempts that are waiting, or were woken and have not yet left
    /// their wait, by id: listed from their first wait until their [`Turn`]
    /// ends.
    waits: HashMap<WaitId, Wait>,
}

/// An attempt that may wait for a settle ([`Turn`]), told apart from the
/// others in a key's queue even when two share a task (and so a waker).
type WaitId = u64;

/// An attempt's wait.
#[derive(Debug)]
struct Wait {
    /// The keys in whose queues it is, all full when it looked; empty once
    /// woken.
    queued: Vec<ThrottleKey>,
    /// Wakes its task.
    waker: Waker,
    /// The key whose freed place woke it, until it leaves its wait and
    /// passes the wake on or uses it (see the module docs).
    woken_by: Option<ThrottleKey>,
}

/// One key's attempts on this node.
#[derive(Debug, Default)]
struct KeyState {
    /// Attempts admitted and not yet settled.
    pending: u32,
    /// The value of [`InFlightState::settles`] at this key's latest settle.
    /// A read of the failures made before it may miss the failure of the
    /// attempt that settled, so an attempt that read before it reads again.
    settled_at: u64,
    /// Attempts that found this key full, waiting for one of its attempts to
    /// settle, first come first: a settle here wakes the first, and no
    /// other, since it frees one place on its own keys and none elsewhere.
    /// Waking more would cost each settle a store read per waiter for
    /// nothing. A set, so that an attempt leaves it in O(log W) wherever it
    /// stands.
    queue: BTreeSet<WaitId>,
    /// Attempts between their first read of the failures and their admission
    /// or refusal ([`Interest`]): while one is, a settle here must be
    /// remembered in `settled_at`, so the key's state is kept.
    interested: u32,
}

impl KeyState {
    /// Nothing holds, waits on or reads this key: its state may go, since
    /// every later attempt reads the failures after the last settle.
    fn is_idle(&self) -> bool {
        self.pending == 0 && self.interested == 0 && self.queue.is_empty()
    }
}

/// Most failures kept in memory for a store that refused them. Past it the
/// times older than the window go first, then the oldest: the store is then
/// refusing writes for a long time and many addresses are failing, and the
/// oldest failure is the one closest to leaving the window anyway.
const MAX_UNRECORDED: usize = 100_000;

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, InFlightState> {
        // Every update under the lock is whole before it is released.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `keys` as read by an attempt until the answer is dropped.
    fn interest(self: &Arc<Self>, keys: &[(ThrottleKey, u32)]) -> Interest {
        let keys: Vec<ThrottleKey> = keys.iter().map(|(key, _)| *key).collect();
        let mut state = self.lock();
        for key in &keys {
            state.keys.entry(*key).or_default().interested += 1;
        }
        Interest { in_flight: self.clone(), keys }
    }

    /// The settle counter, and this node's unrecorded failures of `keys`
    /// since `since`, read together: a failure kept here is kept before its
    /// attempt settles, so an admission none of whose keys settled since
    /// saw it.
    fn snapshot(&self, keys: &[(ThrottleKey, u32)], since: OffsetDateTime) -> (u64, Vec<Vec<OffsetDateTime>>) {
        let state = self.lock();
        let unrecorded = keys
            .iter()
            .map(|(key, _)| {
                state
                    .unrecorded
                    .get(key)
                    .map_or_else(Vec::new, |times| times.iter().copied().filter(|t| *t >= since).collect())
            })
            .collect();
        (state.settles, unrecorded)
    }

    /// Keeps a failure at `at` on `keys` that the store did not take, then
    /// settles the attempt, under one lock.
    fn keep_unrecorded_and_settle(&self, keys: &[ThrottleKey], at: OffsetDateTime, window: Duration) {
        {
            let mut state = self.lock();
            let since = at - window;
            if state.unrecorded_len.saturating_add(keys.len()) > MAX_UNRECORDED {
                state.prune(since);
            }
            while state.unrecorded_len.saturating_add(keys.len()) > MAX_UNRECORDED && state.drop_oldest() {}
            for key in keys {
                let times = state.unrecorded.entry(*key).or_default();
                times.retain(|t| *t >= since);
                times.push(at);
            }
            state.unrecorded_len = state.unrecorded.values().map(Vec::len).sum();
        }
        self.settle(keys);
    }

    /// Admits the attempt of `turn` on `subjects` whose failures, read while
    /// the settle counter was `seen`, are `failures`: counted as pending when
    /// none of its keys settled since and every subject has room for it.
    /// When some lack room, answers those to wait on.
    ///
    /// An attempt woken by a settle leaves its wait here, unless it must
    /// read again: admitted, it passes the wake on if the key that woke it
    /// still has room after it; told to wait, if that key is not full.
    fn admit(&self, subjects: &[(ThrottleKey, u32)], failures: &[usize], seen: u64, turn: &Turn) -> Admission {
        let mut woken = Vec::new();
        let admission = {
            let mut state = self.lock();
            let settled_since = |key: &ThrottleKey| state.keys.get(key).is_some_and(|k| k.settled_at > seen);
            if subjects.iter().any(|(key, _)| settled_since(key)) {
                // Still woken, if it was: it reads again with the wake.
                return Admission::ReadAgain;
            }
            let room = |state: &InFlightState, key: &ThrottleKey| {
                subjects.iter().zip(failures).any(|((subject, limit), failed)| {
                    let pending = state.keys.get(subject).map_or(0, |k| k.pending);
                    subject == key && failed.saturating_add(pending as usize) < *limit as usize
                })
            };
            let full: Vec<ThrottleKey> =
                subjects.iter().map(|(key, _)| *key).filter(|key| !room(&state, key)).collect();
            let woken_by = if turn.listed.load(Ordering::Relaxed) {
                state.waits.get_mut(&turn.id).and_then(|wait| wait.woken_by.take())
            } else {
                None
            };
            if full.is_empty() {
                for (key, _) in subjects {
                    state.keys.entry(*key).or_default().pending += 1;
                }
            }
            // The place that woke it is still free (not taken by itself, nor
            // by an attempt that came in between): the next waiter may have it.
            if let Some(key) = woken_by.filter(|key| room(&state, key)) {
                state.wake_next(&key, &mut woken);
            }
            if full.is_empty() { Admission::Admitted } else { Admission::Wait(full) }
        };
        for waker in woken {
            waker.wake();
        }
        admission
    }

    /// Takes back one pending attempt on each of `keys`, and wakes the first
    /// attempt waiting on each of those keys, and no other, to look again.
    fn settle(&self, keys: &[ThrottleKey]) {
        let mut woken = Vec::new();
        {
            let mut state = self.lock();
            state.settles = state.settles.wrapping_add(1);
            let now = state.settles;
            for key in keys {
                let Some(k) = state.keys.get_mut(key) else { continue };
                k.pending = k.pending.saturating_sub(1);
                k.settled_at = now;
                // A wait on several of these keys leaves every queue when the
                // first wakes it, so the next key wakes another attempt.
                state.wake_next(key, &mut woken);
                if state.keys.get(key).is_some_and(KeyState::is_idle) {
                    state.keys.remove(key);
                }
            }
        }
        for waker in woken {
            waker.wake();
        }
    }
}

/// An attempt's hold on its keys' state from its first read of the failures
/// until it is admitted or refused (or dropped): see [`KeyState::interested`].
struct Interest {
    in_flight: Arc<InFlight>,
    keys: Vec<ThrottleKey>,
}

impl Drop for Interest {
    fn drop(&mut self) {
        let mut state = self.in_flight.lock();
        for key in &self.keys {
            if let Some(k) = state.keys.get_mut(key) {
                k.interested = k.interested.saturating_sub(1);
                if k.is_idle() {
                    state.keys.remove(key);
                }
            }
        }
    }
}

impl InFlightState {
    /// Hands the place freed on `key` to the first attempt in its queue: it
    /// leaves every queue it is in, holds the wake (see [`Wait::woken_by`]),
    /// and its waker goes to `woken`, to be woken once the lock is released.
    /// With nobody queued, nothing is owed: an attempt that found `key` full
    /// and is not queued yet sees this settle in `settled_at`.
    fn wake_next(&mut self, key: &ThrottleKey, woken: &mut Vec<Waker>) {
        let Some(id) = self.keys.get_mut(key).and_then(|k| k.queue.pop_first()) else { return };
        let Some(wait) = self.waits.get_mut(&id) else { return };
        wait.woken_by = Some(*key);
        woken.push(wait.waker.clone());
        for other in std::mem::take(&mut wait.queued) {
            self.dequeue(&other, id);
        }
    }

    /// Takes the attempt `id` out of `key`'s queue, and the key's state with
    /// it when nothing else holds it.
    fn dequeue(&mut self, key: &ThrottleKey, id: WaitId) {
        if let Some(k) = self.keys.get_mut(key) {
            k.queue.remove(&id);
            if k.is_idle() {
                self.keys.remove(key);
            }
        }
    }

    /// Drops the unrecorded failures older than `since`.
    fn prune(&mut self, since: OffsetDateTime) {
        self.unrecorded.retain(|_, times| {
            times.retain(|t| *t >= since);
            !times.is_empty()
        });
        self.unrecorded_len = self.unrecorded.values().map(Vec::len).sum();
    }

    /// Drops the oldest unrecorded failure; false when there is none.
    fn drop_oldest(&mut self) -> bool {
        let oldest = self
            .unrecorded
            .iter()
            .filter_map(|(key, times)| times.iter().min().map(|t| (*t, *key)))
            .min_by_key(|(t, _)| *t);
        let Some((at, key)) = oldest else {
            return false;
        };
        if let Some(times) = self.unrecorded.get_mut(&key) {
            if let Some(i) = times.iter().position(|t| *t == at) {
                times.swap_remove(i);
            }
            if times.is_empty() {
                self.unrecorded.remove(&key);
            }
        }
        self.unrecorded_len = self.unrecorded_len.saturating_sub(1);
        true
    }
}

enum Admission {
    Admitted,
    /// These keys are full of this node's attempts still being checked.
    Wait(Vec<ThrottleKey>),
    ReadAgain,
}

std::thread_local! {
    /// Set when a poll ends in a wait for a slot (see [`take_throttle_wait`]).
    static SLOT_WAIT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Whether the future polled last on this thread ended its poll waiting for
/// a throttle slot, and if so a mark of its queue's progress: a value that
/// changes at every settle on a key it waits on, whether that settle wakes
/// it or an attempt ahead of it, and when it waits anew. Reading it clears
/// it.
///
/// For a front end that bounds only the wait for a slot: it clears this,
/// polls a throttled check, and reads it. `Some` means the check has not
/// started and holds no place, so dropping it after a wait in which the
/// mark did not change sheds nothing; `None` means the check is running (an
/// Argon2 verification in its queue, a store round trip), which must never
/// be cancelled for load. A waiter is woken only when its turn comes, so a
/// front end that times the wait polls it now and then to read the mark.
pub fn take_throttle_wait() -> Option<u64> {
    SLOT_WAIT.with(std::cell::Cell::take)
}

/// An attempt's place in the queues of the keys it waits on, from its first
/// read of the failures until it is admitted or refused, across all its
/// waits: it keeps its first-come place when it must wait again, and, ended
/// while woken (refused, or its request dropped), it passes the wake on.
struct Turn {
    in_flight: Arc<InFlight>,
    id: WaitId,
    /// Set once it waits: until then it has nothing in the shared state.
    listed: AtomicBool,
}

impl Turn {
    fn new(in_flight: &Arc<InFlight>) -> Self {
        let id = in_flight.next_wait.fetch_add(1, Ordering::Relaxed);
        Turn { in_flight: in_flight.clone(), id, listed: AtomicBool::new(false) }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.listed.load(Ordering::Relaxed) {
            return;
        }
        let mut woken = Vec::new();
        {
            let mut state = self.in_flight.lock();
            if let Some(wait) = state.waits.remove(&self.id) {
                for key in &wait.queued {
                    state.dequeue(key, self.id);
                }
                // Woken and not admitted (refused, failed to read, or
                // cancelled, even before it ran): the place that woke it is
                // unused, and a failure that refused it may refuse the next.
                if let Some(key) = wait.woken_by {
                    state.wake_next(&key, &mut woken);
                }
            }
        }
        for waker in woken {
            waker.wake();
        }
    }
}

/// Resolves once the attempt of `turn` is woken by a settle on one of `keys`
/// (or handed the wake by the attempt before it), or at once if one of them
/// settled after the settle counter was `seen`, before it was queued.
struct Settled<'a> {
    turn: &'a Turn,
    keys: Vec<ThrottleKey>,
    seen: u64,
    /// Set once it is in the keys' queues.
    queued: bool,
}

impl<'a> Settled<'a> {
    fn new(turn: &'a Turn, keys: Vec<ThrottleKey>, seen: u64) -> Self {
        Settled { turn, keys, seen, queued: false }
    }
}

impl Future for Settled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let id = this.turn.id;
        let mut state = this.turn.in_flight.lock();
        if this.queued {
            match state.waits.get_mut(&id) {
                Some(wait) if wait.woken_by.is_none() => {
                    if !wait.waker.will_wake(cx.waker()) {
                        wait.waker.clone_from(cx.waker());
                    }
                }
                // Its turn came.
                _ => return Poll::Ready(()),
            }
        } else {
            // A key whose state is gone went idle after a settle (the
            // attempt's interest keeps it otherwise), so that is a settle too.
            if this.keys.iter().any(|key| state.keys.get(key).is_none_or(|k| k.settled_at > this.seen)) {
                return Poll::Ready(());
            }
            let wait = state.waits.entry(id).or_insert_with(|| Wait {
                queued: Vec::new(),
                waker: cx.waker().clone(),
                woken_by: None,
            });
            if wait.woken_by.is_some() {
                // Still holding a wake it has not used: it reads again.
                return Poll::Ready(());
            }
            wait.queued.clone_from(&this.keys);
            wait.waker.clone_from(cx.waker());
            for key in &this.keys {
                state.keys.entry(*key).or_default().queue.insert(id);
            }
            this.turn.listed.store(true, Ordering::Relaxed);
            this.queued = true;
        }
        let progress =
            this.keys.iter().filter_map(|key| state.keys.get(key)).map(|k| k.settled_at).fold(this.seen, u64::max);
        SLOT_WAIT.with(|wait| wait.set(Some(progress)));
        Poll::Pending
    }
}

/// An attempt admitted on this node, its check running. Pass it to
/// [`Authority::throttle_failed`] when the check fails; dropping it (a pass,
/// an error, a cancelled request) takes its place back.
#[derive(Debug)]
pub(crate) struct PendingAttempt {
    keys: Vec<ThrottleKey>,
    window: Duration,
    in_flight: Arc<InFlight>,
    /// Set while its failure is on its way to the store: dropped with it
    /// still set (the add failed, or its future was cancelled), the failure
    /// is kept on this node instead of being lost.
    failing_at: Option<OffsetDateTime>,
}

impl Drop for PendingAttempt {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        match self.failing_at {
            // Fail closed: a failure the store did not confirm still counts
            // here. If the store took it after all, it counts twice for a
            // window, which only refuses sooner.
            Some(at) => self.in_flight.keep_unrecorded_and_settle(&self.keys, at, self.window),
            None => self.in_flight.settle(&self.keys),
        }
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
    /// Admits an attempt by `who` from `peer` before its check runs (see the
    /// module docs). Refused with [`Error::Throttled`] (carrying `code`) when
    /// failures fill a subject's limit; waits while this node's attempts
    /// still being checked fill the rest.
    pub(crate) async fn throttle_count(
        &self,
        who: Counted<'_>,
        peer: Option<IpAddr>,
        code: ErrorCode,
    ) -> Result<PendingAttempt> {
        let s = self.settings.throttle;
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
        subjects.retain(|(_, limit)| *limit > 0);
        let attempt =
            |keys| PendingAttempt { keys, window: s.window, in_flight: self.in_flight.clone(), failing_at: None };
        if subjects.is_empty() {
            return Ok(attempt(Vec::new()));
        }
        // Held until admitted or refused: settles on these keys are
        // remembered meanwhile, so that no read of the failures made before
        // one is trusted.
        let _interest = self.in_flight.interest(&subjects);
        // Dropped before the interest: a wake it passes on finds the keys'
        // queues still there.
        let turn = Turn::new(&self.in_flight);
        loop {
            let now = self.now();
            let (seen, unrecorded) = self.in_flight.snapshot(&subjects, now - s.window);
            let mut failed = Vec::with_capacity(subjects.len());
            let mut retry_after = None;
            for ((key, limit), kept_here) in subjects.iter().zip(unrecorded) {
                let mut failures = self.services.store.failures(key, now - s.window).await?;
                // The failures the store did not take count as well.
                if !kept_here.is_empty() {
                    failures.extend(kept_here);
                    failures.sort_unstable();
                }
                let limit = *limit as usize;
                if let Some(oldest) = failures.len().checked_sub(limit).and_then(|i| failures.get(i)) {
                    // Free again once the oldest of the newest `limit`
                    // failures leaves the window.
                    let wait = (*oldest + s.window - now).whole_seconds().max(1);
                    retry_after = Some(retry_after.unwrap_or(1).max(u64::try_from(wait).unwrap_or(1)));
                }
                failed.push(failures.len());
            }
            if let Some(retry_after) = retry_after {
                // The event names the account or client the attempt was for,
                // or the address when it named nobody.
                self.report(SecurityEvent::ThrottleLockout { subject, peer });
                return Err(Error::Throttled { retry_after, code });
            }
            match self.in_flight.admit(&subjects, &failed, seen, &turn) {
                Admission::Admitted => return Ok(attempt(subjects.iter().map(|(key, _)| *key).collect())),
                Admission::ReadAgain => {}
                // Full of this node's checks still running: one of them
                // settles soon, and then the failures are read again.
                Admission::Wait(keys) => Settled::new(&turn, keys, seen).await,
            }
        }
    }

    /// The check passed, or could not run: the attempt is no failure, and
    /// only its place is taken back.
    pub(crate) fn throttle_release(&self, attempt: PendingAttempt) {
        drop(attempt);
    }

    /// The check failed: the failure goes to the store against every subject
    /// (one add-and-read; the node's copy of the reads learns it from the
    /// answer), and only then is the attempt's place taken back, so that no
    /// attempt on this node can be admitted in between on a count without it.
    ///
    /// Fails closed: when the store refuses the add (its error is returned,
    /// a 503) or this future is dropped before the answer, the failure is
    /// kept in this node's memory for the window and counted by every
    /// admission here, so a store that cannot write never lets a guess past
    /// the limit.
    pub(crate) async fn throttle_failed(&self, mut attempt: PendingAttempt) -> Result<()> {
        if attempt.keys.is_empty() {
            return Ok(());
        }
        let now = self.now();
        attempt.failing_at = Some(now);
        let recorded = self.services.store.record_failure(&attempt.keys, now, now - attempt.window).await;
        if recorded.is_ok() {
            attempt.failing_at = None;
        }
        drop(attempt);
        recorded?;
        Ok(())
    }

    /// Counts one more thing pending from `peer` until `until`: an
    /// unauthenticated session, a public client's device request or pushed
    /// request. Refused with [`Error::TooManyPending`] when `peer` already
    /// has `max_pending_per_ip` things pending, whatever they are.
    ///
    /// One count per address, whose entries each carry their own expiry:
    /// the store's add-and-read list holds the instant each entry stops
    /// counting, and the entries still in the future are the ones pending.
    /// So each thing counts exactly its own lifetime (a device session whose
    /// code expires first leaves with the code), and a new kind of pending
    /// thing needs no count of its own. The add-and-read makes the count
    /// atomic across nodes: of concurrent additions, the ones that find the
    /// cap full take their entry back and are refused.
    pub(crate) async fn pending_count(&self, peer: IpAddr, until: OffsetDateTime) -> Result<()> {
        let cap = self.settings.throttle.max_pending_per_ip as usize;
        if cap == 0 {
            return Ok(());
        }
        let now = self.now();
        let key = pending_key(peer);
        // An entry counts while `now < until`: the store forgets the ones at
        // or before `now` and answers the later ones, oldest expiry first.
        let mut live = self
            .services
            .store
            .record_failure(&[key], until, now + Duration::NANOSECOND)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        if live.len() <= cap {
            return Ok(());
        }
        // Taken back at once; if that fails, it leaves when it expires.
        let _ = self.services.store.forget_failure(&[key], until).await;
        if let Some(own) = live.iter().position(|t| *t == until) {
            live.remove(own);
        }
        // The others fill the cap (or more, after a race): a place frees
        // when all but `cap - 1` of them have expired. With exactly `cap`,
        // that is when the earliest leaves.
        let frees_at = live.get(live.len().saturating_sub(cap)).copied().unwrap_or(until);
        Err(Error::TooManyPending { retry_after: seconds_until(now, frees_at) })
    }

    /// Takes back the entry counted by [`Authority::pending_count`] for
    /// `peer` until `until`: the thing was settled (logged in to, decided,
    /// used) or never stored.
    pub(crate) async fn pending_done(&self, peer: IpAddr, until: OffsetDateTime) {
        if self.settings.throttle.max_pending_per_ip > 0 {
            // An entry that cannot be taken back stays counted until it
            // expires: the error errs on the side of refusing.
            let _ = self.services.store.forget_failure(&[pending_key(peer)], until).await;
        }
    }

    /// Takes back `session`'s place among the pending sessions of the address
    /// that opened it: someone logged in to it, it ended without a login
    /// (`prompt=none`), or it was never stored. Every path that ends a
    /// pending session comes here once.
    pub(crate) async fn pending_settled(&self, session: &AuthorizationSession) {
        // `session` is the session as stored when it was opened (still
        // `Requested`): its expiry is the one it was counted until.
        if let Some(peer) = session.opened_from() {
            self.pending_done(peer, session.expires_at()).await;
        }
    }
}

/// The key of `peer`'s pending count. Its entries are expiry instants; the
/// keys of the counts before issue 17d (creation times, one count per kind)
/// had other names, so no old entry is read as an expiry.
fn pending_key(peer: IpAddr) -> ThrottleKey {
    key(&["pending-until\0", &peer.to_string()])
}

/// Whole seconds from `now` until `at`, rounded up and at least 1: a
/// `Retry-After` that never sends the client back before the place frees.
fn seconds_until(now: OffsetDateTime, at: OffsetDateTime) -> u64 {
    let wait = at - now;
    let whole = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
    u64::try_from(whole.max(1)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Wakes {
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// A wait polled with its own counting waker.
    struct Waiter<'a> {
        wait: Settled<'a>,
        wakes: Arc<Wakes>,
    }

    impl Waiter<'_> {
        fn poll(&mut self) -> Poll<()> {
            let waker = Waker::from(self.wakes.clone());
            Pin::new(&mut self.wait).poll(&mut Context::from_waker(&waker))
        }
    }

    /// Takes `key`'s one place.
    fn fill(in_flight: &Arc<InFlight>, key: ThrottleKey) {
        let subjects = [(key, 1)];
        let (seen, _) = in_flight.snapshot(&subjects, OffsetDateTime::UNIX_EPOCH);
        let turn = Turn::new(in_flight);
        assert!(matches!(in_flight.admit(&subjects, &[0], seen, &turn), Admission::Admitted));
    }

    /// Answers the attempt of `turn`, which must wait for `key`'s one place,
    /// taken already.
    fn wait_on(turn: &Turn, key: ThrottleKey) -> Waiter<'_> {
        let subjects = [(key, 1)];
        let (seen, _) = turn.in_flight.snapshot(&subjects, OffsetDateTime::UNIX_EPOCH);
        let Admission::Wait(full) = turn.in_flight.admit(&subjects, &[0], seen, turn) else {
            panic!("the one place is taken")
        };
        assert_eq!(full, [key]);
        let mut waiter = Waiter { wait: Settled::new(turn, full, seen), wakes: Arc::default() };
        assert!(waiter.poll().is_pending());
        waiter
    }

    #[test]
    fn a_settle_wakes_only_the_waiters_on_its_keys() {
        let in_flight = Arc::new(InFlight::default());
        let (a, b) = (key(&["a"]), key(&["b"]));
        let (turn_a, turn_b) = (Turn::new(&in_flight), Turn::new(&in_flight));
        fill(&in_flight, a);
        fill(&in_flight, b);
        let mut on_a = wait_on(&turn_a, a);
        let mut on_b = wait_on(&turn_b, b);
        in_flight.settle(&[a]);
        assert_eq!((on_a.wakes.count(), on_b.wakes.count()), (1, 0), "a settle on A wakes A's waiter only");
        assert!(on_a.poll().is_ready());
        assert!(on_b.poll().is_pending(), "B's waiter has nothing to look at");
        in_flight.settle(&[b]);
        assert_eq!(on_b.wakes.count(), 1);
        assert!(on_b.poll().is_ready());
    }

    #[test]
    fn a_settle_wakes_the_first_waiter_of_its_key_and_no_other() {
        let in_flight = Arc::new(InFlight::default());
        let a = key(&["a"]);
        let turns: Vec<Turn> = (0..3).map(|_| Turn::new(&in_flight)).collect();
        fill(&in_flight, a);
        let mut waiters: Vec<Waiter<'_>> = turns.iter().map(|turn| wait_on(turn, a)).collect();
        in_flight.settle(&[a]);
        let wakes = |waiters: &[Waiter<'_>]| waiters.iter().map(|w| w.wakes.count()).collect::<Vec<_>>();
        assert_eq!(wakes(&waiters), [1, 0, 0], "one place, one waiter, the first come");
        // Polled without its turn (a front end looking at the queue), a
        // waiter stays queued and is not woken.
        assert!(waiters[2].poll().is_pending());
        assert!(waiters[0].poll().is_ready());
        // The first takes the place: the next waits for the next settle.
        let seen = in_flight.lock().settles;
        assert!(matches!(in_flight.admit(&[(a, 1)], &[0], seen, &turns[0]), Admission::Admitted));
        assert_eq!(wakes(&waiters), [1, 0, 0]);
        in_flight.settle(&[a]);
        assert_eq!(wakes(&waiters), [1, 1, 0]);
    }

    #[test]
    fn a_woken_waiter_dropped_before_it_runs_passes_its_wake_on() {
        let in_flight = Arc::new(InFlight::default());
        let a = key(&["a"]);
        let (first, second) = (Turn::new(&in_flight), Turn::new(&in_flight));
        fill(&in_flight, a);
        let woken = wait_on(&first, a);
        let mut next = wait_on(&second, a);
        in_flight.settle(&[a]);
        assert_eq!((woken.wakes.count(), next.wakes.count()), (1, 0));
        // Its request is cancelled before the woken waiter is polled: the
        // place it was woken for goes to the next.
        drop(woken);
        drop(first);
        assert_eq!(next.wakes.count(), 1, "the wake was passed on");
        assert!(next.poll().is_ready());
    }

    #[test]
    fn a_woken_waiter_that_must_wait_again_passes_on_the_wake_of_a_key_with_room() {
        let in_flight = Arc::new(InFlight::default());
        let (a, b) = (key(&["a"]), key(&["b"]));
        let (both, on_b) = (Turn::new(&in_flight), Turn::new(&in_flight));
        let subjects = [(a, 1), (b, 1)];
        let (seen, _) = in_flight.snapshot(&subjects, OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(in_flight.admit(&subjects, &[0, 0], seen, &Turn::new(&in_flight)), Admission::Admitted));
        let Admission::Wait(full) = in_flight.admit(&subjects, &[0, 0], seen, &both) else { panic!("both are full") };
        let mut waiter = Waiter { wait: Settled::new(&both, full, seen), wakes: Arc::default() };
        assert!(waiter.poll().is_pending());
        let mut behind = wait_on(&on_b, b);
        // B frees: the attempt on both keys is first in B's queue.
        in_flight.settle(&[b]);
        assert_eq!((waiter.wakes.count(), behind.wakes.count()), (1, 0));
        assert!(waiter.poll().is_ready());
        drop(waiter);
        // A is still full: it waits again, and B's free place goes on.
        let seen = in_flight.lock().settles;
        assert!(matches!(in_flight.admit(&subjects, &[0, 0], seen, &both), Admission::Wait(full) if full == [a]));
        assert_eq!(behind.wakes.count(), 1);
        assert!(behind.poll().is_ready());
    }

    #[test]
    fn a_waiter_on_two_full_keys_is_woken_by_either_and_queued_once() {
        let in_flight = Arc::new(InFlight::default());
        let (a, b) = (key(&["a"]), key(&["b"]));
        let subjects = [(a, 1), (b, 1)];
        let turn = Turn::new(&in_flight);
        let (seen, _) = in_flight.snapshot(&subjects, OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(in_flight.admit(&subjects, &[0, 0], seen, &Turn::new(&in_flight)), Admission::Admitted));
        let Admission::Wait(full) = in_flight.admit(&subjects, &[0, 0], seen, &turn) else { panic!("both are full") };
        let mut waiter = Waiter { wait: Settled::new(&turn, full, seen), wakes: Arc::default() };
        assert!(waiter.poll().is_pending());
        assert!(waiter.poll().is_pending(), "polled again, it stays queued once per key");
        assert!(in_flight.lock().keys.values().all(|k| k.queue.len() == 1));
        in_flight.settle(&[b, a]);
        assert_eq!(waiter.wakes.count(), 1, "one settle on both keys wakes it once");
        assert!(in_flight.lock().keys.values().all(|k| k.queue.is_empty()), "woken, it left both queues");
        assert!(waiter.poll().is_ready());
    }

    #[test]
    fn a_settle_before_the_waiter_is_queued_lets_it_read_again() {
        let in_flight = Arc::new(InFlight::default());
        let a = key(&["a"]);
        let turn = Turn::new(&in_flight);
        let _interest = in_flight.interest(&[(a, 1)]);
        fill(&in_flight, a);
        let (seen, _) = in_flight.snapshot(&[(a, 1)], OffsetDateTime::UNIX_EPOCH);
        let Admission::Wait(full) = in_flight.admit(&[(a, 1)], &[0], seen, &turn) else { panic!("full") };
        // The place frees while nobody is queued yet: no one is woken.
        in_flight.settle(&[a]);
        let mut waiter = Waiter { wait: Settled::new(&turn, full, seen), wakes: Arc::default() };
        assert!(waiter.poll().is_ready(), "the settle came after its read: it reads again");
    }

    #[test]
    fn only_a_read_made_before_a_settle_on_its_own_keys_is_read_again() {
        let in_flight = Arc::new(InFlight::default());
        let (a, b) = (key(&["a"]), key(&["b"]));
        let turn = Turn::new(&in_flight);
        let (_a_read, _b_read) = (in_flight.interest(&[(a, 5)]), in_flight.interest(&[(b, 5)]));
        let (seen, _) = in_flight.snapshot(&[(a, 5)], OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(in_flight.admit(&[(a, 5)], &[0], seen, &turn), Admission::Admitted));
        in_flight.settle(&[a]);
        assert!(matches!(in_flight.admit(&[(b, 5)], &[0], seen, &turn), Admission::Admitted), "B did not settle since");
        assert!(matches!(in_flight.admit(&[(a, 5)], &[0], seen, &turn), Admission::ReadAgain), "A did");
    }

    #[test]
    fn the_state_of_a_key_goes_when_nothing_holds_waits_on_or_reads_it() {
        let in_flight = Arc::new(InFlight::default());
        let a = key(&["a"]);
        let turn = Turn::new(&in_flight);
        fill(&in_flight, a);
        let waiter = wait_on(&turn, a);
        let interest = in_flight.interest(&[(a, 1)]);
        in_flight.settle(&[a]);
        drop(waiter);
        drop(turn);
        assert!(!in_flight.lock().keys.is_empty(), "an attempt still reads A");
        drop(interest);
        assert!(in_flight.lock().keys.is_empty(), "then nothing is kept");
        assert!(in_flight.lock().waits.is_empty());
        // A wait cancelled before any settle leaves its key's queue.
        let turn = Turn::new(&in_flight);
        fill(&in_flight, a);
        let waiter = wait_on(&turn, a);
        drop(waiter);
        drop(turn);
        assert!(in_flight.lock().keys.get(&a).is_some_and(|k| k.queue.is_empty() && k.pending == 1));
        assert!(in_flight.lock().waits.is_empty());
        in_flight.settle(&[a]);
        assert!(in_flight.lock().keys.is_empty());
    }
}
