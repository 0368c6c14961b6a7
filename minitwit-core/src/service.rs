//! [`MiniTwit`]: the service both front ends and the CLI call. Every rule lives here.

use crate::cache::{FollowsMemo, HomePageMemo, PageMemo, PublicPageMemo, Seen, UserPageMemo};
use crate::consistency::ReadToken;
use crate::domain::{MessageText, PageSize, Password, Registration, ValidationError};
use crate::idempotency::{
    DEFAULT_RECEIPT_WINDOW, FollowChange, Keyed, Once, Outcome, Receipt, Write,
};
use crate::latest::{LatestWrites, PendingLatest};
use crate::model::{
    Counts, Cursor, Message, MessageFilter, MessageId, NewMessage, NewUser, Page, Timeline, User,
    UserId, unix_now,
};
use crate::password_hash::{HashCost, HashError, Hasher};
use crate::store::{ByName, Store, StoreError};
use percent_encoding::percent_decode_str;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why a service call failed: the one vocabulary of failures both front ends and the CLI
/// share (CONTRACT.md §5). Each variant has one HTTP status, given by
/// [`ServiceError::status`]; the site renders it as an error page, the API as its JSON
/// error shape, the CLI as a message and exit status 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// 400 Bad Request: client input broke a rule of the domain; the text is the rule's.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// 400 Bad Request: a registration with a name that is already registered.
    #[error("The username is already taken")]
    UsernameTaken,
    /// 404 Not Found: no user of that name or id (also a name that cannot be anyone's).
    #[error("Unknown user")]
    UnknownUser,
    /// 404 Not Found: no message with these ids (all of them are named).
    #[error("Unknown messages: {}", join_ids(.0))]
    UnknownMessages(Vec<MessageId>),
    /// 403 Forbidden: a sign-in with a name nobody has. (The site shows it in its sign-in
    /// form, as the original did.)
    #[error("Invalid username")]
    InvalidUsername,
    /// 403 Forbidden: a sign-in with the wrong password. (Shown in the sign-in form too.)
    #[error("Invalid password")]
    InvalidPassword,
    /// 403 Forbidden: the account is disabled; it may not sign in or post.
    #[error("This account is disabled")]
    AccountDisabled,
    /// 503 Service Unavailable: the store cannot be reached; try again later. The store's
    /// error, with its reason, is the [`source`](std::error::Error::source), for the log.
    #[error("The service is temporarily unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// 503 Service Unavailable: too much expensive work (password hashing) is queued
    /// already; try again in a moment.
    #[error("The server is busy; please try again in a moment")]
    Overloaded,
    /// 503 Service Unavailable: the request took longer than its caller allows (a
    /// server's request deadline) and was given up; try again in a moment.
    #[error("The request took too long; please try again in a moment")]
    TimedOut,
    /// 422 Unprocessable Content: an idempotency key already recorded for a different
    /// request of the same caller (a retry must repeat its request exactly).
    #[error("This Idempotency-Key was used for a different request")]
    KeyReused,
    /// 500 Internal Server Error: the service was called outside a Tokio 1.x runtime,
    /// which it runs writes and password hashing on. An embedder's mistake, never a
    /// client's: call it from within a runtime (`#[tokio::main]`, `Runtime::block_on`).
    #[error("MiniTwit must be called from within a Tokio 1.x runtime")]
    NoRuntime,
    /// 500 Internal Server Error: a failure inside the server, with its detail. The
    /// detail is for the log and an embedder, never a client: front ends answer
    /// [`ServiceError::client_text`].
    #[error("Internal error: {0}")]
    Internal(String),
    /// 500 Internal Server Error: the store failed (an I/O error, corrupt data, a
    /// conflict it cannot resolve). The store's error is the
    /// [`source`](std::error::Error::source); clients are told what
    /// [`ServiceError::Internal`] tells them.
    #[error("Internal error: {0}")]
    Store(#[source] StoreError),
}

impl ServiceError {
    /// The HTTP status code of this failure, the one place it is decided (as a number, so
    /// the core needs no HTTP crate).
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid(_) | Self::UsernameTaken => 400,
            Self::InvalidUsername | Self::InvalidPassword | Self::AccountDisabled => 403,
            Self::UnknownUser | Self::UnknownMessages(_) => 404,
            Self::KeyReused => 422,
            Self::Internal(_) | Self::Store(_) | Self::NoRuntime => 500,
            Self::Unavailable(_) | Self::Overloaded | Self::TimedOut => 503,
        }
    }

    /// What a client is told (CONTRACT.md §5): the contract's text, without the detail
    /// of an internal failure or of the store's unavailability.
    pub fn client_text(&self) -> String {
        match self {
            Self::Internal(_) | Self::Store(_) | Self::NoRuntime => {
                "Internal server error".to_owned()
            }
            Self::Unavailable(_) => "The service is temporarily unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::UnknownUser(_) => Self::UnknownUser,
            unavailable @ StoreError::Unavailable(_) => Self::Unavailable(unavailable),
            other @ (StoreError::Conflict(_) | StoreError::Backend(_)) => Self::Store(other),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Overloaded => Self::Overloaded,
            HashError::NoRuntime => Self::NoRuntime,
            HashError::Failed(detail) => Self::Internal(detail),
        }
    }
}

/// `Ok` when a store call found its user, else [`ServiceError::UnknownUser`].
fn found(user_existed: bool) -> ServiceResult<()> {
    user_existed.then_some(()).ok_or(ServiceError::UnknownUser)
}

/// Shorthand for service results.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// A `latest` that later reads already see, not yet known to be durable
/// ([`MiniTwit::record_latest`]).
#[must_use = "a request is acknowledged only once its `latest` is durable"]
pub struct LatestRecorded(PendingLatest);

impl LatestRecorded {
    /// Waits until the value (or a newer one) is durable.
    pub async fn durable(self) -> ServiceResult<()> {
        Ok(self.0.await?)
    }
}

/// The settings key under which the session signing key is kept.
const SESSION_KEY_SETTING: &str = "session_key";
/// Length of a generated session key, in bytes.
const SESSION_KEY_LEN: usize = 64;

/// Receipts removed per step of [`MiniTwit::forget_expired_receipts`].
const SWEEP_BATCH: usize = 1_000;
/// Steps per call of [`MiniTwit::forget_expired_receipts`]: its work is bounded, and what
/// is left goes in the next call.
const SWEEP_STEPS: usize = 10;

/// The MiniTwit service over any [`Store`]. Cheap to clone.
///
/// # Runtime
/// Call it from within a Tokio 1.x runtime (`#[tokio::main]`, or `Runtime::block_on`):
/// writes run to completion on their own task and password hashing on the runtime's
/// blocking pool. Called from anywhere else, it answers [`ServiceError::NoRuntime`]
/// rather than panicking.
#[derive(Clone)]
pub struct MiniTwit {
    store: Arc<dyn Store>,
    hasher: Hasher,
    latest: Arc<LatestWrites>,
    /// How long a keyed write's receipt answers its retries.
    receipt_window: Duration,
}

impl MiniTwit {
    /// The service over `store` with recommended password hashing: Argon2id at 7 MiB and
    /// 5 passes, some 11 ms per registration or sign-in in a release build on a current
    /// x86 core. Unoptimised, as in a debug build of a program embedding this crate, it
    /// takes some 20 times longer: add
    /// `[profile.dev.package.argon2] opt-level = 3` to that program's `Cargo.toml` (this
    /// workspace's own profile does not carry over). [`HashCost::Insecure`] is for tests
    /// and benchmarks only: its hashes are cheap to guess.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_hash_cost(store, HashCost::Recommended)
    }

    /// The service with an explicit hashing cost (tests and benchmarks use
    /// [`HashCost::Insecure`]).
    pub fn with_hash_cost(store: Arc<dyn Store>, cost: HashCost) -> Self {
        Self::with_hasher(store, Hasher::new(cost))
    }

    /// The service with a configured hasher (its cost and pool).
    pub fn with_hasher(store: Arc<dyn Store>, hasher: Hasher) -> Self {
        Self { store, hasher, latest: Arc::default(), receipt_window: DEFAULT_RECEIPT_WINDOW }
    }

    /// Makes every acknowledged write durable (the store's last flush) and lets go of
    /// this handle on the store. Dropping the service without it is safe too: a store
    /// closes when its last holder drops it (sled flushes then), but a failure at that
    /// point can only be logged, not returned.
    pub async fn close(self) -> ServiceResult<()> {
        Ok(self.store.flush().await?)
    }

    /// The service keeping keyed writes' receipts for `window` (see
    /// [`crate::idempotency`]): a retry within it is answered from the receipt.
    #[must_use]
    pub fn keeping_receipts_for(mut self, window: Duration) -> Self {
        self.receipt_window = window;
        self
    }

    /// The service as seen by one reader carrying `token` (see [`crate::consistency`]):
    /// reads reflect the reader's own writes, and writes advance the token, which the
    /// front end hands back to the client.
    pub fn for_reader(&self, token: ReadToken) -> Self {
        match self.store.for_reader(token) {
            // Its own `latest` coalescing: a write through another reader's view would
            // not advance this reader's token.
            Some(store) => Self { store, latest: Arc::default(), ..self.clone() },
            None => self.clone(),
        }
    }

    /// The underlying store, for bulk work (export, copy) and shutdown.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether this process can still serve: `Err` with the reason once the store is
    /// [broken](Store::broken), which only a restart mends (`/health`).
    pub fn alive(&self) -> ServiceResult<()> {
        match self.store.broken() {
            Some(reason) => Err(ServiceError::Store(StoreError::Backend(reason))),
            None => Ok(()),
        }
    }

    /// Whether the store answers (`/ready`).
    pub async fn ready(&self) -> ServiceResult<()> {
        Ok(self.store.ping().await?)
    }

    // --- accounts ---

    /// Registers a user; [`ServiceError::UsernameTaken`] if the name exists.
    pub async fn register(&self, registration: Registration) -> ServiceResult<User> {
        let (store, hasher) = (Arc::clone(&self.store), self.hasher.clone());
        // A flood of sign-ups is refused here, before it costs the store a lookup each.
        hasher.has_room()?;
        run_to_completion(async move {
            let user = new_user(store.as_ref(), &hasher, registration).await?;
            Ok(store.create_user(user).await?)
        })
        .await
    }

    /// Checks a login: [`ServiceError::InvalidUsername`], [`ServiceError::InvalidPassword`]
    /// or [`ServiceError::AccountDisabled`] when it fails.
    pub async fn authenticate(&self, username: &str, password: &str) -> ServiceResult<User> {
        let user = self.find_user(username).await?.ok_or(ServiceError::InvalidUsername)?;
        if !self.hasher.verify(password, &user.pw_hash).await? {
            return Err(ServiceError::InvalidPassword);
        }
        if user.disabled {
            return Err(ServiceError::AccountDisabled);
        }
        Ok(user)
    }

    /// The user with exactly this name, or [`ServiceError::UnknownUser`].
    pub async fn user(&self, username: &str) -> ServiceResult<User> {
        self.find_user(username).await?.ok_or(ServiceError::UnknownUser)
    }

    /// The user named by a percent-encoded URL path segment (`Roger%20Histand`), as both
    /// front ends receive names (CONTRACT.md §2). A segment that does not decode to UTF-8
    /// names nobody: [`ServiceError::UnknownUser`].
    pub async fn user_at(&self, segment: &str) -> ServiceResult<User> {
        self.user(&name_at(segment)?).await
    }

    /// The user with exactly this name. A name with a control character cannot be anyone's
    /// ([`crate::Username`] refuses them), and some stores cannot even be asked about one
    /// (PostgreSQL's text holds no NUL), so such a name is answered without the store.
    async fn find_user(&self, username: &str) -> ServiceResult<Option<User>> {
        if !may_name_someone(username) {
            return Ok(None);
        }
        Ok(self.store.user_by_name(username).await?)
    }

    /// The user with this id, if any (a session may outlive its user).
    pub async fn user_by_id(&self, id: UserId) -> ServiceResult<Option<User>> {
        Ok(self.store.user_by_id(id).await?)
    }

    /// Up to `limit` users with ids above `after`, by id.
    pub async fn users(&self, after: Option<UserId>, limit: PageSize) -> ServiceResult<Vec<User>> {
        Ok(self.store.users_after(after, limit.get()).await?)
    }

    /// Sets a new password for `username`.
    pub async fn set_password(&self, username: &str, password: &Password) -> ServiceResult<()> {
        let user = self.user(username).await?;
        let hash = self.hasher.hash(password).await?;
        found(self.store.set_password_hash(user.id, &hash).await?)?;
        self.end_sessions(user.id).await
    }

    /// Disables (or re-enables) `username`: a disabled user cannot log in or post, and
    /// their sessions end.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> ServiceResult<()> {
        let user = self.user(username).await?;
        found(self.store.set_disabled(user.id, disabled).await?)?;
        self.end_sessions(user.id).await
    }

    /// Signs `username` out everywhere: every session issued so far ends.
    pub async fn sign_out_everywhere(&self, username: &str) -> ServiceResult<()> {
        let user = self.user(username).await?;
        self.end_sessions(user.id).await
    }

    /// The generation a session of user `id` must carry to be valid.
    pub async fn session_generation(&self, id: UserId) -> ServiceResult<i64> {
        Ok(self.store.session_generation(id).await?)
    }

    /// The user with this id and the generation their sessions must carry, read
    /// together (one statement on PostgreSQL): what checking a session needs. `None`
    /// when the user is gone (a session may outlive its user).
    pub async fn user_with_generation(&self, id: UserId) -> ServiceResult<Option<(User, i64)>> {
        Ok(self.store.user_with_generation(id).await?)
    }

    async fn end_sessions(&self, id: UserId) -> ServiceResult<()> {
        found(self.store.bump_session_generation(id).await?)
    }

    /// Deletes `username` with their messages and follows.
    pub async fn delete_user(&self, username: &str) -> ServiceResult<()> {
        let user = self.user(username).await?;
        self.store.delete_user(user.id).await?.then_some(()).ok_or(ServiceError::UnknownUser)
    }

    // --- messages ---

    /// Posts `text` as `author` now; [`ServiceError::AccountDisabled`] for a disabled author.
    ///
    /// Unlike the follow methods, this takes the author's record, not an id: whether the
    /// account may post is part of it, and every caller has just read it (signing in, or
    /// [`MiniTwit::user`]), so the service does not read it again.
    pub async fn post(&self, author: &User, text: MessageText) -> ServiceResult<MessageId> {
        if author.disabled {
            return Err(ServiceError::AccountDisabled);
        }
        let message = NewMessage { author_id: author.id, text, pub_date: unix_now() };
        let store = Arc::clone(&self.store);
        run_to_completion(async move { Ok(store.add_message(message).await?) }).await
    }

    /// Flags (hides) or unflags every message in `ids`. All ids are checked first, so
    /// unknown ids change nothing: [`ServiceError::UnknownMessages`] names them all.
    pub async fn set_flagged(&self, ids: &[MessageId], flagged: bool) -> ServiceResult<()> {
        let unknown = self.store.set_flagged_all(ids, flagged).await?;
        if unknown.is_empty() { Ok(()) } else { Err(ServiceError::UnknownMessages(unknown)) }
    }

    /// Messages for administration, newest id first.
    pub async fn messages(&self, filter: MessageFilter) -> ServiceResult<Vec<Message>> {
        Ok(self.store.list_messages(filter).await?)
    }

    // --- follows ---

    /// `follower` follows `followee`; following twice leaves one pair.
    pub async fn follow(&self, follower: UserId, followee: UserId) -> ServiceResult<()> {
        self.follow_once(follower, followee, None).await.map(drop)
    }

    /// `follower` stops following `followee`; not following is not an error.
    pub async fn unfollow(&self, follower: UserId, followee: UserId) -> ServiceResult<()> {
        self.unfollow_once(follower, followee, None).await.map(drop)
    }

    /// Whether `follower` follows `followee`.
    pub async fn is_following(&self, follower: UserId, followee: UserId) -> ServiceResult<bool> {
        Ok(self.store.is_following(follower, followee).await?)
    }

    /// The names of up to `limit` users whom `user` follows.
    pub async fn followees(&self, user: UserId, limit: PageSize) -> ServiceResult<Vec<String>> {
        Ok(self.store.followees(user, limit.get()).await?)
    }

    /// The names of up to `limit` users whom the user a percent-encoded path segment
    /// names follows (`GET /fllws/{username}`), in one store call; an unknown user is
    /// [`ServiceError::UnknownUser`], as for [`MiniTwit::user_at`].
    pub async fn followees_at(&self, segment: &str, limit: PageSize) -> ServiceResult<Vec<String>> {
        let name = name_at(segment)?;
        let follows = self.store.followees_by_name(&name, limit.get()).await?;
        follows.ok_or(ServiceError::UnknownUser)
    }

    /// `derive` of [`MiniTwit::followees_at`]'s list, taken from `memo` while no write has
    /// changed follow lists since it was derived ([`Store::follows_generation`]); over a
    /// store that cannot tell (PostgreSQL, which other processes write), the list is read
    /// every time and `derive` runs only when it differs from the list last derived. For
    /// answers built the same for every caller, such as `GET /fllws/{username}?no=N`.
    pub async fn followees_derived_at<V: Clone, E: From<ServiceError>>(
        &self,
        segment: &str,
        limit: PageSize,
        memo: &FollowsMemo<V>,
        derive: impl FnOnce(Vec<String>) -> Result<V, E>,
    ) -> Result<V, E> {
        let (key, read) = ((segment.to_owned(), limit.get()), self.followees_at(segment, limit));
        self.memoised(key, memo, |store| store.follows_generation(), read, derive).await
    }

    // --- timelines ---

    /// One page of `timeline`, older than `before`, with the cursor of the next page.
    pub async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        size: PageSize,
    ) -> ServiceResult<Page> {
        let size = size.get();
        // One extra entry tells whether an older page exists, without a count query.
        let mut entries = self.store.timeline(timeline, before, size + 1).await?;
        let next = if entries.len() > size {
            entries.truncate(size);
            entries.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page { entries, next })
    }

    /// `derive` of the public timeline's first page of `size` entries, taken from `memo`
    /// while no write has changed the timeline since it was derived; over a store that
    /// cannot tell (PostgreSQL, which other processes write), the page is read every
    /// time and `derive` runs only when it differs from the page last derived. For
    /// answers built the same for every reader, such as `/msgs?no=N` or the public page
    /// of a visitor who is not signed in.
    pub async fn public_first_page<V: Clone, E: From<ServiceError>>(
        &self,
        size: PageSize,
        memo: &PublicPageMemo<V>,
        derive: impl FnOnce(Page) -> Result<V, E>,
    ) -> Result<V, E> {
        let read = self.timeline(Timeline::Public, None, size);
        self.memoised(size.get(), memo, |store| store.public_generation(), read, derive).await
    }

    /// [`MiniTwit::public_first_page`] for the first page of the user a path segment
    /// names ([`MiniTwit::user_at`]), such as `/msgs/{username}?no=N`.
    pub async fn user_first_page<V: Clone, E: From<ServiceError>>(
        &self,
        segment: &str,
        size: PageSize,
        memo: &UserPageMemo<V>,
        derive: impl FnOnce(Page) -> Result<V, E>,
    ) -> Result<V, E> {
        let read = async {
            let user = self.user_at(segment).await?;
            self.timeline(Timeline::User(user.id), None, size).await
        };
        let key = (segment.to_owned(), size.get());
        self.memoised(key, memo, |store| store.public_generation(), read, derive).await
    }

    /// `derive` of `reader`'s home timeline's first page of `size` entries, such as a
    /// signed-in home page without flashes (built from the reader's name and the page
    /// alone). Kept while neither [`Store::public_generation`] nor
    /// [`Store::follows_generation`] has moved (every change of a home timeline moves
    /// one); over a store that cannot tell, while the store's
    /// [`Snapshot`](crate::consistency::Snapshot) stays equal, or, from a store that
    /// cannot name one, read every time and derived again only when it differs from the
    /// page last derived.
    pub async fn home_first_page<V: Clone, E: From<ServiceError>>(
        &self,
        reader: &User,
        size: PageSize,
        memo: &HomePageMemo<V>,
        derive: impl FnOnce(Page) -> Result<V, E>,
    ) -> Result<V, E> {
        let read = self.timeline(Timeline::Home(reader.id), None, size);
        let key = (reader.id, reader.username.clone());
        self.memoised(key, memo, timelines_generation, read, derive).await
    }

    /// `derive` of what `read` returns, through `memo` under `key`: kept while the
    /// store's `generation` (public or follows) has not moved; over a store that cannot
    /// tell, while its [`Snapshot`](crate::consistency::Snapshot) stays equal; over a
    /// store that cannot name that either, derived again only when what is read differs
    /// from what it was last derived from.
    async fn memoised<K: std::hash::Hash + Eq, V: Clone, P: PartialEq + Clone, E>(
        &self,
        key: K,
        memo: &PageMemo<K, V, P>,
        generation: fn(&dyn Store) -> Option<u64>,
        read: impl Future<Output = ServiceResult<P>>,
        derive: impl FnOnce(P) -> Result<V, E>,
    ) -> Result<V, E>
    where
        E: From<ServiceError>,
    {
        let seen = match generation(self.store.as_ref()) {
            Some(generation) => Seen::Generation(generation),
            None => match self.store.snapshot().await.map_err(ServiceError::from)? {
                // A read started after the snapshot was taken sees at least what it names.
                Some(snapshot) => Seen::Snapshot(snapshot),
                None => return by_page(key, memo, read.await?, derive),
            },
        };
        if let Some(hit) = memo.get(&key, &seen) {
            return Ok(hit);
        }
        let value = derive(read.await?)?;
        let still_current = |seen: &Seen<P>| match seen {
            Seen::Generation(at) => generation(self.store.as_ref()) == Some(*at),
            // Served only while equal to the store's snapshot (or page): nothing to check.
            Seen::Snapshot(_) | Seen::Page(_) => true,
        };
        memo.keep(key, seen, value.clone(), still_current);
        Ok(value)
    }

    // --- writes applied once ---

    /// [`MiniTwit::register`] under `keyed`'s key: applied at most once, however often
    /// it is retried within the receipt window (see [`crate::idempotency`]).
    pub async fn register_once(
        &self,
        registration: Registration,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        let Some(keyed) = keyed else {
            return self.register(registration).await.map(|_| Outcome::Applied);
        };
        if let Some(replayed) = self.recorded(&keyed).await? {
            return Ok(replayed);
        }
        let (store, hasher) = (Arc::clone(&self.store), self.hasher.clone());
        hasher.has_room()?;
        let since = self.receipts_since();
        run_to_completion(async move {
            let user = match new_user(store.as_ref(), &hasher, registration).await {
                // The name may be taken by this very request's first attempt, committed
                // since the look-up above: then its receipt is there now.
                Err(ServiceError::UsernameTaken) => {
                    let receipt = store.receipt(&keyed.key, since).await?;
                    return match receipt {
                        Some(receipt) => replayed(&keyed, receipt),
                        None => Err(ServiceError::UsernameTaken),
                    };
                }
                user => user?,
            };
            apply_once(store.as_ref(), keyed, since, Write::Register(user)).await
        })
        .await
    }

    /// [`MiniTwit::post`] under `keyed`'s key: applied at most once.
    pub async fn post_once(
        &self,
        author: &User,
        text: MessageText,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        let Some(keyed) = keyed else {
            return self.post(author, text).await.map(|_| Outcome::Applied);
        };
        if author.disabled {
            // Refused, unless this is the retry of a post made before the account was
            // disabled.
            return self.recorded(&keyed).await?.ok_or(ServiceError::AccountDisabled);
        }
        let message = NewMessage { author_id: author.id, text, pub_date: unix_now() };
        self.write_once(Some(keyed), Write::Post(message)).await
    }

    /// [`MiniTwit::post_once`] by the user a percent-encoded path segment names
    /// (`POST /msgs/{username}`), with the same rules and answers: an unknown user is
    /// [`ServiceError::UnknownUser`] (see [`MiniTwit::user_at`]); a disabled one
    /// [`ServiceError::AccountDisabled`], unless the key's receipt answers. The look-up
    /// and the write are one store call ([`Store::add_message_by_name`]), one
    /// statement on PostgreSQL.
    pub async fn post_once_at(
        &self,
        segment: &str,
        text: MessageText,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        let name = name_at(segment)?;
        let (store, since, pub_date) = (Arc::clone(&self.store), self.receipts_since(), unix_now());
        let name = name.into_owned();
        let Some(keyed) = keyed else {
            let post = async move { Ok(store.add_message_by_name(&name, text, pub_date).await?) };
            return match run_to_completion(post).await? {
                ByName::UnknownUser => Err(ServiceError::UnknownUser),
                ByName::Disabled => Err(ServiceError::AccountDisabled),
                ByName::Done(_) => Ok(Outcome::Applied),
            };
        };
        let sent = keyed.clone();
        let post = run_to_completion(async move {
            let (key, receipt) = (&sent.key, &sent.receipt);
            Ok(store.apply_once_by_name(key, receipt, since, &name, text, pub_date).await?)
        });
        match post.await? {
            ByName::UnknownUser => Err(ServiceError::UnknownUser),
            // Refused, unless this is the retry of a post made before the account was
            // disabled (as `post_once`).
            ByName::Disabled => self.recorded(&keyed).await?.ok_or(ServiceError::AccountDisabled),
            ByName::Done(None) => Ok(Outcome::Applied),
            ByName::Done(Some(receipt)) => replayed(&keyed, receipt),
        }
    }

    /// [`MiniTwit::follow`] under `keyed`'s key: applied at most once.
    pub async fn follow_once(
        &self,
        follower: UserId,
        followee: UserId,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        self.write_once(keyed, Write::Follow { follower, followee }).await
    }

    /// [`MiniTwit::unfollow`] under `keyed`'s key: applied at most once.
    pub async fn unfollow_once(
        &self,
        follower: UserId,
        followee: UserId,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        self.write_once(keyed, Write::Unfollow { follower, followee }).await
    }

    /// [`MiniTwit::follow_once`] or [`MiniTwit::unfollow_once`] (`change`) between the
    /// user a percent-encoded path segment names and the user named `target`, as `POST
    /// /fllws/{username}` asks, with the same answers: either unknown is
    /// [`ServiceError::UnknownUser`]. The look-ups and the write are one store call
    /// ([`Store::change_follow_by_names`]), one statement on PostgreSQL.
    pub async fn change_follow_at(
        &self,
        segment: &str,
        target: &str,
        change: FollowChange,
        keyed: Option<Keyed>,
    ) -> ServiceResult<Outcome> {
        let follower = name_at(segment)?.into_owned();
        if !may_name_someone(target) {
            return Err(ServiceError::UnknownUser);
        }
        let (store, since, target) =
            (Arc::clone(&self.store), self.receipts_since(), target.to_owned());
        let sent = keyed.clone();
        let changed = run_to_completion(async move {
            let once =
                sent.as_ref().map(|sent| Once { key: &sent.key, receipt: &sent.receipt, since });
            Ok(store.change_follow_by_names(&follower, &target, change, once).await?)
        });
        match (changed.await?, keyed) {
            (ByName::UnknownUser, _) => Err(ServiceError::UnknownUser),
            (ByName::Disabled, _) => Err(ServiceError::AccountDisabled),
            (ByName::Done(Some(receipt)), Some(keyed)) => replayed(&keyed, receipt),
            (ByName::Done(_), _) => Ok(Outcome::Applied),
        }
    }

    /// Removes receipts older than the window, a bounded number per call (the rest in
    /// the next); how many it removed. A server calls it now and then; an expired
    /// receipt is ignored whether or not it has been removed.
    pub async fn forget_expired_receipts(&self) -> ServiceResult<usize> {
        let before = self.receipts_since();
        let mut forgotten = 0;
        for _ in 0..SWEEP_STEPS {
            let step = self.store.forget_receipts(before, SWEEP_BATCH).await?;
            forgotten += step;
            if step < SWEEP_BATCH {
                break;
            }
        }
        Ok(forgotten)
    }

    /// The receipt's answer if `keyed`'s key is recorded already.
    async fn recorded(&self, keyed: &Keyed) -> ServiceResult<Option<Outcome>> {
        let receipt = self.store.receipt(&keyed.key, self.receipts_since()).await?;
        receipt.map(|receipt| replayed(keyed, receipt)).transpose()
    }

    /// `write`, under `keyed`'s key when there is one, run to completion: the store finds
    /// a receipt already there itself, so no look-up comes first.
    async fn write_once(&self, keyed: Option<Keyed>, write: Write) -> ServiceResult<Outcome> {
        let (store, since) = (Arc::clone(&self.store), self.receipts_since());
        run_to_completion(async move {
            match keyed {
                Some(keyed) => apply_once(store.as_ref(), keyed, since, write).await,
                None => apply(store.as_ref(), write).await.map(|()| Outcome::Applied),
            }
        })
        .await
    }

    /// The oldest recording time of a receipt still in force.
    fn receipts_since(&self) -> i64 {
        let window = i64::try_from(self.receipt_window.as_secs()).unwrap_or(i64::MAX);
        unix_now().saturating_sub(window)
    }

    // --- simulator state, settings, stats ---

    /// The id of the last simulator action, or -1 before any.
    pub async fn latest(&self) -> ServiceResult<i64> {
        Ok(self.store.latest().await?.unwrap_or(-1))
    }

    /// Records the id of the last simulator action. Concurrent calls are coalesced: on
    /// `Ok` the store durably holds this value or one recorded after it (see `latest.rs`).
    pub async fn set_latest(&self, latest: i64) -> ServiceResult<()> {
        self.record_latest(latest).await?.durable().await
    }

    /// Begins recording the id of the last simulator action: on `Ok` later reads see it
    /// (or a newer value), and [`LatestRecorded::durable`] waits until a crash cannot lose
    /// it. A front end records `latest` first, does the request's own work, then waits:
    /// on sled the request's write and `latest` share one flush.
    pub async fn record_latest(&self, latest: i64) -> ServiceResult<LatestRecorded> {
        let (store, writes) = (Arc::clone(&self.store), Arc::clone(&self.latest));
        let pending =
            run_to_completion(async move { Ok(writes.begin(store.as_ref(), latest).await?) })
                .await?;
        Ok(LatestRecorded(pending))
    }

    /// The session signing key: generated once and kept in the store, so every replica
    /// over the same store signs with the same key.
    pub async fn session_key(&self) -> ServiceResult<Vec<u8>> {
        if let Some(key) = self.store.setting(SESSION_KEY_SETTING).await? {
            return Ok(key);
        }
        let fresh: [u8; SESSION_KEY_LEN] = rand::random();
        Ok(self.store.init_setting(SESSION_KEY_SETTING, &fresh).await?)
    }

    /// Totals of users, messages, follows and flagged messages.
    pub async fn stats(&self) -> ServiceResult<Counts> {
        Ok(self.store.counts().await?)
    }
}

/// The user `registration` creates, its password hashed; [`ServiceError::UsernameTaken`]
/// (before the costly hash) if the name is registered already.
async fn new_user(
    store: &dyn Store,
    hasher: &Hasher,
    registration: Registration,
) -> ServiceResult<NewUser> {
    let Registration { username, email, password } = registration;
    if store.user_by_name(username.as_ref()).await?.is_some() {
        return Err(ServiceError::UsernameTaken);
    }
    let pw_hash = hasher.hash(&password).await?;
    Ok(NewUser { username, email, pw_hash })
}

/// `write` applied, without a key.
async fn apply(store: &dyn Store, write: Write) -> ServiceResult<()> {
    match write {
        Write::Register(user) => store.create_user(user).await.map(drop),
        Write::Post(message) => store.add_message(message).await.map(drop),
        Write::Follow { follower, followee } => store.follow(follower, followee).await,
        Write::Unfollow { follower, followee } => store.unfollow(follower, followee).await,
    }
    .map_err(ServiceError::from)
}

/// `write` applied once under `keyed`'s key: [`Outcome::Applied`], or the answer of the
/// request that recorded the key first.
async fn apply_once(
    store: &dyn Store,
    keyed: Keyed,
    since: i64,
    write: Write,
) -> ServiceResult<Outcome> {
    match store.apply_once(&keyed.key, &keyed.receipt, since, write).await? {
        None => Ok(Outcome::Applied),
        Some(receipt) => replayed(&keyed, receipt),
    }
}

/// What moves with every write that may change a home timeline: a post, flag, follow,
/// unfollow, or a user's disabling or deletion moves the public or the follows generation.
/// Both only grow, so their sum is equal only while neither has moved.
fn timelines_generation(store: &dyn Store) -> Option<u64> {
    Some(store.public_generation()?.wrapping_add(store.follows_generation()?))
}

/// `derive` of `page` (or list), through `memo` under `key`: what was derived from an
/// equal one before, or derived now and kept.
fn by_page<K: std::hash::Hash + Eq, V: Clone, P: PartialEq + Clone, E: From<ServiceError>>(
    key: K,
    memo: &PageMemo<K, V, P>,
    page: P,
    derive: impl FnOnce(P) -> Result<V, E>,
) -> Result<V, E> {
    if let Some(hit) = memo.get_for_page(&key, &page) {
        return Ok(hit);
    }
    let value = derive(page.clone())?;
    memo.keep(key, Seen::Page(page), value.clone(), |_| true);
    Ok(value)
}

/// The answer of a recorded `receipt` to `keyed`: replayed if it is the same request,
/// [`ServiceError::KeyReused`] if the key was recorded for another.
fn replayed(keyed: &Keyed, receipt: Receipt) -> ServiceResult<Outcome> {
    if receipt.fingerprint == keyed.receipt.fingerprint {
        Ok(Outcome::Replayed(receipt))
    } else {
        Err(ServiceError::KeyReused)
    }
}

/// The name a percent-encoded URL path segment carries (CONTRACT.md §2), to ask the store
/// about; a segment that does not decode to UTF-8, or decodes to a name that cannot be
/// anyone's ([`may_name_someone`]), names nobody: [`ServiceError::UnknownUser`].
fn name_at(segment: &str) -> ServiceResult<std::borrow::Cow<'_, str>> {
    percent_decode_str(segment)
        .decode_utf8()
        .ok()
        .filter(|name| may_name_someone(name))
        .ok_or(ServiceError::UnknownUser)
}

/// Whether `name` may be someone's, so that the store may be asked about it: a name with
/// a control character cannot ([`crate::Username`] refuses them), and some stores cannot
/// even be asked about one (PostgreSQL's text holds no NUL).
fn may_name_someone(name: &str) -> bool {
    !name.chars().any(char::is_control)
}

/// `1, 2, 3`.
fn join_ids(ids: &[MessageId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Runs a client's write to its end even when the caller stops waiting for it.
///
/// A front end's request future is dropped when its client disconnects (the simulator
/// gives up after 0.3 s). Dropped half-way, a registration would vanish after its
/// password was hashed and every later action for that user would fail; on a database a
/// dropped statement leaves it unknown whether the write happened. So once accepted, a
/// write runs on its own task and finishes; the caller merely stops listening.
async fn run_to_completion<T: Send + 'static>(
    write: impl Future<Output = ServiceResult<T>> + Send + 'static,
) -> ServiceResult<T> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ServiceError::NoRuntime)?;
    runtime
        .spawn(write)
        .await
        .map_err(|err| ServiceError::Internal(format!("write task failed: {err}")))?
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::MemoryStore;

    #[test]
    fn every_failure_has_its_documented_status() {
        let cases = [
            (ServiceError::Invalid(ValidationError::EmailInvalid), 400),
            (ServiceError::UsernameTaken, 400),
            (ServiceError::InvalidUsername, 403),
            (ServiceError::InvalidPassword, 403),
            (ServiceError::AccountDisabled, 403),
            (ServiceError::UnknownUser, 404),
            (ServiceError::UnknownMessages(vec![MessageId(1)]), 404),
            (ServiceError::KeyReused, 422),
            (ServiceError::Internal("secret detail".into()), 500),
            (ServiceError::Unavailable(StoreError::Unavailable("refused".into())), 503),
            (ServiceError::Store(StoreError::Backend("disk".into())), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), status, "{err:?}");
        }
        let internal = ServiceError::Internal("secret detail".into());
        assert_eq!(internal.to_string(), "Internal error: secret detail", "kept for the log");
        assert_eq!(internal.client_text(), "Internal server error", "not for the client");
        let down = ServiceError::from(StoreError::Unavailable("connection refused".into()));
        assert!(down.to_string().ends_with("connection refused"), "{down}");
        assert_eq!(down.client_text(), "The service is temporarily unavailable");
    }

    #[test]
    fn a_store_failure_keeps_the_stores_error_as_its_source() {
        use std::error::Error;
        for cause in
            [StoreError::Backend("disk full".into()), StoreError::Unavailable("down".into())]
        {
            let err = ServiceError::from(cause.clone());
            let source = err.source().and_then(|s| s.downcast_ref::<StoreError>());
            assert_eq!(source, Some(&cause), "{err:?}");
            assert!(err.to_string().contains(&cause.to_string()), "{err}");
            assert!(!err.client_text().contains(&cause.to_string()), "{err}");
        }
    }

    #[test]
    fn without_a_runtime_the_service_says_so_instead_of_panicking() {
        let store = Arc::new(MemoryStore::new());
        let twit = MiniTwit::with_hash_cost(store.clone(), HashCost::Insecure);
        let registration = Registration::parse("alice", "a@example.com", "pw", None).unwrap();
        let refused = futures::executor::block_on(twit.register(registration));
        assert_eq!(refused, Err(ServiceError::NoRuntime));
        let pw_hash = Hasher::new(HashCost::Insecure);
        let pw_hash = tokio::runtime::Runtime::new().unwrap().block_on(async {
            pw_hash.hash(&crate::Password::parse("pw").unwrap()).await.unwrap()
        });
        let new = NewUser {
            username: crate::Username::parse("bob").unwrap(),
            email: crate::Email::parse("b@example.com").unwrap(),
            pw_hash,
        };
        let bob = futures::executor::block_on(store.create_user(new)).unwrap();
        let refused = futures::executor::block_on(twit.authenticate("bob", "pw"));
        assert_eq!(refused, Err(ServiceError::NoRuntime));
        let text = MessageText::parse("hi").unwrap();
        let refused = futures::executor::block_on(twit.post(&bob, text));
        assert_eq!(refused, Err(ServiceError::NoRuntime));
        assert_eq!(ServiceError::NoRuntime.status(), 500);
    }

    #[tokio::test]
    async fn users_are_found_by_percent_encoded_path_segments() {
        let twit = MiniTwit::with_hash_cost(Arc::new(MemoryStore::new()), HashCost::Insecure);
        let registration =
            Registration::parse("Roger Histand", "r@example.com", "pw", None).unwrap();
        twit.register(registration).await.unwrap();
        assert_eq!(twit.user_at("Roger%20Histand").await.unwrap().username, "Roger Histand");
        assert_eq!(twit.user_at("Roger Histand").await.unwrap().username, "Roger Histand");
        assert_eq!(twit.user_at("%FF").await, Err(ServiceError::UnknownUser));
        assert_eq!(twit.user_at("nobody").await, Err(ServiceError::UnknownUser));
    }

    #[tokio::test]
    async fn a_write_completes_when_its_caller_gives_up() {
        let twit = MiniTwit::new(Arc::new(MemoryStore::new()));
        let registration = Registration::parse("quitter", "q@example.com", "pw", None).unwrap();
        // Poll the registration once (it starts), then drop it, as a server drops the
        // request of a client that disconnected.
        tokio::select! {
            biased;
            _ = twit.register(registration) => panic!("a recommended-cost hash takes longer than one poll"),
            () = std::future::ready(()) => {}
        }
        for _ in 0..500 {
            if twit.user("quitter").await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the registration was abandoned with its caller");
    }
}
