//! The trees of the store, what each one maps, and the transactional view of all of them.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | a name (see [`meta`]) | an `i64` (format version, last ids, counters, latest) |
//! | `settings` | setting name | raw bytes |
//! | `users` | user id | the [`User`](minitwit_core::User) (see `records`) |
//! | `usernames` | exact username bytes | user id |
//! | `sessions` | user id | the user's session generation (`i64`; absent: 0) |
//! | `messages` | message id | the [`Message`](minitwit_core::Message) (see `records`) |
//! | `public_idx` | (pub_date, id) | a copy of the message record; unflagged messages only |
//! | `author_idx` | (author, pub_date, id) | a copy of the message record; unflagged messages only |
//! | `author_msgs` | (author, id) | empty; every message, for deletion and admin listings |
//! | `flagged` | message id | empty; flagged messages only |
//! | `follows` | (follower, followee) | empty |
//! | `followers` | (followee, follower) | empty |
//! | `receipts` | `k`, scope, NUL, key / `t`, recorded_at, scope, NUL, key | a keyed write's receipt / empty (see `receipts`) |
//!
//! Stores of format 1 (see `open`) hold JSON records, read as well as binary ones, and
//! empty timeline index values: the message is then read from `messages`.
//!
//! In a durable store every write goes through the redo log (see `redo`): a
//! transaction's inserts and removals are recorded as it makes them ([`LoggedTree`]) and
//! appended to the log in commit order.

use crate::authors::Authors;
use crate::keys;
use crate::redo::{Op, Ops, RedoLog};
use minitwit_core::UserId;
use minitwit_core::store::{StoreError, StoreResult};
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};
use sled::{Db, IVec, Tree};
use std::cell::RefCell;
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
    /// The sequence number of the last redo-log record applied (see `redo`).
    pub(crate) const REDO_SEQ: &[u8] = b"redo_seq";
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
            /// Where a durable store's writes are logged; `None` when relaxed.
            pub(crate) log: Option<Arc<RedoLog>>,
        }

        /// The same trees inside one transaction, recording what is written.
        pub(crate) struct Tx<'a> {
            $($(#[$doc])* pub(crate) $name: LoggedTree<'a>,)*
        }

        impl Trees {
            /// Opens (creating if needed) every tree of `db`.
            pub(crate) fn open(db: &Db) -> sled::Result<Self> {
                $(let $name = db.open_tree(stringify!($name))?;)*
                let all = vec![$($name.clone()),*];
                Ok(Self { $($name,)* all, authors: Arc::default(), log: None })
            }
        }

        impl<'a> Tx<'a> {
            /// Names the trees of a whole-store transaction view; their writes go to `ops`.
            fn new(view: &'a [TransactionalTree], ops: &'a RefCell<Ops>) -> Self {
                let mut trees = view.iter().zip(0..);
                $(
                    // The view is built from `Trees::all`, which has one entry per name.
                    let (tree, index) =
                        trees.next().expect("one transactional tree per declared tree");
                    let $name = LoggedTree { tree, index, ops };
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

/// The position of `meta` in `Trees::all` (declared first), as the redo log names it.
const META_INDEX: u8 = 0;

/// A tree inside a transaction that records its writes for the redo log.
pub(crate) struct LoggedTree<'a> {
    tree: &'a TransactionalTree,
    index: u8,
    ops: &'a RefCell<Ops>,
}

/// What a read or write inside a transaction returns.
type TxOp<T> = Result<T, UnabortableTransactionError>;

impl LoggedTree<'_> {
    /// The value at `key`, as this transaction sees it.
    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> TxOp<Option<IVec>> {
        self.tree.get(key)
    }

    /// Sets `key` to `value`; the previous value.
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> TxOp<Option<IVec>> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.ops.borrow_mut().insert(self.index, key, value);
        self.tree.insert(key, value)
    }

    /// Removes `key`; the value it had.
    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> TxOp<Option<IVec>> {
        let key = key.as_ref();
        self.ops.borrow_mut().remove(self.index, key);
        self.tree.remove(key)
    }
}

/// The value of index entries whose key says it all.
pub(crate) const EMPTY: &[u8] = &[];

/// A transaction body's result: `Abort` carries a [`StoreError`].
pub(crate) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Trees {
    /// Runs `body` as one atomic transaction over every tree. `body` may run more than
    /// once (sled retries on conflict), so it must have no side effects.
    /// In a durable store the transaction is logged (see `redo`).
    pub(crate) fn transaction<T>(&self, body: impl Fn(&Tx<'_>) -> TxResult<T>) -> StoreResult<T> {
        match &self.log {
            None => self.run_transaction(None, &RefCell::default(), body),
            Some(log) => log.commit(|seq, logged| {
                let ops = RefCell::default();
                let value = self.run_transaction(Some(seq), &ops, body)?;
                *logged = ops.into_inner();
                Ok(value)
            }),
        }
    }

    /// Runs `body` in a sled transaction, its writes recorded in `ops`; a transaction
    /// that writes anything also records `seq` as the last redo record applied.
    fn run_transaction<T>(
        &self,
        seq: Option<u64>,
        ops: &RefCell<Ops>,
        body: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> StoreResult<T> {
        use sled::Transactional as _;
        let result = self.all[..].transaction(|view: &Vec<TransactionalTree>| {
            ops.borrow_mut().clear();
            let value = body(&Tx::new(view, ops))?;
            if let Some(seq) = seq.filter(|_| !ops.borrow().is_empty()) {
                view[usize::from(META_INDEX)].insert(meta::REDO_SEQ, &seq.to_be_bytes()[..])?;
            }
            Ok(value)
        });
        result.map_err(|err| match err {
            sled::transaction::TransactionError::Abort(store_error) => store_error,
            sled::transaction::TransactionError::Storage(sled_error) => backend(sled_error),
        })
    }

    /// Sets one value of `meta` outside any transaction (no lock but the log's), logged
    /// in a durable store.
    pub(crate) fn set_meta(&self, name: &[u8], value: i64) -> StoreResult<()> {
        let value = value.to_be_bytes();
        let write = || self.meta.insert(name, &value[..]).map(drop).map_err(backend);
        match &self.log {
            None => write(),
            Some(log) => log.commit(|_seq, ops| {
                ops.insert(META_INDEX, name, &value);
                write()
            }),
        }
    }

    /// The sequence number of the last redo record sled holds (0: none).
    pub(crate) fn redo_seq(&self) -> StoreResult<u64> {
        Ok(u64::try_from(self.meta_int(meta::REDO_SEQ)?).unwrap_or(0))
    }

    /// Applies a redo record again (opening after a crash), with its sequence number.
    pub(crate) fn apply_record(&self, seq: u64, ops: &[Op<'_>]) -> StoreResult<()> {
        let unknown_tree = |tree: u8| corrupt(&format!("a redo record names tree {tree}"));
        let mut batches: Vec<sled::Batch> =
            self.all.iter().map(|_| sled::Batch::default()).collect();
        for op in ops {
            let (index, key, value) = match *op {
                Op::Insert { tree, key, value } => (tree, key, Some(value)),
                Op::Remove { tree, key } => (tree, key, None),
            };
            let batch = batches.get_mut(usize::from(index)).ok_or_else(|| unknown_tree(index))?;
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        batches[usize::from(META_INDEX)].insert(meta::REDO_SEQ, &seq.to_be_bytes()[..]);
        use sled::Transactional as _;
        let result = self.all[..].transaction(|view: &Vec<TransactionalTree>| {
            for (tree, batch) in view.iter().zip(&batches) {
                tree.apply_batch(batch)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(())
        });
        result.map_err(|err| backend(format!("replaying redo record {seq}: {err}")))
    }

    /// Every key and value of every tree, in order (tests compare whole stores).
    #[cfg(test)]
    pub(crate) fn dump(&self) -> Vec<(usize, IVec, IVec)> {
        let entries = self.all.iter().enumerate().flat_map(|(index, tree)| {
            tree.iter().map(move |entry| entry.map(|(key, value)| (index, key, value)))
        });
        entries.collect::<sled::Result<_>>().expect("reading a test store")
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
