//! Review of issue 17: a failed check whose failure the store cannot take
//! must still count on this node. Today `throttle_failed` frees the attempt's
//! place whether or not the add succeeded, so when the store refuses the add
//! (PostgreSQL past `store_timeout`, say) every wrong guess is answered 503,
//! nothing is counted, and guesses past the limit are checked: the right
//! password at position 31 gets a token.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::OffsetDateTime;

/// The memory store, except that every add of a failure is refused, as a
/// busy store refuses a write past `store_timeout`.
#[derive(Debug, Default)]
struct AddsRefused {
    inner: MemStore,
}

macro_rules! adds_refused {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl Store for AddsRefused {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                adds_refused!(@body self $m $($a)*)
            })*
        }
    };
    (@body $self:ident record_failure $($a:ident)*) => {{
        let _ = ($($a,)*);
        Err(StoreError::Unavailable("timed out waiting for the store".into()))
    }};
    (@body $self:ident $m:ident $($a:ident)*) => {
        $self.inner.$m($($a),*).await
    };
}
oauth_core::with_store_methods!(adds_refused);

/// Counts the checks that reach the verifier.
#[derive(Debug, Default)]
struct Counted {
    checks: AtomicUsize,
}

#[async_trait]
impl SecretVerifier for Counted {
    async fn verify(&self, stored: Option<&SecretHash>, presented: &str) -> Result<bool> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        Ok(stored.and_then(|h| h.as_str().strip_prefix("plain:")).is_some_and(|s| s == presented))
    }
}

#[tokio::test]
async fn a_failure_the_store_refuses_still_counts_against_the_limit() {
    let f = Fixture::new(Arc::new(AddsRefused::default()), None).await.unwrap();
    let counted = Arc::new(Counted::default());
    let authority = Authority::new(
        f.authority.settings().clone(),
        Services { verifier: counted.clone(), ..f.authority.services().clone() },
    );
    let client = authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap();
    let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    // The client's own secret was one check; only the guesses count below.
    let before = counted.checks.load(Ordering::SeqCst);
    let guess = |password| TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(password),
        ..Default::default()
    };
    // Thirty wrong guesses, the limit being 10: each is answered (503 here,
    // since the store refused the add), and none may be checked past the limit.
    for _ in 0..30 {
        let _ = authority.token(&client, &guess("wrong"), None, peer).await;
    }
    let checked = counted.checks.load(Ordering::SeqCst) - before;
    let right = authority.token(&client, &guess(PASSWORD), None, peer).await;
    assert!(
        checked <= 10 && right.is_err(),
        "{checked} wrong guesses were checked (limit 10), and the right password at position 31 got {right:?}"
    );
}

/// The memory store, except that an add of a failure is never answered, as
/// a store whose answer is lost when the request is dropped.
#[derive(Debug, Default)]
struct AddsNeverAnswered {
    inner: MemStore,
}

macro_rules! adds_never_answered {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl Store for AddsNeverAnswered {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                adds_never_answered!(@body self $m $($a)*)
            })*
        }
    };
    (@body $self:ident record_failure $($a:ident)*) => {{
        let _ = ($($a,)*);
        std::future::pending().await
    }};
    (@body $self:ident $m:ident $($a:ident)*) => {
        $self.inner.$m($($a),*).await
    };
}
oauth_core::with_store_methods!(adds_never_answered);

#[tokio::test]
async fn a_failure_whose_add_is_cancelled_still_counts_against_the_limit() {
    let f = Fixture::new(Arc::new(AddsNeverAnswered::default()), None).await.unwrap();
    let counted = Arc::new(Counted::default());
    let authority = Authority::new(
        f.authority.settings().clone(),
        Services { verifier: counted.clone(), ..f.authority.services().clone() },
    );
    let client = authority.authenticate_client(&Fixture::confidential_client(), None).await.unwrap();
    let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let before = counted.checks.load(Ordering::SeqCst);
    let guess = |password| TokenRequest {
        grant_type: Some("password"),
        username: Some(USERNAME),
        password: Some(password),
        ..Default::default()
    };
    // Each wrong guess is dropped while its failure is on its way to the
    // store, as the front end drops the request of a client that hung up.
    for _ in 0..30 {
        let dropped = tokio::time::timeout(
            std::time::Duration::from_millis(5),
            authority.token(&client, &guess("wrong"), None, peer),
        )
        .await;
        assert!(dropped.is_err() || matches!(dropped, Ok(Err(Error::Throttled { .. }))), "{dropped:?}");
    }
    let checked = counted.checks.load(Ordering::SeqCst) - before;
    let right = authority.token(&client, &guess(PASSWORD), None, peer).await;
    assert!(
        checked <= 10 && matches!(right, Err(Error::Throttled { .. })),
        "{checked} wrong guesses were checked (limit 10), and the right password at position 31 got {right:?}"
    );
}
