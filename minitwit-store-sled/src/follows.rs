//! Follows: each pair is kept twice, by follower (`follows`) and by followee
//! (`followers`), so both "whom do I follow" and "who follows me" are prefix scans.

use crate::keys;
use crate::trees::{EMPTY, Trees, Tx, TxResult, backend, key_field, key_fields, meta};
use minitwit_core::UserId;
use minitwit_core::model::Follow;
use minitwit_core::store::StoreResult;
use sled::IVec;
use std::ops::Bound;

impl Trees {
    /// Records the pair; both users must exist; an existing pair stays as it is.
    pub(crate) fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.transaction(|tx| tx.follow(follower, followee))?;
        self.after_apply(move |trees| trees.homes.follow_changed(follower, followee, true));
        Ok(())
    }

    /// Removes the pair if it exists.
    pub(crate) fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.transaction(|tx| tx.remove_follow(follower, followee))?;
        self.after_apply(move |trees| trees.homes.follow_changed(follower, followee, false));
        Ok(())
    }

    /// Whether the pair exists.
    pub(crate) fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        self.follows.contains_key(keys::pair(follower, followee)).map_err(backend)
    }

    /// Ids of everyone `follower` follows, by id.
    pub(crate) fn followee_ids(&self, follower: UserId) -> StoreResult<Vec<UserId>> {
        key_fields(&self.follows, follower, 1)
    }

    /// Names of up to `limit` users `follower` follows, by followee id.
    pub(crate) fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        let mut names = Vec::new();
        for item in self.follows.scan_prefix(keys::int(follower)) {
            if names.len() >= limit {
                break;
            }
            if let Some(author) = self.author(key_field(item, 1)?)? {
                names.push(author.username);
            }
        }
        Ok(names)
    }

    /// Up to `limit` pairs after `after`, by (follower, followee): the export order.
    pub(crate) fn follows_after(
        &self,
        after: Option<Follow>,
        limit: usize,
    ) -> StoreResult<Vec<Follow>> {
        let start =
            after.map_or(Bound::Unbounded, |a| Bound::Excluded(keys::pair(a.follower, a.followee)));
        self.follows
            .range::<IVec, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|item| {
                let (key, _) = item.map_err(backend)?;
                let field =
                    |i| keys::field(&key, i).ok_or_else(|| crate::trees::corrupt("a follow"));
                Ok(Follow { follower: field(0)?, followee: field(1)? })
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Records the pair; both users must exist; an existing pair stays as it is.
    pub(crate) fn follow(&self, follower: UserId, followee: UserId) -> TxResult<()> {
        self.require_user(follower)?;
        self.require_user(followee)?;
        self.insert_follow(follower, followee)
    }

    /// Writes the pair both ways and counts it, unless it exists.
    pub(crate) fn insert_follow(&self, follower: UserId, followee: UserId) -> TxResult<()> {
        if self.follows.replace(keys::pair(follower, followee), EMPTY)?.is_none() {
            self.followers.insert(keys::pair(followee, follower), EMPTY)?;
            self.bump(meta::FOLLOWS, 1)?;
        }
        Ok(())
    }

    /// Removes the pair both ways and uncounts it, if it exists.
    pub(crate) fn remove_follow(&self, follower: UserId, followee: UserId) -> TxResult<()> {
        if self.follows.take(keys::pair(follower, followee))?.is_some() {
            self.followers.remove(keys::pair(followee, follower))?;
            self.bump(meta::FOLLOWS, -1)?;
        }
        Ok(())
    }
}
