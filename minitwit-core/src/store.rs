//! The [`Store`] trait: the storage primitives every backend provides, and nothing more.
//!
//! Design decisions, shared by all backends:
//! - Stores hold no business rules: validation, hashing and error texts live in the
//!   service. A store only keeps data consistent (unique usernames, one row per follow
//!   pair, no message or follow pointing at a missing user).
//! - Every method that returns `Ok` has made its write durable: a crash right after
//!   cannot lose it (backends may offer a documented relaxed mode).
//! - Timelines are read with keyset cursors, newest first by `(pub_date, id)`, and a
//!   first page costs O(log n + page), never a scan of all messages.
//! - The trait is object-safe (`Arc<dyn Store>`), so front ends never name a backend.
//! - A store that reads from lagging copies keeps read-your-writes per reader through
//!   [`Store::for_reader`] and a [`ReadToken`]; every other store ignores tokens.
//! - A request answers in one statement where it can: a few methods combine reads (or a
//!   look-up and a write) that one request needs together, such as
//!   [`Store::user_with_generation`]. Each has a default made of the plain methods, so
//!   a store overrides it only where combining saves a round trip (PostgreSQL); its
//!   answer is always the one the plain methods give.

use crate::consistency::{ReadToken, Snapshot};
use crate::domain::MessageText;
use crate::feed::ChangeFeed;
use crate::idempotency::{FollowChange, Once, Receipt, ReceiptKey, Write};
use crate::model::{
    Counts, Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, NewUser,
    Timeline, TimelineEntry, User, UserId,
};
use async_trait::async_trait;
use std::sync::Arc;

/// The wait for an applied write to become durable (see [`Store::begin_set_latest`]).
pub type DurableWait = futures::future::BoxFuture<'static, StoreResult<()>>;

/// The wait of a write that is durable already.
pub fn already_durable() -> DurableWait {
    Box::pin(std::future::ready(Ok(())))
}

/// What went wrong in a store. Front ends map these to statuses through
/// [`crate::ServiceError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A user with that name exists already.
    #[error("the username is already taken")]
    UsernameTaken,
    /// The operation names a user id that does not exist.
    #[error("no user with id {0}")]
    UnknownUser(UserId),
    /// Imported records collide with what the store holds (a duplicate id, say).
    #[error("conflicting record: {0}")]
    Conflict(String),
    /// The store cannot be reached right now (database down, pool exhausted); retrying
    /// later may succeed. Front ends answer 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: I/O errors, corrupt data. Logged, answered as 500.
    #[error("store failure: {0}")]
    Backend(String),
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// What a write addressed to a user by name ([`Store::add_message_by_name`]) found: the
/// user missing or disabled (and nothing written), or the write's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByName<T> {
    /// Nobody has that name: nothing was written.
    UnknownUser,
    /// The user is disabled: nothing was written.
    Disabled,
    /// The user is enabled and the write ran: its answer.
    Done(T),
}

impl<T> ByName<T> {
    /// The write's answer mapped by `f`; nobody and disabled stay as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ByName<U> {
        match self {
            Self::UnknownUser => ByName::UnknownUser,
            Self::Disabled => ByName::Disabled,
            Self::Done(answer) => ByName::Done(f(answer)),
        }
    }

    /// [`ByName::map`] by a mapping that may fail.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<ByName<U>, E> {
        Ok(match self {
            Self::UnknownUser => ByName::UnknownUser,
            Self::Disabled => ByName::Disabled,
            Self::Done(answer) => ByName::Done(f(answer)?),
        })
    }
}

/// Persistent storage for MiniTwit. See the module documentation for the guarantees.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and metrics: `"sled"`, `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Whether only this process can write the store (sled locks its directory), so
    /// in-process caches of its answers stay valid ([`CachedStore`](crate::cache::CachedStore)).
    /// `false` unless a backend knows better.
    fn single_process(&self) -> bool {
        false
    }

    /// This store as seen by one reader carrying `token`: its reads reflect at least the
    /// writes up to the token's position, and its writes advance the token. `None` (the
    /// default) means every read already sees every acknowledged write, so the store
    /// serves all readers as it is.
    fn for_reader(&self, _token: ReadToken) -> Option<Arc<dyn Store>> {
        None
    }

    /// This store's delivery of changes to this process ([`crate::feed`]): every
    /// change any process makes through the store, told to this one. `None` (the
    /// default) for a store that delivers none; then no timeline is live.
    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        None
    }

    /// Why this store can no longer make writes durable in this process, if it cannot:
    /// a failure only a restart recovers from, such as sled's after a failed sync (the
    /// kernel may have dropped the pages it did not write, so no later sync proves
    /// anything). A server's `/health` fails then, so that its supervisor restarts it and
    /// the store recovers from what is on disk. `None` (the default) for a store whose
    /// failures pass by themselves, such as a database that is down for a while.
    fn broken(&self) -> Option<String> {
        None
    }

    /// Checks that the store answers (for `/ready`).
    async fn ping(&self) -> StoreResult<()>;

    /// Makes every acknowledged write durable and releases what can be released; called
    /// at shutdown.
    async fn flush(&self) -> StoreResult<()>;

    // --- users ---

    /// Creates a user; [`StoreError::UsernameTaken`] if the name exists.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// The user with this id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// The user with exactly this name.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    /// Up to `limit` users with ids greater than `after`, by id ascending.
    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>>;
    /// Replaces a user's password hash; `false` if there is no such user.
    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool>;
    /// Disables or enables a user; `false` if there is no such user.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    /// Deletes a user with their messages and follows (both ways); `false` if there was
    /// no such user.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    /// The user's session generation: 0 until first bumped (and for unknown users). A
    /// session cookie names the generation it was issued under and ends when it changes.
    async fn session_generation(&self, id: UserId) -> StoreResult<i64>;
    /// Ends every session of a user by incrementing their generation; `false` if there is
    /// no such user.
    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool>;
    /// The user with this id and their session generation, read together: what checking
    /// a session needs. `None` if there is no such user. By default
    /// [`Store::user_by_id`] then [`Store::session_generation`].
    async fn user_with_generation(&self, id: UserId) -> StoreResult<Option<(User, i64)>> {
        let Some(user) = self.user_by_id(id).await? else { return Ok(None) };
        Ok(Some((user, self.session_generation(id).await?)))
    }

    // --- messages ---

    /// Stores a message; [`StoreError::UnknownUser`] if the author does not exist.
    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId>;
    /// Stores `text` as a message of the user named exactly `username`, unless nobody has
    /// that name or the user is disabled: then it writes nothing and says which
    /// ([`ByName`]), so the service can apply its rule (a disabled user may not post)
    /// without reading the user first. By default [`Store::user_by_name`] then
    /// [`Store::add_message`].
    async fn add_message_by_name(
        &self,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<MessageId>> {
        let Some(author) = self.user_by_name(username).await? else {
            return Ok(ByName::UnknownUser);
        };
        if author.disabled {
            return Ok(ByName::Disabled);
        }
        let message = NewMessage { author_id: author.id, text, pub_date };
        Ok(ByName::Done(self.add_message(message).await?))
    }
    /// The message with this id, flagged or not.
    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Flags or unflags a message; `false` if there is no such message.
    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool>;
    /// Flags or unflags every message of `ids` in one transaction: all or nothing. The
    /// ids that name no message (nothing changed when there is one), else empty.
    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>>;
    /// Messages matching `filter`, by id descending (flagged ones included unless the
    /// filter says otherwise).
    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>>;
    /// Up to `limit` messages with ids greater than `after`, by id ascending, flagged
    /// included: the export order.
    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    // --- follows ---

    /// Records that `follower` follows `followee`; an existing pair is left as it is.
    /// [`StoreError::UnknownUser`] if either user does not exist.
    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()>;
    /// Removes the pair if it exists.
    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()>;
    /// Whether the pair exists.
    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool>;
    /// The names of up to `limit` users whom `follower` follows, by followee id ascending.
    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>>;
    /// [`Store::followees`] of the user named exactly `username`; `None` if nobody has
    /// that name. By default [`Store::user_by_name`] then [`Store::followees`].
    async fn followees_by_name(
        &self,
        username: &str,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        let Some(user) = self.user_by_name(username).await? else { return Ok(None) };
        Ok(Some(self.followees(user.id, limit).await?))
    }
    /// Up to `limit` follow pairs greater than `after`, by (follower, followee)
    /// ascending: the export order.
    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>>;

    // --- timelines ---

    /// Up to `limit` unflagged entries of `timeline` strictly older than `before` (all
    /// from the newest when `None`), newest first by `(pub_date, id)`.
    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>>;
    /// A number that moves whenever a write may change the public timeline, from a store
    /// that can tell (one only this process writes, behind a
    /// [`CachedStore`](crate::cache::CachedStore)); `None` from any other. It lets callers keep
    /// what they derive from the timeline (see [`PageMemo`](crate::cache::PageMemo)). A user's
    /// timeline is the public one's messages by that user, so it moves for those too.
    fn public_generation(&self) -> Option<u64> {
        None
    }
    /// A number that moves whenever a write may change a follow list (a follow, an
    /// unfollow, a user's deletion or disabling), from a store that can tell, as
    /// [`Store::public_generation`] for the public timeline; `None` from any other. It
    /// lets callers keep what they derive from follow lists (see
    /// [`FollowsMemo`](crate::cache::FollowsMemo)).
    fn follows_generation(&self) -> Option<u64> {
        None
    }
    /// What this store's reads see now, named ([`Snapshot`]), from a store that other
    /// processes write too and that can name it in one cheap statement; `None` from any
    /// other (the default), and whenever it cannot (a standby replaying its primary's
    /// log). Where the generations above are `None`, it lets callers serve again what
    /// they derived from reads while it stays equal ([`PageMemo`](crate::cache::PageMemo)).
    async fn snapshot(&self) -> StoreResult<Option<Snapshot>> {
        Ok(None)
    }

    // --- writes applied once (idempotency keys, see `crate::idempotency`) ---

    /// The receipt kept under `key`, unless it was recorded before `since` (expired).
    async fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>>;
    /// Applies `write` and keeps `receipt` under `key`, in one durable step, and returns
    /// `None`; but if a receipt recorded at or after `since` is kept under `key` already
    /// (a concurrent request with the key is waited for), writes nothing and returns it.
    /// A receipt recorded before `since` is replaced. Fails as the write itself would
    /// ([`StoreError::UsernameTaken`], [`StoreError::UnknownUser`]), keeping nothing.
    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>>;
    /// [`Store::apply_once`] of a post by the user named exactly `username`, as
    /// [`Store::add_message_by_name`] posts: unless nobody has that name or the user is
    /// disabled (then nothing is written and no receipt kept, and [`ByName`] says which),
    /// the post is applied once under `key`, and the answer is `apply_once`'s. By
    /// default [`Store::user_by_name`] then [`Store::apply_once`].
    async fn apply_once_by_name(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let Some(author) = self.user_by_name(username).await? else {
            return Ok(ByName::UnknownUser);
        };
        if author.disabled {
            return Ok(ByName::Disabled);
        }
        let post = Write::Post(NewMessage { author_id: author.id, text, pub_date });
        Ok(ByName::Done(self.apply_once(key, receipt, since, post).await?))
    }
    /// A follow or an unfollow (`change`) between the users named exactly `follower` and
    /// `followee`, as `POST /fllws/{username}` asks: applied as [`Store::follow`] or
    /// [`Store::unfollow`] would, or, with `once`, under its key as [`Store::apply_once`]
    /// (whose answer is the `Done`'s). If either name is nobody's, nothing is written and
    /// no receipt kept: [`ByName::UnknownUser`]. Never [`ByName::Disabled`]: following has
    /// no rule for disabled users. By default [`Store::user_by_name`] twice, then the write.
    async fn change_follow_by_names(
        &self,
        follower: &str,
        followee: &str,
        change: FollowChange,
        once: Option<Once<'_>>,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let Some(follower) = self.user_by_name(follower).await? else {
            return Ok(ByName::UnknownUser);
        };
        let Some(followee) = self.user_by_name(followee).await? else {
            return Ok(ByName::UnknownUser);
        };
        let (follower, followee) = (follower.id, followee.id);
        if let Some(once) = once {
            let write = change.write(follower, followee);
            return Ok(ByName::Done(
                self.apply_once(once.key, once.receipt, once.since, write).await?,
            ));
        }
        match change {
            FollowChange::Follow => self.follow(follower, followee).await?,
            FollowChange::Unfollow => self.unfollow(follower, followee).await?,
        }
        Ok(ByName::Done(None))
    }
    /// Removes up to `limit` receipts recorded before `before`, oldest first, in one
    /// step; how many it removed.
    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize>;

    // --- simulator state and settings ---

    /// The id of the last simulator action processed, if any was recorded.
    async fn latest(&self) -> StoreResult<Option<i64>>;
    /// Records the id of the last simulator action processed.
    async fn set_latest(&self, latest: i64) -> StoreResult<()>;
    /// Records `latest` as [`Store::set_latest`] does, but returns as soon as later reads
    /// see it, with the wait for its durability: a store that makes writes durable in
    /// shared flushes lets it ride on the flush of the caller's next write instead of one
    /// of its own, and one with transactions may record it in that write's transaction
    /// (a read in this process still sees it at once). By default the whole write
    /// happens here.
    async fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait> {
        self.set_latest(latest).await?;
        Ok(already_durable())
    }
    /// A server setting (such as the session signing key).
    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `value` under `key` unless a value is there already, atomically, and
    /// returns the value now stored: replicas racing to create a key agree on one.
    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;

    // --- bulk ---

    /// Cheap totals (no scan of all data).
    async fn counts(&self) -> StoreResult<Counts>;
    /// Writes records as they are, keeping ids, hashes, dates and flags, in one durable
    /// step; later ids continue above the largest imported ones.
    /// [`StoreError::Conflict`] if an id or username exists already.
    async fn import(&self, batch: ImportBatch) -> StoreResult<()>;
    /// The undo of [`Store::import`]: removes the batch's users (with everything of
    /// theirs), messages and follow pairs, in one durable step; records the store does
    /// not hold are skipped. Ids stay used.
    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()>;
    /// Ends an import, in one durable step: records `latest` when given and removes the
    /// setting [`IMPORT_MARK`] (the import in progress).
    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()>;
}

/// The setting that marks an import in progress (see [`crate::transfer`]): set before
/// its first batch, removed by [`Store::end_import`]. A store holding it holds part of
/// an import, and is not served.
pub const IMPORT_MARK: &str = "import_in_progress";
