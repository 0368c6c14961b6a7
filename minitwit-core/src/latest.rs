//! `latest` writes coalesced. Nearly every simulator request carries `latest`, so at
//! concurrency N up to N writes of it are in flight at once, each a durable store write.
//! Here at most one is: a caller whose value was overtaken by a newer one already written
//! waits for that write's durability instead of writing at all.
//!
//! A write is begun ([`LatestWrites::begin`]): once applied, later reads see it, and the
//! returned [`PendingLatest`] resolves when it is durable. On a store with shared flushes
//! (sled) the request's own write then takes its flush, so an action waits for one flush,
//! not two (see [`Store::begin_set_latest`]).
//!
//! What a caller is promised is unchanged: when its [`PendingLatest`] resolves `Ok`, the
//! store durably holds this caller's value or one asked for after it (`latest` has always
//! been last-writer-wins between concurrent requests).

use crate::store::{Store, StoreResult};
use futures::FutureExt as _;
use futures::future::Shared;
use std::sync::{Mutex, PoisonError};

/// The wait for a begun `latest` write to become durable; clones share it.
pub(crate) type PendingLatest = Shared<crate::store::DurableWait>;

/// The coalescing state of one service (shared by its clones).
#[derive(Default)]
pub(crate) struct LatestWrites {
    /// The number of values asked for so far, and the newest of them.
    asked: Mutex<(u64, i64)>,
    /// The last write begun: how many of the values asked for it covers, and the wait for
    /// its durability. Held while writing, so writes of `latest` never overlap.
    written: tokio::sync::Mutex<Option<(u64, PendingLatest)>>,
}

impl LatestWrites {
    /// Makes `latest` (or a newer value) visible in `store` and returns the wait for it
    /// to be durable.
    pub(crate) async fn begin(&self, store: &dyn Store, latest: i64) -> StoreResult<PendingLatest> {
        let mine = {
            let mut asked = self.asked();
            *asked = (asked.0 + 1, latest);
            asked.0
        };
        let mut written = self.written.lock().await;
        if let Some((covered, pending)) = written.as_ref()
            && *covered >= mine
        {
            return Ok(pending.clone());
        }
        let (number, value) = *self.asked();
        let pending = store.begin_set_latest(value).await?.shared();
        *written = Some((number, pending.clone()));
        Ok(pending)
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
        writes.begin(&store, 5).await.unwrap().await.unwrap();
        assert_eq!(store.latest().await.unwrap(), Some(5));
        // Twenty concurrent callers, asking in this order (join_all polls them in order):
        // some are covered by another's write, and the last value asked for wins.
        let (store, writes) = (&store, &writes);
        let calls = (10..30).map(|value| async move { writes.begin(store, value).await?.await });
        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }
        assert_eq!(store.latest().await.unwrap(), Some(29));
        writes.begin(store, 3).await.unwrap().await.unwrap();
        assert_eq!(store.latest().await.unwrap(), Some(3), "a later, smaller value is kept");
    }
}
