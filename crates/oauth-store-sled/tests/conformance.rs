//! The sled store runs the whole conformance suite, each check in its own
//! temporary directory.

use std::sync::Arc;

use oauth_core::Store;
use oauth_store_sled::{Options, SledStore};

oauth_store_conformance::conformance_tests!(async {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), Options::default()).unwrap();
    (Arc::new(store) as Arc<dyn Store>, dir)
});
