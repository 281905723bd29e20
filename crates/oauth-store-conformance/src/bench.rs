//! The Criterion benchmarks every backend runs: ns per operation, from one task
//! and from [`RACERS`] concurrent tasks (where the figure is wall time divided
//! by operations, so its inverse is the throughput).
//!
//! Setup (issuing the codes to redeem, the tokens to rotate) is excluded from
//! the timing with `iter_custom`.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use criterion::{BenchmarkId, Criterion};
use oauth_core::testing::Fixture;
use oauth_core::{GrantId, Record, RecordKind, Store, ThrottleKey, TokenHash};
use time::Duration;
use tokio::runtime::Runtime;

use crate::{RACERS, T0, grant, refresh};

/// A fresh store and whatever must live as long as it.
pub type Made = (Arc<dyn Store>, Box<dyn Any>);

/// Runs every store benchmark for `backend`, each on a store from `make`.
pub fn store_benches(c: &mut Criterion, backend: &str, make: &dyn Fn() -> Made) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut group = c.benchmark_group(format!("store/{backend}"));
    group.sample_size(10).warm_up_time(StdDuration::from_millis(500)).measurement_time(StdDuration::from_secs(2));
    for tasks in [1usize, RACERS] {
        let (store, _guard) = make();
        let f = rt.block_on(Fixture::new(store.clone(), None)).expect("fixture");
        let f = Arc::new(f);

        group.bench_function(BenchmarkId::new("authorize (open session)", tasks), |b| {
            b.iter_custom(|iters| {
                let f = f.clone();
                run(&rt, tasks, iters, move |_| {
                    let f = f.clone();
                    async move {
                        f.authority.authorize(&Fixture::public_request(), None, None).await.expect("authorize");
                    }
                })
            });
        });

        let s = store.clone();
        group.bench_function(BenchmarkId::new("durable write (grant + refresh)", tasks), |b| {
            b.iter_custom(|iters| {
                let s = s.clone();
                let base = next_base();
                run(&rt, tasks, iters, move |i| {
                    let s = s.clone();
                    async move {
                        let g = grant_n(base + i);
                        let r = refresh(&format!("w{}", base + i), &g, 0, T0 + Duration::days(14));
                        s.insert_grant(&g, Some(&r)).await.expect("insert");
                    }
                })
            });
        });

        group.bench_function(BenchmarkId::new("code redemption", tasks), |b| {
            b.iter_custom(|iters| {
                // Issue the codes first, concurrently, outside the timing.
                let codes: Vec<TokenHash> = rt.block_on(async {
                    let mut handles = Vec::new();
                    for _ in 0..iters {
                        let f = f.clone();
                        handles
                            .push(tokio::spawn(async move { TokenHash::of(&f.issued_code().await.expect("code").1) }));
                    }
                    let mut codes = Vec::new();
                    for h in handles {
                        codes.push(h.await.expect("task"));
                    }
                    codes
                });
                let codes = Arc::new(codes);
                let s = store.clone();
                let now = oauth_core::Clock::now(&*f.clock);
                run(&rt, tasks, iters, move |i| {
                    let (s, codes) = (s.clone(), codes.clone());
                    async move {
                        let g = GrantId::from_random_bytes([1; 16]);
                        s.take_code(&codes[i as usize], g, now + Duration::HOUR, now).await.expect("take");
                    }
                })
            });
        });

        let s = store.clone();
        group.bench_function(BenchmarkId::new("refresh rotation", tasks), |b| {
            b.iter_custom(|iters| {
                let base = next_base();
                rt.block_on(async {
                    for i in 0..iters {
                        let g = grant_n(base + i);
                        let r = refresh(&format!("r{}", base + i), &g, 0, T0 + Duration::days(14));
                        s.insert_grant(&g, Some(&r)).await.expect("insert");
                    }
                });
                let s = s.clone();
                run(&rt, tasks, iters, move |i| {
                    let s = s.clone();
                    async move {
                        let g = grant_n(base + i);
                        let next = refresh(&format!("r{}-1", base + i), &g, 1, T0 + Duration::days(14));
                        s.rotate_refresh(&TokenHash::of(&format!("r{}", base + i)), &next, T0).await.expect("rotate");
                    }
                })
            });
        });

        // What every client authentication does: read its three keys (the
        // client from this address, the client, the address); on PostgreSQL
        // the server keeps these reads for a second. Then what a failed check
        // adds. Each task has its own client, as concurrent clients would.
        let s = store.clone();
        group.bench_function(BenchmarkId::new("throttle read (3 keys)", tasks), |b| {
            b.iter_custom(|iters| {
                let s = s.clone();
                run(&rt, tasks, iters, move |i| {
                    let s = s.clone();
                    let client = i % tasks as u64;
                    async move {
                        let since = T0 - Duration::minutes(15);
                        for key in [
                            ThrottleKey::for_test(&format!("client-from {client}")),
                            ThrottleKey::for_test(&format!("client {client}")),
                            ThrottleKey::for_test("address"),
                        ] {
                            s.failures(&key, since).await.expect("read");
                        }
                    }
                })
            });
        });

        let s = store.clone();
        group.bench_function(BenchmarkId::new("throttle failure (3 keys)", tasks), |b| {
            b.iter_custom(|iters| {
                let s = s.clone();
                run(&rt, tasks, iters, move |i| {
                    let s = s.clone();
                    let client = i % tasks as u64;
                    async move {
                        let keys = [
                            ThrottleKey::for_test(&format!("client-from {client}")),
                            ThrottleKey::for_test(&format!("client {client}")),
                            ThrottleKey::for_test("address"),
                        ];
                        // A window of a nanosecond keeps the lists short, as
                        // the throttle's limits do.
                        let at = T0 + Duration::nanoseconds(i as i64);
                        s.record_failure(&keys, at, at).await.expect("record");
                    }
                })
            });
        });

        let s = store.clone();
        let g = grant(200, T0 + Duration::days(90));
        let r = refresh("lookup", &g, 0, T0 + Duration::days(14));
        rt.block_on(s.insert_grant(&g, Some(&r))).expect("insert");
        group.bench_function(BenchmarkId::new("refresh lookup", tasks), |b| {
            b.iter_custom(|iters| {
                let s = s.clone();
                run(&rt, tasks, iters, move |_| {
                    let s = s.clone();
                    async move {
                        s.refresh_token(&TokenHash::of("lookup"), T0).await.expect("lookup").expect("found");
                    }
                })
            });
        });

        // The replay caches' write (a DPoP proof's or a client assertion's
        // `jti`), on the hot path of every DPoP request and assertion: one
        // fresh record, durable like every other write.
        let s = store.clone();
        group.bench_function(BenchmarkId::new("replay record insert", tasks), |b| {
            b.iter_custom(|iters| {
                let s = s.clone();
                let base = next_base();
                run(&rt, tasks, iters, move |i| {
                    let s = s.clone();
                    async move {
                        let record = Record {
                            kind: REPLAY_BENCH,
                            key: TokenHash::of(&format!("jti-{}", base + i)),
                            owner: None,
                            value: Vec::new(),
                            expires_at: T0 + Duration::seconds(61),
                        };
                        assert!(s.insert_record(&record, T0).await.expect("insert"), "a fresh jti");
                    }
                })
            });
        });
    }
    group.finish();
}

/// The record kind of the replay-record bench, apart from the server's own.
const REPLAY_BENCH: RecordKind = RecordKind::new("bench_replay");

/// Runs `op(0..iters)` spread over `tasks` concurrent tasks; returns the wall time.
fn run<F, Fut>(rt: &Runtime, tasks: usize, iters: u64, op: F) -> StdDuration
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks as u64 {
            let op = op.clone();
            handles.push(tokio::spawn(async move {
                let mut i = t;
                while i < iters {
                    op(i).await;
                    i += tasks as u64;
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        start.elapsed()
    })
}

/// Distinct record numbers across iterations of one run.
fn next_base() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1 << 32, Ordering::Relaxed)
}

fn grant_n(n: u64) -> oauth_core::Grant {
    let mut g = grant(0, T0 + Duration::days(90));
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    g.id = GrantId::from_random_bytes(id);
    g
}
