//! [`Counted`]: the reference model with a count of the calls made to it, by operation,
//! for tests showing that a cache or the live feed spared the store a read.

use super::MemoryStore;
use crate::layer::{Operation, StoreLayer};
use crate::store::{Store, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// A [`MemoryStore`] that counts the calls made to it, by [`Store`] method name, and the
/// writes that have returned.
#[derive(Default)]
pub struct Counted {
    inner: MemoryStore,
    calls: Mutex<HashMap<&'static str, u64>>,
    writes_returned: AtomicU64,
}

impl Counted {
    /// An empty store, no call counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many calls of the named [`Store`] methods were made so far, together.
    pub fn calls(&self, operations: &[&str]) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        operations.iter().filter_map(|name| calls.get(name)).sum()
    }

    /// How many calls of methods that may write have returned so far (a number every
    /// write moves once it is done, as a store's snapshot).
    pub fn writes_returned(&self) -> u64 {
        self.writes_returned.load(Ordering::Acquire)
    }

    fn count(&self, operation: &'static str) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        *calls.entry(operation).or_default() += 1;
    }

    /// The store itself, to write or read past the count.
    pub fn uncounted(&self) -> &MemoryStore {
        &self.inner
    }
}

#[async_trait]
impl StoreLayer for Counted {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }

    async fn around<T, F>(&self, operation: Operation, call: F) -> StoreResult<T>
    where
        T: Send,
        F: Future<Output = StoreResult<T>> + Send,
    {
        self.count(operation.name);
        let result = call.await;
        if operation.writes {
            self.writes_returned.fetch_add(1, Ordering::AcqRel);
        }
        result
    }
}
