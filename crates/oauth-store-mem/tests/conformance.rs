//! The memory store runs the whole conformance suite.

use std::sync::Arc;

use oauth_core::Store;
use oauth_store_mem::MemStore;

oauth_store_conformance::conformance_tests!(async { (Arc::new(MemStore::new()) as Arc<dyn Store>, ()) });
