//! Test support: a fresh, empty, durable store in a temporary directory, in the shape
//! the core's conformance suite and model test expect.

use crate::{SledOptions, SledStore};
use minitwit_core::Store;
use std::sync::Arc;

/// A new, empty, durable store in a new temporary directory, which is removed when the
/// returned guard drops (keep it alive as long as the store).
///
/// # Panics
/// If the temporary directory or the store cannot be created: a broken test machine.
pub async fn fresh_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    fresh_store_with(SledOptions::default()).await
}

/// [`fresh_store`] opened with `options` (a tiny home timeline bound and fan-out limit, say,
/// so that short tests cross them).
///
/// # Panics
/// As [`fresh_store`].
pub async fn fresh_store_with(options: SledOptions) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("creating a temporary directory for a sled store");
    let store = SledStore::open(dir.path(), options)
        .expect("opening a sled store in a fresh temporary directory");
    (Arc::new(store), dir)
}
