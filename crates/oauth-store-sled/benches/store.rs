//! Criterion benchmarks of the sled store: `cargo bench -p oauth-store-sled`.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_store_conformance::bench::{Made, store_benches};
use oauth_store_sled::{Options, SledStore};

fn sled(c: &mut Criterion) {
    store_benches(c, "sled", &|| -> Made {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), Options::default()).expect("open");
        (Arc::new(store), Box::new(dir))
    });
}

criterion_group!(benches, sled);
criterion_main!(benches);
