//! The trees of the store, what each one maps, and the transactional view of all of them.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | a name (see [`meta`], and `redo`'s) | an `i64` (format version, last ids, counters, latest, the redo log's epoch and last group) |
//! | `settings` | setting name | raw bytes |
//! | `users` | user id | the [`User`](minitwit_core::User) (see `records`) |
//! | `usernames` | exact username bytes | user id |
//! | `sessions` | user id | the user's session generation (`i64`; absent: 0) |
//! | `messages` | message id | the [`Message`](minitwit_core::Message) (see `records`) |
//! | `public_idx` | (pub_date, id) | a copy of the message record; unflagged messages only |
//! | `author_idx` | (author, pub_date, id) | a copy of the message record; unflagged messages only |
//! | `author_msgs` | (author, id) | empty; flagged messages only (with `author_idx`, an author's every message, for deletion and admin listings; every message before format 4) |
//! | `flagged` | message id | empty; flagged messages only |
//! | `follows` | (follower, followee) | empty |
//! | `followers` | (followee, follower) | empty |
//! | `receipts` | `k`, scope, NUL, key / `t`, recorded_at, scope, NUL, key | a keyed write's receipt / empty (see `receipts`) |
//!
//! Stores of format 1 (see `open`) hold JSON records, read as well as binary ones, and
//! empty timeline index values: the message is then read from `messages`.

use crate::authors::Authors;
use crate::home::{HomeConfig, Homes};
use crate::keys;
use crate::staging::{Group, Staged};
use minitwit_core::UserId;
use minitwit_core::store::{StoreError, StoreResult};
use sled::transaction::ConflictableTransactionError;
use sled::{Db, Tree};
use std::sync::Arc;

/// Names of the values in the `meta` tree.
pub(crate) mod meta {
    /// The on-disk format version of this store.
    pub(crate) const FORMAT_VERSION: &[u8] = b"format_version";
    /// The largest user id ever assigned.
    pub(crate) const LAST_USER_ID: &[u8] = b"last_user_id";
    /// The largest message id ever assigned.
    pub(crate) const LAST_MESSAGE_ID: &[u8] = b"last_message_id";
    /// Number of users.
    pub(crate) const USERS: &[u8] = b"count_users";
    /// Number of messages.
    pub(crate) const MESSAGES: &[u8] = b"count_messages";
    /// Number of follow pairs.
    pub(crate) const FOLLOWS: &[u8] = b"count_follows";
    /// Number of flagged messages.
    pub(crate) const FLAGGED: &[u8] = b"count_flagged";
    /// The simulator's `latest` value.
    pub(crate) const LATEST: &[u8] = b"latest";
}

/// Declares the trees once and derives both the plain handles and the transactional view.
macro_rules! trees {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Handles on every tree of the store.
        #[derive(Clone)]
        pub(crate) struct Trees {
            $($(#[$doc])* pub(crate) $name: Tree,)*
            /// All of the above, in declaration order, for whole-store transactions.
            all: Vec<Tree>,
            /// Authors' names and emails by id (see `authors`).
            pub(crate) authors: Arc<Authors>,
            /// The kept home timelines (see `home`).
            pub(crate) homes: Arc<Homes>,
            /// Writes staged for the group commit to apply, in a durable store once
            /// opened (see `staging`).
            group: Option<Arc<Group>>,
        }

        /// The same trees inside one transaction.
        pub(crate) struct Tx<'a> {
            $($(#[$doc])* pub(crate) $name: &'a Staged<'a>,)*
        }

        impl Trees {
            /// Opens (creating if needed) every tree of `db`, keeping home timelines as
            /// `home` says.
            pub(crate) fn open(db: &Db, home: HomeConfig) -> sled::Result<Self> {
                $(let $name = db.open_tree(stringify!($name))?;)*
                let all = vec![$($name.clone()),*];
                // The kept home timelines need the follow pairs, read from a tree this
                // macro names: once the trees are in place.
                let homes = Arc::new(Homes::new(home, []));
                let mut trees =
                    Self { $($name,)* all, authors: Arc::default(), homes, group: None };
                trees.homes = Arc::new(Homes::new(home, follow_pairs(&trees.follows)?));
                Ok(trees)
            }
        }

        impl<'a> Tx<'a> {
            /// Names the trees of a whole-store transaction view.
            fn new(view: &'a [Staged<'a>]) -> Self {
                let mut trees = view.iter();
                $(
                    // The view is built from `Trees::all`, which has one entry per name.
                    let $name = trees.next().expect("one transactional tree per declared tree");
                )*
                Self { $($name),* }
            }
        }
    };
}

trees! {
    /// Format version, id counters, record counters, `latest`.
    meta,
    /// Server settings.
    settings,
    /// Users by id.
    users,
    /// Session generations by user id (absent: 0).
    sessions,
    /// User ids by exact name.
    usernames,
    /// Messages by id.
    messages,
    /// The public timeline index.
    public_idx,
    /// The per-author timeline index.
    author_idx,
    /// Every message id per author.
    author_msgs,
    /// Flagged message ids.
    flagged,
    /// Follow pairs by follower.
    follows,
    /// Follow pairs by followee.
    followers,
    /// Keyed writes' receipts, and the same keys by recording time.
    receipts,
}

/// The position of `meta` in [`Trees::all`]: it is declared first.
pub(crate) const META: usize = 0;

/// The value of index entries whose key says it all.
pub(crate) const EMPTY: &[u8] = &[];

/// A transaction body's result: `Abort` carries a [`StoreError`].
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Trees {
    /// Runs `body` as one atomic transaction over every tree, under the write lock: its
    /// writes are staged for the group commit, or applied at once (see `staging`).
    pub(crate) fn transaction<T>(
        &self,
        body: impl FnOnce(&Tx<'_>) -> TxResult<T>,
    ) -> StoreResult<T> {
        let group = self.group.as_deref();
        let staged: Vec<Staged<'_>> =
            self.all.iter().enumerate().map(|(i, tree)| Staged::new(tree, i, group)).collect();
        let value = body(&Tx::new(&staged)).map_err(|err| match err {
            ConflictableTransactionError::Abort(store_error) => store_error,
            ConflictableTransactionError::Storage(sled_error) => backend(sled_error),
            // Only sled's own transactions conflict; these run one at a time.
            conflict => backend(format!("{conflict:?}")),
        })?;
        self.commit(staged.into_iter().map(Staged::into_writes).collect())?;
        Ok(value)
    }

    /// From now on, transactions are staged in `group` for the group commit to log and
    /// apply.
    pub(crate) fn group_writes(&mut self, group: Group) {
        self.group = Some(Arc::new(group));
    }

    /// The staged writes, when this store groups them.
    pub(crate) fn group(&self) -> Option<&Group> {
        self.group.as_deref()
    }

    /// Every tree, in declaration order.
    pub(crate) fn all(&self) -> &[Tree] {
        &self.all
    }

    /// A counter or other integer from `meta` (0 when absent).
    pub(crate) fn meta_int(&self, name: &[u8]) -> StoreResult<i64> {
        self.meta.get(name).map_err(backend)?.map_or(Ok(0), |v| decode_int(&v))
    }
}

impl Tx<'_> {
    /// An integer from `meta` (0 when absent).
    pub(crate) fn meta_int(&self, name: &[u8]) -> TxResult<i64> {
        self.meta.get(name)?.map_or(Ok(0), |v| decode_int(&v)).map_err(abort)
    }

    /// Adds `delta` to an integer in `meta` and returns the new value.
    pub(crate) fn bump(&self, name: &[u8], delta: i64) -> TxResult<i64> {
        let value = self.meta_int(name)? + delta;
        self.meta.insert(name, &value.to_be_bytes()[..])?;
        Ok(value)
    }

    /// Raises an integer in `meta` to at least `value`.
    pub(crate) fn raise(&self, name: &[u8], value: i64) -> TxResult<()> {
        if self.meta_int(name)? < value {
            self.meta.insert(name, &value.to_be_bytes()[..])?;
        }
        Ok(())
    }

    /// Whether a user with this id exists.
    pub(crate) fn user_exists(&self, id: UserId) -> TxResult<bool> {
        Ok(self.users.get(keys::int(id))?.is_some())
    }

    /// Fails with [`StoreError::UnknownUser`] unless the user exists.
    pub(crate) fn require_user(&self, id: UserId) -> TxResult<()> {
        if self.user_exists(id)? { Ok(()) } else { Err(abort(StoreError::UnknownUser(id))) }
    }
}

/// Every follow pair of the `follows` tree, as `(follower, followee)`; a key that does
/// not decode is left out (the integrity check reports it).
pub(crate) fn follow_pairs(follows: &Tree) -> sled::Result<Vec<(UserId, UserId)>> {
    let mut pairs = Vec::new();
    for item in follows.iter() {
        let (key, _) = item?;
        if let (Some(follower), Some(followee)) = (keys::field(&key, 0), keys::field(&key, 1)) {
            pairs.push((follower, followee));
        }
    }
    Ok(pairs)
}

/// Field `index` of a key from a range scan.
pub(crate) fn key_field<T: keys::Number>(
    item: sled::Result<(sled::IVec, sled::IVec)>,
    index: usize,
) -> StoreResult<T> {
    let (key, _) = item.map_err(backend)?;
    keys::field(&key, index).ok_or_else(|| corrupt("an index key"))
}

/// Field `index` of every key in `tree` whose first field is `first`, in key order.
pub(crate) fn key_fields<T: keys::Number>(
    tree: &Tree,
    first: UserId,
    index: usize,
) -> StoreResult<Vec<T>> {
    tree.scan_prefix(keys::int(first)).map(|item| key_field(item, index)).collect()
}

/// Wraps a [`StoreError`] to abort a transaction with it.
pub(crate) fn abort(error: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(error)
}

/// A sled failure as a store failure.
pub(crate) fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sled: {error}"))
}

/// Decodes an `i64` stored big-endian in a value.
pub(crate) fn decode_int(bytes: &[u8]) -> StoreResult<i64> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| corrupt("an integer value"))?;
    Ok(i64::from_be_bytes(array))
}

/// The error for data that does not decode.
pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt data in the sled store: {what}"))
}
