//! Criterion benchmarks of the memory store: `cargo bench -p oauth-store-mem`.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_store_conformance::bench::{Made, store_benches};
use oauth_store_mem::MemStore;

fn mem(c: &mut Criterion) {
    store_benches(c, "mem", &|| -> Made { (Arc::new(MemStore::new()), Box::new(())) });
}

criterion_group!(benches, mem);
criterion_main!(benches);
