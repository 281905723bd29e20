//! The sled store, and its reopening wrapper, run the whole conformance suite,
//! each check in its own temporary directory.

use std::sync::Arc;

use oauth_core::Store;
use oauth_store_sled::{Options, ReopeningStore, SledStore};

oauth_store_conformance::conformance_tests!(async {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), Options::default()).unwrap();
    (Arc::new(store) as Arc<dyn Store>, dir)
});

mod reopening {
    use super::*;

    oauth_store_conformance::conformance_tests!(async {
        let dir = tempfile::tempdir().unwrap();
        let store = ReopeningStore::open(dir.path(), Options::default()).unwrap();
        (Arc::new(store) as Arc<dyn Store>, dir)
    });
}
