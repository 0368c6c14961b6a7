//! The embedded store's change feed (`minitwit_core::feed`): one process owns the store,
//! so an in-process [`Hub`] delivers every change, published by the write that made it
//! once that write is durable.

use crate::SledStore;
use minitwit_core::feed::{Change, ChangeFeed, Hub};
use std::sync::Arc;

impl SledStore {
    /// Tells this process's live timelines about `change`.
    pub(crate) fn publish(&self, change: Change) {
        self.inner.feed.publish(change);
    }

    /// The hub, as the store's delivery.
    pub(crate) fn feed(&self) -> Arc<dyn ChangeFeed> {
        Arc::new(self.inner.feed.clone()) as Arc<dyn ChangeFeed>
    }
}

/// A new hub for a store being opened.
pub(crate) fn hub() -> Hub {
    Hub::default()
}
