//! Review of 17d: the HTTP burst of wrong user codes
//! (`oauth-http` `device::a_burst_of_wrong_user_codes_gets_at_most_the_limit_checked_and_then_the_right_one_429`)
//! runs on the memory store, whose calls never yield, so its thirty codes are
//! looked up one after another and it passes with the admission before the
//! lookup taken out. Here the lookup yields, as a real store's round trip
//! does, so the codes overlap and the rule is what holds them back.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail by panicking, like the tests")]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use oauth_core::testing::*;
use oauth_core::*;
use oauth_store_mem::MemStore;
use time::OffsetDateTime;

/// The memory store, whose record lookups take a round trip and are counted.
#[derive(Debug, Default)]
struct SlowLookups {
    inner: MemStore,
    lookups: AtomicUsize,
}

macro_rules! slow_lookups {
    ($($(#[$doc:meta])* fn $m:ident(&self $(, $a:ident : $t:ty)*) -> $r:ty;)*) => {
        #[async_trait]
        impl Store for SlowLookups {
            $(async fn $m(&self $(, $a: $t)*) -> $r {
                slow_lookups!(@body self $m $($a)*)
            })*
        }
    };
    (@body $self:ident record $($a:ident)*) => {{
        $self.lookups.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        $self.inner.record($($a),*).await
    }};
    (@body $self:ident $m:ident $($a:ident)*) => {
        $self.inner.$m($($a),*).await
    };
}
oauth_core::with_store_methods!(slow_lookups);

#[tokio::test]
async fn a_burst_of_wrong_user_codes_with_a_store_round_trip_gets_at_most_the_limit_looked_up() {
    const LIMIT: u32 = 5;
    const BURST: usize = 30;
    let store = Arc::new(SlowLookups::default());
    let f = Fixture::with_settings(store.clone(), None, |s| s.throttle.max_failures_per_ip = LIMIT).await.unwrap();
    let f = Arc::new(f);
    let peer = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50)));
    let before = store.lookups.load(Ordering::SeqCst);
    let letters = b"BCDFGHJKLMNPQRSTVWXZ";
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let f = f.clone();
            let typed: String = (0..8).map(|j| char::from(letters[(i * 7 + j * 3) % letters.len()])).collect();
            tokio::spawn(async move {
                f.authority.open_device_session(&typed, TokenHash::of("browser"), peer, false, None).await.map(drop)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in burst {
        outcomes.push(t.await.unwrap());
    }
    let looked_up = store.lookups.load(Ordering::SeqCst) - before;
    assert!(looked_up <= LIMIT as usize, "{looked_up} codes looked up, limit {LIMIT}: {outcomes:?}");
    let throttled = outcomes.iter().filter(|o| matches!(o, Err(Error::Throttled { .. }))).count();
    assert_eq!(throttled, BURST - LIMIT as usize, "the rest refused: {outcomes:?}");
}
