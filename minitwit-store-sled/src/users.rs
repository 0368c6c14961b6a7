//! Users: creation with a unique name, look-ups, changes, and deletion with every trace.

use crate::authors::Author;
use crate::keys;
use crate::records::{decode, encode};
use crate::trees::{Trees, Tx, TxResult, abort, backend, decode_int, key_fields, meta};
use minitwit_core::model::NewUser;
use minitwit_core::store::{StoreError, StoreResult};
use minitwit_core::{MessageId, User, UserId};
use sled::IVec;
use std::ops::Bound;

impl Trees {
    /// Creates a user under a fresh id; [`StoreError::UsernameTaken`] if the name exists.
    pub(crate) fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        self.transaction(|tx| tx.create_user(new))
    }

    /// The user with this id.
    pub(crate) fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.users.get(keys::int(id)).map_err(backend)?.map(|v| decode(&v)).transpose()
    }

    /// The name and email of the user with this id, from the author cache when there.
    pub(crate) fn author(&self, id: UserId) -> StoreResult<Option<Author>> {
        let seen = match self.authors.get(id) {
            Ok(known) => return Ok(Some(known)),
            Err(seen) => seen,
        };
        let Some(user) = self.user_by_id(id)? else { return Ok(None) };
        let author = Author { username: user.username, email: user.email };
        self.authors.insert(id, author.clone(), seen);
        Ok(Some(author))
    }

    /// The user with exactly this name.
    pub(crate) fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        match self.usernames.get(name).map_err(backend)? {
            None => Ok(None),
            Some(id) => self.users.get(id).map_err(backend)?.map(|v| decode(&v)).transpose(),
        }
    }

    /// Up to `limit` users with ids above `after`, by id.
    pub(crate) fn users_after(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        let start = after.map_or(Bound::Unbounded, |id| Bound::Excluded(keys::int(id)));
        self.users
            .range::<IVec, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|item| decode(&item.map_err(backend)?.1))
            .collect()
    }

    /// Applies `change` to the user with this id; `false` if there is none.
    pub(crate) fn update_user(&self, id: UserId, change: impl Fn(&mut User)) -> StoreResult<bool> {
        self.transaction(|tx| {
            let Some(bytes) = tx.users.get(keys::int(id))? else { return Ok(false) };
            let mut user: User = decode(&bytes).map_err(abort)?;
            change(&mut user);
            tx.users.insert(keys::int(id), encode(&user))?;
            Ok(true)
        })
    }

    /// The user's session generation (0 when never bumped).
    pub(crate) fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        let stored = self.sessions.get(keys::int(id)).map_err(backend)?;
        stored.map_or(Ok(0), |value| decode_int(&value))
    }

    /// Increments the user's session generation; `false` if there is no such user.
    pub(crate) fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        self.transaction(|tx| {
            if tx.users.get(keys::int(id))?.is_none() {
                return Ok(false);
            }
            let now = tx.sessions.get(keys::int(id))?.map_or(Ok(0), |v| decode_int(&v));
            let next = now.map_err(abort)? + 1;
            tx.sessions.insert(keys::int(id), &next.to_be_bytes()[..])?;
            Ok(true)
        })
    }

    /// Deletes a user, their messages and their follows both ways; `false` if there was
    /// no such user. The caller holds the write lock, so the scans below stay true until
    /// the transaction applies.
    pub(crate) fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let links = self.user_links(id)?;
        let deleted = self.transaction(|tx| tx.remove_user(&links));
        // Applied (or refused): either way the caches must not outlive the records.
        let removed = matches!(deleted, Ok(true));
        self.after_apply(move |trees| {
            trees.authors.forget(id);
            if removed {
                trees.homes.user_deleted(id, &links.followees);
            }
        });
        deleted
    }

    /// What hangs on a user, read under the write lock for a transaction removing them.
    pub(crate) fn user_links(&self, id: UserId) -> StoreResult<UserLinks> {
        Ok(UserLinks {
            id,
            messages: self.author_message_ids(id)?,
            followees: key_fields(&self.follows, id, 1)?,
            followers: key_fields(&self.followers, id, 1)?,
        })
    }
}

/// A user's messages and follows (both ways), as [`Trees::user_links`] found them.
pub(crate) struct UserLinks {
    pub(crate) id: UserId,
    messages: Vec<MessageId>,
    pub(crate) followees: Vec<UserId>,
    followers: Vec<UserId>,
}

impl Tx<'_> {
    /// Creates a user under a fresh id; [`StoreError::UsernameTaken`] if the name exists.
    pub(crate) fn create_user(&self, new: &NewUser) -> TxResult<User> {
        let name: &str = new.username.as_ref();
        if self.usernames.get(name)?.is_some() {
            return Err(abort(StoreError::UsernameTaken));
        }
        let user = User {
            id: UserId(self.bump(meta::LAST_USER_ID, 1)?),
            username: name.to_owned(),
            email: new.email.as_ref().to_owned(),
            pw_hash: new.pw_hash.clone(),
            disabled: false,
        };
        self.insert_user(&user)?;
        Ok(user)
    }

    /// Removes a user with their messages and follows and uncounts them; `false` if
    /// there is no such user.
    pub(crate) fn remove_user(&self, links: &UserLinks) -> TxResult<bool> {
        let id = links.id;
        let Some(bytes) = self.users.get(keys::int(id))? else { return Ok(false) };
        let user: User = decode(&bytes).map_err(abort)?;
        for &message in &links.messages {
            self.remove_message(message)?;
        }
        for &followee in &links.followees {
            self.remove_follow(id, followee)?;
        }
        for &follower in &links.followers {
            self.remove_follow(follower, id)?;
        }
        self.users.remove(keys::int(id))?;
        self.usernames.remove(user.username.as_bytes())?;
        self.sessions.remove(keys::int(id))?;
        self.bump(meta::USERS, -1)?;
        Ok(true)
    }

    /// Writes a new user record and its name index, and counts it.
    pub(crate) fn insert_user(&self, user: &User) -> TxResult<()> {
        let id = keys::int(user.id);
        self.users.insert(id.clone(), encode(user))?;
        self.usernames.insert(user.username.as_bytes(), id)?;
        self.bump(meta::USERS, 1)?;
        Ok(())
    }
}
