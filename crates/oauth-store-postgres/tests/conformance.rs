//! The PostgreSQL store runs the whole conformance suite against a real
//! server, each check in a fresh database of its own.
//!
//! The server is named by `OAUTH_TEST_POSTGRES_URL` (`cargo xtask test` starts
//! a throwaway one and sets it). Without it these tests fail under CI (`CI`
//! set) and are skipped, with a message, elsewhere.

use oauth_store_postgres::testing::TestDatabase;

oauth_store_conformance::conformance_tests!(async {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    (store, db)
});
