//! Review of issue 17: the throttle's waiting attempts were one list per
//! node, and every settle woke them all, so each settle cost a store read per
//! waiter whatever key it was on. Waiters now wait on the keys that were
//! full, and only a settle on one of those wakes them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::OffsetDateTime;

/// The memory store, counting the throttle's reads of failures.
#[derive(Debug, Default)]
struct CountedReads {
    inner: MemStore,
    reads: AtomicUsize,
}

macro_rules! counted_reads {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl Store for CountedReads {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                counted_reads!(@body self $m $($a)*)
            })*
        }
    };
    (@body $self:ident failures $($a:ident)*) => {{
        $self.reads.fetch_add(1, Ordering::SeqCst);
        $self.inner.failures($($a),*).await
    }};
    (@body $self:ident $m:ident $($a:ident)*) => {
        $self.inner.$m($($a),*).await
    };
}
oauth_core::with_store_methods!(counted_reads);

/// The verifier holds the password `held` until released, and answers every
/// other password at once.
#[derive(Debug)]
struct HoldsOne {
    gate: tokio::sync::Semaphore,
    entered: AtomicUsize,
}

#[async_trait]
impl SecretVerifier for HoldsOne {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool> {
        if presented == "held" {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let _permit = self.gate.acquire().await.map_err(|_| Error::Internal("gate closed".into()))?;
        }
        Ok(stored.and_then(|h| h.as_str().strip_prefix("plain:")).is_some_and(|s| s == presented))
    }
}

fn ip(last: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

async fn settle_in() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_settle_on_one_key_wakes_no_waiter_of_another() {
    let store = Arc::new(CountedReads::default());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let verifier = Arc::new(HoldsOne { gate: tokio::sync::Semaphore::new(0), entered: AtomicUsize::new(0) });
    let mut settings = f.authority.settings().clone();
    settings.throttle.max_failures_per_account = 2;
    let authority =
        Arc::new(Authority::new(settings, Services { verifier: verifier.clone(), ..f.authority.services().clone() }));
    let login = |password: &'static str, peer| {
        let a = authority.clone();
        tokio::spawn(async move {
            let (session, _) = a.authorize(&Fixture::public_request(), None, None).await.unwrap();
            a.login(session.id(), USERNAME, password, peer).await
        })
    };

    // From one address, two guesses fill the account's limit there with
    // checks still running, and eight more wait for them.
    let checked: Vec<_> = (0..2).map(|_| login("held", ip(2))).collect();
    while verifier.entered.load(Ordering::SeqCst) < 2 {
        settle_in().await;
    }
    let waiting: Vec<_> = (0..8).map(|_| login("held", ip(2))).collect();
    settle_in().await;
    assert_eq!(verifier.entered.load(Ordering::SeqCst), 2, "the limit there is full of checks");
    assert!(waiting.iter().all(|t| !t.is_finished()));

    // Five failures of the same account from five other addresses settle
    // five times: each reads its own three counters, and no waiter above
    // reads anything (before the fix each settle cost 8 × 3 more reads).
    let before = store.reads.load(Ordering::SeqCst);
    for peer in 10..15 {
        let outcome = login("wrong", ip(peer)).await.unwrap();
        assert!(matches!(outcome, Err(Error::InvalidGrant(_))), "{outcome:?}");
    }
    settle_in().await;
    assert_eq!(store.reads.load(Ordering::SeqCst) - before, 5 * 3, "only the five attempts' own reads");

    // Their own key's settles do wake them: the two held guesses fail, fill
    // the limit, and every waiter is then refused.
    verifier.gate.add_permits(1 << 20);
    for t in checked {
        assert!(matches!(t.await.unwrap(), Err(Error::InvalidGrant(_))));
    }
    for t in waiting {
        let outcome = t.await.unwrap();
        assert!(matches!(outcome, Err(Error::Throttled { .. })), "past the limit: {outcome:?}");
    }
}

/// The verifier holds every check until a permit is released, then passes
/// it: the right password of a busy account, or the crowd a user with valid
/// credentials builds on purpose.
#[derive(Debug)]
struct HoldsAllThenPasses {
    gate: tokio::sync::Semaphore,
    entered: AtomicUsize,
}

#[async_trait]
impl SecretVerifier for HoldsAllThenPasses {
    async fn verify(&self, _stored: Option<&SecretHash>, _presented: &str) -> Result<bool> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let permit = self.gate.acquire().await.map_err(|_| Error::Internal("gate closed".into()))?;
        permit.forget();
        Ok(true)
    }
}

/// Review of 17d: waiters are listed per key, but a settle still wakes every
/// waiter of its key, so the crowd on one key (the account a user with valid
/// credentials floods, or a busy client) costs each settle on that key a
/// store read per waiter and subject, and its re-listing a scan of the
/// key's list per waiter (O(W²) under the node's lock), though one settle
/// frees at most one place.
#[tokio::test]
async fn a_settle_that_frees_one_place_wakes_one_waiter_not_the_crowd_of_its_key() {
    let store = Arc::new(CountedReads::default());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let verifier = Arc::new(HoldsAllThenPasses { gate: tokio::sync::Semaphore::new(0), entered: AtomicUsize::new(0) });
    let mut settings = f.authority.settings().clone();
    settings.throttle.max_failures_per_account = 2;
    let authority =
        Arc::new(Authority::new(settings, Services { verifier: verifier.clone(), ..f.authority.services().clone() }));
    let login = || {
        let a = authority.clone();
        tokio::spawn(async move {
            let (session, _) = a.authorize(&Fixture::public_request(), None, None).await.unwrap();
            a.login(session.id(), USERNAME, PASSWORD, ip(2)).await
        })
    };
    // Two right passwords fill the account's places from one address with
    // checks still running; eight more wait on that key.
    let tasks: Vec<_> = (0..10).map(|_| login()).collect();
    while verifier.entered.load(Ordering::SeqCst) < 2 {
        settle_in().await;
    }
    settle_in().await;
    assert_eq!(verifier.entered.load(Ordering::SeqCst), 2, "the two places are full of checks");

    // One check passes: one place frees, and one waiter can take it.
    let before = store.reads.load(Ordering::SeqCst);
    verifier.gate.add_permits(1);
    while verifier.entered.load(Ordering::SeqCst) < 3 {
        settle_in().await;
    }
    settle_in().await;
    let reads = store.reads.load(Ordering::SeqCst) - before;
    assert!(reads <= 2 * 3, "one place freed, yet {reads} reads: every waiter of the key looked again");

    verifier.gate.add_permits(1 << 20);
    for t in tasks {
        assert!(t.await.unwrap().is_ok());
    }
}

/// A settle wakes one waiter, but a settle that records a failure may turn
/// every waiter of its key into a refusal: each refused waiter passes the
/// wake on, so all are answered at once, one after another, and none is left
/// waiting for a settle that never comes (over HTTP, for the 30 s bound).
#[tokio::test]
async fn a_settle_that_records_a_failure_still_answers_every_waiter_of_its_key() {
    let store = Arc::new(CountedReads::default());
    let f = Fixture::new(store.clone(), None).await.unwrap();
    let verifier = Arc::new(HoldsOne { gate: tokio::sync::Semaphore::new(0), entered: AtomicUsize::new(0) });
    let mut settings = f.authority.settings().clone();
    settings.throttle.max_failures_per_account = 2;
    let authority =
        Arc::new(Authority::new(settings, Services { verifier: verifier.clone(), ..f.authority.services().clone() }));
    let login = |password: &'static str| {
        let a = authority.clone();
        tokio::spawn(async move {
            let (session, _) = a.authorize(&Fixture::public_request(), None, None).await.unwrap();
            a.login(session.id(), USERNAME, password, ip(3)).await
        })
    };

    // Two wrong guesses fill the account's places from one address, their
    // checks held; eight logins with the right password wait on that key.
    let guesses: Vec<_> = (0..2).map(|_| login("held")).collect();
    while verifier.entered.load(Ordering::SeqCst) < 2 {
        settle_in().await;
    }
    let waiting: Vec<_> = (0..8).map(|_| login(PASSWORD)).collect();
    settle_in().await;
    assert!(waiting.iter().all(|t| !t.is_finished()), "the places are full of checks");

    // Both guesses fail: their two failures fill the limit, and two settles
    // wake one waiter each. Every waiter is still answered, each with the
    // refusal its own read finds.
    verifier.gate.add_permits(1 << 20);
    for t in guesses {
        assert!(matches!(t.await.unwrap(), Err(Error::InvalidGrant(_))));
    }
    for t in waiting {
        let outcome = tokio::time::timeout(Duration::from_secs(5), t).await;
        let outcome = outcome.expect("a waiter was left waiting").unwrap();
        assert!(matches!(outcome, Err(Error::Throttled { .. })), "past the limit: {outcome:?}");
    }
}
