//! `latest` writes coalesced. Nearly every simulator request carries `latest`, so at
//! concurrency N up to N writes of it are in flight at once, each a durable store write.
//! Here at most one is: a caller whose value was overtaken by a newer one already written
//! returns without writing at all.
//!
//! What a caller is promised is unchanged: when [`LatestWrites::set`] returns `Ok`, the
//! store durably holds this caller's value or one asked for after it (`latest` has always
//! been last-writer-wins between concurrent requests).

use crate::store::{Store, StoreResult};
use std::sync::{Mutex, PoisonError};

/// The coalescing state of one service (shared by its clones).
#[derive(Default)]
pub(crate) struct LatestWrites {
    /// The number of values asked for so far, and the newest of them.
    asked: Mutex<(u64, i64)>,
    /// How many of the values asked for are covered by a finished write; held while
    /// writing, so writes of `latest` never overlap.
    written: tokio::sync::Mutex<u64>,
}

impl LatestWrites {
    /// Makes `latest` (or a newer value) durable in `store`.
    pub(crate) async fn set(&self, store: &dyn Store, latest: i64) -> StoreResult<()> {
        let mine = {
            let mut asked = self.asked();
            *asked = (asked.0 + 1, latest);
            asked.0
        };
        let mut written = self.written.lock().await;
        if *written >= mine {
            return Ok(());
        }
        let (number, value) = *self.asked();
        store.set_latest(value).await?;
        *written = number;
        Ok(())
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, (u64, i64)> {
        // Two plain integers, written together: a poisoned lock is still consistent.
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::MemoryStore;

    #[tokio::test]
    async fn the_newest_value_asked_for_is_stored_when_every_caller_is_answered() {
        let (store, writes) = (MemoryStore::new(), LatestWrites::default());
        writes.set(&store, 5).await.unwrap();
        assert_eq!(store.latest().await.unwrap(), Some(5));
        // Twenty concurrent callers, asking in this order (join_all polls them in order):
        // some are covered by another's write, and the last value asked for wins.
        let calls = (10..30).map(|value| writes.set(&store, value));
        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }
        assert_eq!(store.latest().await.unwrap(), Some(29));
        writes.set(&store, 3).await.unwrap();
        assert_eq!(store.latest().await.unwrap(), Some(3), "a later, smaller value is kept");
    }
}
