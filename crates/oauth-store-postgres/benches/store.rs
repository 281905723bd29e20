//! Criterion benchmarks of the PostgreSQL store:
//! `OAUTH_TEST_POSTGRES_URL=postgres://... cargo bench -p oauth-store-postgres`.
//! Each store gets a fresh database on that server; without the variable the
//! benchmarks are skipped.

#![allow(
    missing_docs,
    clippy::expect_used,
    reason = "criterion_group! makes undocumented items; a bench fails by panicking"
)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use oauth_store_conformance::bench::{Made, store_benches};
use oauth_store_postgres::testing::TestDatabase;
use oauth_store_postgres::{Options, PostgresStore};

fn postgres(c: &mut Criterion) {
    if std::env::var_os("OAUTH_TEST_POSTGRES_URL").is_none() {
        eprintln!("skipped: set OAUTH_TEST_POSTGRES_URL to a PostgreSQL server to bench this store");
        return;
    }
    store_benches(c, "postgres", &|| -> Made {
        // Made on a runtime of its own, then dropped, so no pooled connection
        // is tied to it; the pool reconnects on the bench's runtime.
        let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (db, store) = setup.block_on(async {
            let db = TestDatabase::create().await;
            let store =
                PostgresStore::connect(&db.url, Options { pool_size: 32, ..oauth_store_postgres::testing::options() })
                    .await;
            (db, store.expect("connect"))
        });
        drop(setup);
        (Arc::new(store), Box::new(db))
    });
}

criterion_group!(benches, postgres);
criterion_main!(benches);
