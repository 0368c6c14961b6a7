//! The embedded store's change feed (`minitwit_core::feed`): one process owns the store,
//! so an in-process [`Hub`] delivers every change, published by the write that made it
//! once that write is durable.

use crate::SledStore;
use crate::trees::Trees;
use minitwit_core::MessageFilter;
use minitwit_core::feed::{Change, ChangeFeed, Hub};
use minitwit_core::idempotency::Write;
use minitwit_core::model::Follow;
use minitwit_core::store::StoreResult;
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

/// The change a keyed write just applied under the write lock made, if any: a post's
/// id is the newest message's, as no other write ran since.
pub(crate) fn change_of(trees: &Trees, write: &Write) -> StoreResult<Option<Change>> {
    Ok(match write {
        Write::Register(_) => None,
        Write::Post(message) => {
            let newest =
                trees.list_messages(&MessageFilter { limit: 1, ..MessageFilter::default() })?;
            newest.first().map(|m| Change::Posted { id: m.id, author: message.author_id })
        }
        Write::Follow { follower, followee } => {
            Some(Change::Followed(Follow { follower: *follower, followee: *followee }))
        }
        Write::Unfollow { follower, followee } => {
            Some(Change::Unfollowed(Follow { follower: *follower, followee: *followee }))
        }
    })
}

/// A new hub for a store being opened.
pub(crate) fn hub() -> Hub {
    Hub::default()
}
