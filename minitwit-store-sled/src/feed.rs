//! The embedded store's change feed (`minitwit_core::feed`): one process owns the store,
//! so an in-process [`Hub`] delivers every change, published by the write that made it
//! once that write is durable.

use crate::SledStore;
use minitwit_core::MessageId;
use minitwit_core::feed::{Change, ChangeFeed, Hub};
use minitwit_core::idempotency::Write;
use minitwit_core::model::Follow;
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

/// The change a keyed write just applied made, if any (`posted`: a post's new id).
pub(crate) fn change_of(write: &Write, posted: Option<MessageId>) -> Option<Change> {
    match write {
        Write::Register(_) => None,
        Write::Post(message) => posted.map(|id| Change::Posted { id, author: message.author_id }),
        Write::Follow { follower, followee } => {
            Some(Change::Followed(Follow { follower: *follower, followee: *followee }))
        }
        Write::Unfollow { follower, followee } => {
            Some(Change::Unfollowed(Follow { follower: *follower, followee: *followee }))
        }
    }
}

/// A new hub for a store being opened.
pub(crate) fn hub() -> Hub {
    Hub::default()
}
