//! The caches `minitwit serve` puts in front of sled ([`CachedStore`]) change no answer:
//! the core's conformance suite and the model test, run through them. Every rule that
//! reads the public timeline or `latest` after a write checks an invalidation.

use minitwit_core::Store;
use minitwit_core::cache::CachedStore;
use std::sync::Arc;

/// A fresh durable sled store behind the caches.
async fn cached_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let (store, dir) = minitwit_store_sled::testkit::fresh_store().await;
    assert!(store.single_process(), "sled is written by one process: caches are valid");
    (Arc::new(CachedStore::new(store)), dir)
}

minitwit_core::conformance_tests!(cached_store);

#[test]
fn cached_sled_answers_like_the_model() {
    minitwit_core::testkit::model::check_against_model(128, cached_store);
}
