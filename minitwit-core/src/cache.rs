//! [`CachedStore`]: caches of the hottest reads — `latest`, the first pages of the
//! public timeline (`/msgs?no=N`, `/public`) and follow lists (`/fllws/{user}`) — for a
//! store that only this process writes (sled locks its directory to one process); and
//! [`PageMemo`], where a front end keeps what it builds from first pages or follow lists
//! (a rendered answer) under the same rule. Every write that can change a cached answer
//! invalidates it before the write is acknowledged, so a reader never sees an answer
//! older than a write acknowledged before its read began.
//!
//! Invalidation is by generation: each cache has a counter that every write changing it
//! bumps when the write returns. A reader notes the generation before reading the store
//! and keeps its answer only if the generation has not moved meanwhile, so an answer read
//! across a write is never cached. A store shared by several processes (PostgreSQL) is
//! not wrapped: another process's writes would not invalidate these caches. Its
//! [`Store::public_generation`] is `None`, so a memo serves what it derived while the
//! store's [`Snapshot`] stays equal (nothing became visible since), or, from a store
//! that cannot name one, only for a page read afresh and found equal.

use crate::consistency::Snapshot;
use crate::domain::MessageText;
use crate::idempotency::{FollowChange, Once, Receipt, ReceiptKey, Write};
use crate::layer::StoreLayer;
use crate::model::{
    Cursor, ImportBatch, MessageId, NewMessage, Page, Timeline, TimelineEntry, UserId,
};
use crate::store::{ByName, DurableWait, Store, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The most page sizes of the public timeline kept at once.
const MAX_PAGES: usize = 8;
/// The most first pages of users' timelines a memo keeps at once (by user and size).
const MAX_USER_PAGES: usize = 256;
/// The largest first page kept.
const MAX_PAGE_LEN: usize = 1_000;
/// The most first pages of readers' home timelines a memo keeps at once.
const MAX_HOME_PAGES: usize = 256;
/// The most follow lists kept at once (by follower and length).
const MAX_FOLLOW_LISTS: usize = 256;

/// A value and what it was read at: a generation, or the page it was built from.
struct Cached<S, T> {
    seen: S,
    value: T,
}

/// Values by key, each with what it was read at; at most `capacity` (all are dropped
/// when a new one would not fit: the hot ones come straight back).
struct Entries<K, S, V> {
    map: Mutex<HashMap<K, Cached<S, V>>>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq, S: PartialEq, V: Clone> Entries<K, S, V> {
    fn new(capacity: usize) -> Self {
        Self { map: Mutex::default(), capacity }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Cached<S, V>>> {
        // Entries are inserted whole: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` if it was read at `seen`.
    fn get(&self, key: &K, seen: &S) -> Option<V> {
        self.get_if(key, |at| at == seen)
    }

    /// The value of `key` if what it was read at passes `current`.
    fn get_if(&self, key: &K, current: impl FnOnce(&S) -> bool) -> Option<V> {
        self.lock().get(key).filter(|c| current(&c.seen)).map(|c| c.value.clone())
    }

    /// Keeps `value`, read at `seen`, if `still_current` says nothing moved since (checked
    /// under the lock, so no write can slip between the check and the insert unnoticed:
    /// a later write moves the generation and the entry is never served).
    fn keep(&self, key: K, seen: S, value: V, still_current: impl FnOnce(&S) -> bool) {
        let mut entries = self.lock();
        if still_current(&seen) {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, Cached { seen, value });
        }
    }
}

/// One cache: its generation and its entries by key.
struct Cache<K, V> {
    generation: AtomicU64,
    entries: Entries<K, u64, V>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Self::with_capacity(MAX_PAGES)
    }

    fn with_capacity(capacity: usize) -> Self {
        Self { generation: AtomicU64::new(0), entries: Entries::new(capacity) }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached value of `key`, or `read`'s, kept if no write intervened.
    async fn get_or_read(
        &self,
        key: K,
        read: impl Future<Output = StoreResult<V>>,
    ) -> StoreResult<V> {
        let generation = self.generation();
        if let Some(hit) = self.entries.get(&key, &generation) {
            return Ok(hit);
        }
        let value = read.await?;
        self.entries.keep(key, generation, value.clone(), |seen| *seen == self.generation());
        Ok(value)
    }

    /// Runs a write that may change this cache's answers, then invalidates them. The
    /// generation moves whatever the outcome: a failed write may still have applied.
    async fn invalidating<T>(&self, write: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let result = write.await;
        self.generation.fetch_add(1, Ordering::AcqRel);
        result
    }
}

/// What a front end derives from first pages of timelines (a rendered answer, say), by
/// key: see [`MiniTwit::public_first_page`](crate::MiniTwit::public_first_page),
/// [`MiniTwit::user_first_page`](crate::MiniTwit::user_first_page) and
/// [`MiniTwit::home_first_page`](crate::MiniTwit::home_first_page). Over a store that
/// tells when the public timeline changes, each is kept until a write may change it
/// (every change to a user's timeline changes the public one; a home timeline's also
/// moves with the follows generation); over a store that names its [`Snapshot`], while
/// the snapshot stays equal; over any other, each is kept with the page it was derived
/// from, and served again only for a page read afresh and found equal (each entry says
/// which). `P` is what a value is derived from: a [`Page`], or a follow list for a
/// [`FollowsMemo`].
pub struct PageMemo<K, V, P = Page> {
    entries: Entries<K, Seen<P>, V>,
}

/// What a memo's value was derived at.
#[derive(Debug, PartialEq)]
pub(crate) enum Seen<P> {
    /// A generation of the store's ([`Store::public_generation`] or
    /// [`Store::follows_generation`]).
    Generation(u64),
    /// The store's [`Snapshot`] before the reads it was derived from.
    Snapshot(Snapshot),
    /// The page (or list) itself, from a store that can tell neither.
    Page(P),
}

/// First pages of the public timeline, by page size.
pub type PublicPageMemo<V> = PageMemo<usize, V>;
/// First pages of users' timelines, by the user's path segment and page size.
pub type UserPageMemo<V> = PageMemo<(String, usize), V>;
/// First pages of readers' home timelines, by the reader's id and name.
pub type HomePageMemo<V> = PageMemo<(UserId, String), V>;
/// What a front end derives from follow lists, by the user's path segment and length
/// (see [`MiniTwit::followees_derived_at`](crate::MiniTwit::followees_derived_at)): kept
/// by [`Store::follows_generation`] instead of the public timeline's, or with the list.
pub type FollowsMemo<V> = PageMemo<(String, usize), V, Vec<String>>;

impl<V: Clone> PageMemo<usize, V> {
    /// An empty memo of public pages.
    pub fn new() -> Self {
        Self::with_capacity(MAX_PAGES)
    }
}

impl<V: Clone> Default for PageMemo<usize, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone> PageMemo<(String, usize), V> {
    /// An empty memo of users' pages.
    pub fn new() -> Self {
        Self::with_capacity(MAX_USER_PAGES)
    }
}

impl<V: Clone> PageMemo<(String, usize), V, Vec<String>> {
    /// An empty memo of follow lists.
    pub fn new() -> Self {
        Self::with_capacity(MAX_FOLLOW_LISTS)
    }
}

impl<V: Clone> PageMemo<(UserId, String), V> {
    /// An empty memo of home pages.
    pub fn new() -> Self {
        Self::with_capacity(MAX_HOME_PAGES)
    }
}

impl<K: std::hash::Hash + Eq, V: Clone, P: PartialEq> PageMemo<K, V, P> {
    fn with_capacity(capacity: usize) -> Self {
        Self { entries: Entries::new(capacity) }
    }

    /// What was kept for `key` at `seen`.
    pub(crate) fn get(&self, key: &K, seen: &Seen<P>) -> Option<V> {
        self.entries.get(key, seen)
    }

    /// What was derived for `key` from a page (or list) equal to `page`.
    pub(crate) fn get_for_page(&self, key: &K, page: &P) -> Option<V> {
        self.entries.get_if(key, |seen| matches!(seen, Seen::Page(at) if at == page))
    }

    /// Keeps `value`, derived for `key` at `seen`, if `still_current` says nothing moved
    /// since (checked under the memo's lock; see [`Entries::keep`]).
    pub(crate) fn keep(
        &self,
        key: K,
        seen: Seen<P>,
        value: V,
        still_current: impl FnOnce(&Seen<P>) -> bool,
    ) {
        self.entries.keep(key, seen, value, still_current);
    }
}

/// A store with its hot reads cached; see the module documentation for when it is valid.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    latest: Cache<(), Option<i64>>,
    public: Cache<usize, Vec<TimelineEntry>>,
    /// Followees' names by follower and length; its generation is the follows
    /// generation, moved by follows, unfollows, and a user's deletion or disabling.
    followees: Cache<(UserId, usize), Vec<String>>,
}

impl CachedStore {
    /// Caches `inner`'s hot reads. Only for a store no other process writes.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            latest: Cache::new(),
            public: Cache::new(),
            followees: Cache::with_capacity(MAX_FOLLOW_LISTS),
        }
    }
}

/// Forwards every call but the cached reads and the writes that invalidate them.
#[async_trait]
impl StoreLayer for CachedStore {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    fn public_generation(&self) -> Option<u64> {
        Some(self.public.generation())
    }

    fn follows_generation(&self) -> Option<u64> {
        Some(self.followees.generation())
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let write = self.public.invalidating(self.inner.set_disabled(id, disabled));
        self.followees.invalidating(write).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let write = self.public.invalidating(self.inner.delete_user(id));
        self.followees.invalidating(write).await
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.followees.invalidating(self.inner.follow(follower, followee)).await
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.followees.invalidating(self.inner.unfollow(follower, followee)).await
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        let read = self.inner.followees(follower, limit);
        self.followees.get_or_read((follower, limit), read).await
    }

    /// The user looked up, then their list through the cache above: forwarded whole,
    /// the wrapped store's default would read the list past it.
    async fn followees_by_name(
        &self,
        username: &str,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        let Some(user) = self.inner.user_by_name(username).await? else { return Ok(None) };
        StoreLayer::followees(self, user.id, limit).await.map(Some)
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        self.public.invalidating(self.inner.add_message(message)).await
    }

    async fn add_message_by_name(
        &self,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<MessageId>> {
        let post = self.inner.add_message_by_name(username, text, pub_date);
        self.public.invalidating(post).await
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        self.public.invalidating(self.inner.set_flagged(id, flagged)).await
    }

    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        self.public.invalidating(self.inner.set_flagged_all(ids, flagged)).await
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let read = self.inner.timeline(timeline, before, limit);
        match (timeline, before) {
            (Timeline::Public, None) if limit <= MAX_PAGE_LEN => {
                self.public.get_or_read(limit, read).await
            }
            _ => read.await,
        }
    }

    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>> {
        let apply = |write| self.inner.apply_once(key, receipt, since, write);
        match write {
            Write::Post(_) => self.public.invalidating(apply(write)).await,
            Write::Follow { .. } | Write::Unfollow { .. } => {
                self.followees.invalidating(apply(write)).await
            }
            Write::Register(_) => apply(write).await,
        }
    }

    async fn apply_once_by_name(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let post = self.inner.apply_once_by_name(key, receipt, since, username, text, pub_date);
        self.public.invalidating(post).await
    }

    async fn change_follow_by_names(
        &self,
        follower: &str,
        followee: &str,
        change: FollowChange,
        once: Option<Once<'_>>,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let write = self.inner.change_follow_by_names(follower, followee, change, once);
        self.followees.invalidating(write).await
    }

    async fn latest(&self) -> StoreResult<Option<i64>> {
        self.latest.get_or_read((), self.inner.latest()).await
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.latest.invalidating(self.inner.set_latest(latest)).await
    }

    async fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait> {
        self.latest.invalidating(self.inner.begin_set_latest(latest)).await
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        let import = self.public.invalidating(self.inner.import(batch));
        let import = self.followees.invalidating(import);
        self.latest.invalidating(import).await
    }

    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()> {
        let removal = self.public.invalidating(self.inner.remove_imported(batch));
        self.followees.invalidating(removal).await
    }

    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        self.latest.invalidating(self.inner.end_import(latest)).await
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use super::*;
    use crate::testkit::{Counted, MemoryStore};
    use crate::{HashCost, MessageText, MiniTwit, PageSize, Registration};

    /// A service over a store that counts its follow list and timeline reads, behind the
    /// cache.
    fn counting_reads() -> (Arc<Counted>, MiniTwit) {
        let counting = Arc::new(Counted::new());
        let store = Arc::new(CachedStore::new(counting.clone()));
        (counting, MiniTwit::with_hash_cost(store, HashCost::Insecure))
    }

    async fn register(twit: &MiniTwit, name: &str) -> crate::User {
        let registration = Registration::parse(name, "a@x.org", "pw", None).expect("valid");
        twit.register(registration).await.expect("registered")
    }

    fn service() -> MiniTwit {
        let store = Arc::new(CachedStore::new(Arc::new(MemoryStore::new())));
        MiniTwit::with_hash_cost(store, HashCost::Insecure)
    }

    async fn public_texts(twit: &MiniTwit, size: usize) -> Vec<String> {
        let size = PageSize::new(size);
        let page = twit.timeline(Timeline::Public, None, size).await.expect("the public timeline");
        page.entries.into_iter().map(|e| e.text).collect()
    }

    #[tokio::test]
    async fn every_write_that_changes_the_public_page_invalidates_it() {
        let twit = service();
        let alice = twit.register(Registration::parse("alice", "a@x.org", "pw", None).unwrap());
        let alice = alice.await.unwrap();
        twit.post(&alice, MessageText::parse("one").unwrap()).await.unwrap();
        assert_eq!(public_texts(&twit, 30).await, ["one"]);
        assert_eq!(public_texts(&twit, 30).await, ["one"], "answered from the cache");
        twit.post(&alice, MessageText::parse("two").unwrap()).await.unwrap();
        assert_eq!(public_texts(&twit, 30).await, ["two", "one"], "a post invalidates");
        assert_eq!(public_texts(&twit, 1).await, ["two"], "each page size on its own");
        let two = twit.store().timeline(Timeline::Public, None, 1).await.unwrap()[0].id;
        twit.set_flagged(&[two], true).await.unwrap();
        assert_eq!(public_texts(&twit, 30).await, ["one"], "flagging invalidates");
        assert_eq!(public_texts(&twit, 1).await, ["one"], "every page size");
        twit.store().delete_user(alice.id).await.unwrap();
        assert!(public_texts(&twit, 30).await.is_empty(), "deleting the author invalidates");
    }

    /// A page's texts, counting each page derived in `derived`.
    fn counted_texts(
        derived: &std::cell::Cell<usize>,
    ) -> impl FnOnce(Page) -> Result<Vec<String>, crate::ServiceError> + '_ {
        |page| {
            derived.set(derived.get() + 1);
            Ok(page.entries.into_iter().map(|e| e.text).collect())
        }
    }

    /// `public_first_page` through `memo`, counting the pages derived in `derived`.
    async fn memo_texts(
        twit: &MiniTwit,
        memo: &PublicPageMemo<Vec<String>>,
        derived: &std::cell::Cell<usize>,
    ) -> Vec<String> {
        let derive = counted_texts(derived);
        twit.public_first_page(PageSize::new(30), memo, derive).await.expect("a page")
    }

    /// Registers `name` and posts "one" as them.
    async fn with_one_post(twit: &MiniTwit, name: &str) -> crate::User {
        let registration = Registration::parse(name, "a@x.org", "pw", None).expect("valid");
        let user = twit.register(registration).await.expect("registers");
        twit.post(&user, MessageText::parse("one").expect("valid")).await.expect("posts");
        user
    }

    #[tokio::test]
    async fn a_memo_derives_once_per_change_of_the_public_timeline() {
        let twit = service();
        let (memo, derived) = (PublicPageMemo::new(), std::cell::Cell::new(0));
        let alice = with_one_post(&twit, "alice").await;
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["one"]);
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["one"]);
        assert_eq!(derived.get(), 1, "the second answer came from the memo");
        twit.post(&alice, MessageText::parse("two").unwrap()).await.unwrap();
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["two", "one"], "a post moves it");
        assert_eq!(derived.get(), 2);
    }

    #[tokio::test]
    async fn a_users_page_memo_moves_with_their_posts_flags_and_deletion() {
        let twit = service();
        let (memo, derived) = (UserPageMemo::new(), std::cell::Cell::new(0));
        let alice_page =
            || twit.user_first_page("alice", PageSize::new(30), &memo, counted_texts(&derived));
        let alice = with_one_post(&twit, "alice").await;
        let bob = twit.register(Registration::parse("bob", "b@x.org", "pw", None).unwrap());
        let bob = bob.await.unwrap();
        assert_eq!(alice_page().await.unwrap(), ["one"]);
        assert_eq!(alice_page().await.unwrap(), ["one"]);
        assert_eq!(derived.get(), 1, "the second answer came from the memo");
        twit.post(&alice, MessageText::parse("two").unwrap()).await.unwrap();
        assert_eq!(alice_page().await.unwrap(), ["two", "one"], "her post moves it");
        twit.post(&bob, MessageText::parse("bob's").unwrap()).await.unwrap();
        assert_eq!(alice_page().await.unwrap(), ["two", "one"], "another's post is not hers");
        let two = twit.store().timeline(Timeline::User(alice.id), None, 1).await.unwrap()[0].id;
        twit.set_flagged(&[two], true).await.unwrap();
        assert_eq!(alice_page().await.unwrap(), ["one"], "flagging moves it");
        twit.store().delete_user(alice.id).await.unwrap();
        assert_eq!(
            alice_page().await,
            Err(crate::ServiceError::UnknownUser),
            "so does deleting her"
        );
    }

    #[tokio::test]
    async fn a_home_page_memo_moves_with_every_change_of_the_readers_home_timeline() {
        let (counting, twit) = counting_reads();
        let (memo, derived) = (HomePageMemo::new(), std::cell::Cell::new(0));
        let alice = with_one_post(&twit, "alice").await;
        let bob = with_one_post(&twit, "bob").await;
        let home = |reader| {
            twit.home_first_page(reader, PageSize::new(30), &memo, counted_texts(&derived))
        };
        let counts = || (derived.get(), counting.calls(&["timeline"]));
        assert_eq!(home(&alice).await.unwrap(), ["one"]);
        assert_eq!(home(&alice).await.unwrap(), ["one"]);
        assert_eq!(counts(), (1, 1), "the second answer came from the memo, reading no page");
        assert_eq!(home(&bob).await.unwrap(), ["one"], "each reader has their own");
        assert_eq!(counts(), (2, 2));
        twit.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["one", "one"], "a follow moves it");
        twit.post(&bob, MessageText::parse("two").unwrap()).await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["two", "one", "one"], "a followee's post");
        let bobs = Store::timeline(counting.uncounted(), Timeline::User(bob.id), None, 1).await;
        twit.set_flagged(&[bobs.unwrap()[0].id], true).await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["one", "one"], "a flag");
        twit.unfollow(alice.id, bob.id).await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["one"], "an unfollow");
        twit.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["one", "one"]);
        twit.delete_user("bob").await.unwrap();
        assert_eq!(home(&alice).await.unwrap(), ["one"], "a followee's deletion");
        assert_eq!(home(&alice).await.unwrap(), ["one"]);
        assert_eq!(counts(), (8, 8), "read and derived once per change, and only then");
    }

    /// Whom alice follows, through `followees_derived_at` and `memo`, counting each list
    /// derived in `derived`.
    async fn alice_follows(
        twit: &MiniTwit,
        memo: &FollowsMemo<Vec<String>>,
        derived: &std::cell::Cell<usize>,
    ) -> Result<Vec<String>, crate::ServiceError> {
        let count = |follows| {
            derived.set(derived.get() + 1);
            Ok(follows)
        };
        twit.followees_derived_at("alice", PageSize::new(30), memo, count).await
    }

    #[tokio::test]
    async fn a_follows_memo_moves_with_follows_unfollows_and_deletions() {
        let twit = service();
        let (memo, derived) = (FollowsMemo::new(), std::cell::Cell::new(0));
        let list = || alice_follows(&twit, &memo, &derived);
        let alice = with_one_post(&twit, "alice").await;
        let bob = with_one_post(&twit, "bob").await;
        let carol = with_one_post(&twit, "carol").await;
        twit.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(derived.get(), 1, "the second answer came from the memo");
        twit.post(&bob, MessageText::parse("two").unwrap()).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(derived.get(), 1, "a post moves no follow list");
        twit.follow(alice.id, carol.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob", "carol"], "a follow moves it");
        twit.unfollow(alice.id, bob.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["carol"], "an unfollow moves it");
        twit.store().delete_user(carol.id).await.unwrap();
        assert!(list().await.unwrap().is_empty(), "a followee's deletion moves it");
        twit.store().delete_user(alice.id).await.unwrap();
        assert_eq!(list().await, Err(crate::ServiceError::UnknownUser), "so does hers");
        assert_eq!(derived.get(), 4, "derived once per change, and only then");
    }

    #[tokio::test]
    async fn over_a_store_that_cannot_tell_a_follows_memo_serves_only_an_equal_list() {
        let store = Arc::new(MemoryStore::new());
        let twit = MiniTwit::with_hash_cost(store.clone(), HashCost::Insecure);
        let (memo, derived) = (FollowsMemo::new(), std::cell::Cell::new(0));
        let list = || alice_follows(&twit, &memo, &derived);
        let alice = with_one_post(&twit, "alice").await;
        let bob = with_one_post(&twit, "bob").await;
        // Writes this service never sees (another process's), straight to the store.
        store.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(derived.get(), 1, "the same list: derived once");
        store.unfollow(alice.id, bob.id).await.unwrap();
        assert!(list().await.unwrap().is_empty(), "another's unfollow is seen at once");
        assert_eq!(derived.get(), 2);
    }

    #[tokio::test]
    async fn over_a_store_that_cannot_tell_a_memo_serves_only_an_equal_page() {
        let store = Arc::new(MemoryStore::new());
        let twit = MiniTwit::with_hash_cost(store.clone(), HashCost::Insecure);
        let (memo, derived) = (PublicPageMemo::new(), std::cell::Cell::new(0));
        let alice = with_one_post(&twit, "alice").await;
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["one"]);
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["one"]);
        assert_eq!(derived.get(), 1, "the same page: derived once");
        // A write this service never sees (another process's), straight to the store.
        let text = MessageText::parse("two").unwrap();
        let message =
            NewMessage { author_id: alice.id, text, pub_date: crate::model::unix_now() + 60 };
        store.add_message(message).await.unwrap();
        assert_eq!(memo_texts(&twit, &memo, &derived).await, ["two", "one"]);
        assert_eq!(derived.get(), 2, "a changed page is derived again");
    }

    /// A store shared with other processes that names its snapshot, as PostgreSQL does:
    /// the number of writes that have returned; counts the calls made to it.
    #[derive(Default)]
    struct Snapshotted {
        inner: Counted,
    }

    #[async_trait]
    impl StoreLayer for Snapshotted {
        fn inner(&self) -> &dyn Store {
            &self.inner
        }

        async fn snapshot(&self) -> StoreResult<Option<Snapshot>> {
            Ok(Some(Snapshot::named(self.inner.writes_returned().to_string())))
        }
    }

    #[tokio::test]
    async fn over_a_store_naming_its_snapshot_a_memo_is_served_while_it_stays_equal() {
        let store = Arc::new(Snapshotted::default());
        let twit = MiniTwit::with_hash_cost(store.clone(), HashCost::Insecure);
        let (public, users, homes) =
            (PublicPageMemo::new(), UserPageMemo::new(), HomePageMemo::new());
        let derived = std::cell::Cell::new(0);
        let size = PageSize::new(30);
        let alice = with_one_post(&twit, "alice").await;
        let reads = || store.inner.calls(&["timeline"]);
        let pages = || async {
            let public = twit.public_first_page(size, &public, counted_texts(&derived)).await;
            let user = twit.user_first_page("alice", size, &users, counted_texts(&derived)).await;
            let home = twit.home_first_page(&alice, size, &homes, counted_texts(&derived)).await;
            [public.unwrap(), user.unwrap(), home.unwrap()]
        };
        assert_eq!(pages().await, [["one"], ["one"], ["one"]]);
        let (derived_once, read_once) = (derived.get(), reads());
        assert_eq!(pages().await, [["one"], ["one"], ["one"]]);
        assert_eq!(derived.get(), derived_once, "nothing committed: served from the memos");
        assert_eq!(reads(), read_once, "without reading a page");
        // A write this service never sees (another process's), straight to the store.
        let text = MessageText::parse("two").unwrap();
        let message =
            NewMessage { author_id: alice.id, text, pub_date: crate::model::unix_now() + 60 };
        Store::add_message(store.as_ref(), message).await.unwrap();
        assert_eq!(pages().await, [["two", "one"], ["two", "one"], ["two", "one"]]);
        assert_eq!(derived.get(), 2 * derived_once, "a write moves the snapshot: each again");
    }

    #[tokio::test]
    async fn a_follow_list_by_name_is_the_cached_list_by_id() {
        let (counting, twit) = counting_reads();
        let register = |name| register(&twit, name);
        let (alice, bob) = (register("alice").await, register("bob").await);
        let size = PageSize::new(100);
        let reads = || counting.calls(&["followees", "followees_by_name"]);
        twit.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(twit.followees_at("alice", size).await.unwrap(), ["bob"]);
        assert_eq!(twit.followees_at("alice", size).await.unwrap(), ["bob"]);
        assert_eq!(twit.followees(alice.id, size).await.unwrap(), ["bob"]);
        assert_eq!(reads(), 1, "by name and by id, one list read and kept");
        twit.unfollow(alice.id, bob.id).await.unwrap();
        assert!(twit.followees_at("alice", size).await.unwrap().is_empty(), "a write moves it");
        assert_eq!(reads(), 2);
        let unknown = twit.followees_at("carol", size).await;
        assert_eq!(unknown, Err(crate::ServiceError::UnknownUser));
    }

    #[tokio::test]
    async fn a_post_by_name_invalidates_the_public_page() {
        let twit = service();
        twit.register(Registration::parse("alice", "a@x.org", "pw", None).unwrap()).await.unwrap();
        assert!(public_texts(&twit, 30).await.is_empty());
        twit.post_once_at("alice", MessageText::parse("one").unwrap(), None).await.unwrap();
        assert_eq!(public_texts(&twit, 30).await, ["one"], "a post by name invalidates");
        let key = crate::idempotency::IdempotencyKey::parse("k").unwrap();
        let keyed = crate::idempotency::Keyed::new("test", key, &[b"two"], 204, vec![]);
        let text = MessageText::parse("two").unwrap();
        twit.post_once_at("alice", text, Some(keyed)).await.unwrap();
        assert_eq!(public_texts(&twit, 30).await, ["two", "one"], "so does a keyed one");
    }

    #[tokio::test]
    async fn a_follow_list_is_kept_until_the_follows_generation_moves() {
        let (counting, twit) = counting_reads();
        let register = |name| register(&twit, name);
        let (alice, bob, carol) =
            (register("alice").await, register("bob").await, register("carol").await);
        let list = || twit.followees(alice.id, PageSize::new(100));
        let reads = || counting.calls(&["followees", "followees_by_name"]);
        twit.follow(alice.id, bob.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(list().await.unwrap(), ["bob"]);
        assert_eq!(reads(), 1, "the second answer came from the cache");
        let key = |k: &str| {
            Some(crate::idempotency::Keyed::new(
                "test",
                crate::idempotency::IdempotencyKey::parse(k).unwrap(),
                &[k.as_bytes()],
                204,
                vec![],
            ))
        };
        twit.follow_once(alice.id, carol.id, key("f")).await.unwrap();
        assert_eq!(list().await.unwrap(), ["bob", "carol"], "a keyed follow moves it");
        twit.unfollow(alice.id, bob.id).await.unwrap();
        assert_eq!(list().await.unwrap(), ["carol"], "an unfollow moves it");
        twit.follow(alice.id, bob.id).await.unwrap();
        twit.unfollow_once(alice.id, bob.id, key("u")).await.unwrap();
        assert_eq!(list().await.unwrap(), ["carol"], "a keyed unfollow moves it");
        twit.post(&carol, MessageText::parse("hi").unwrap()).await.unwrap();
        let before = reads();
        assert_eq!(list().await.unwrap(), ["carol"]);
        assert_eq!(reads(), before, "a post does not move it");
        twit.set_disabled("carol", true).await.unwrap();
        assert_eq!(list().await.unwrap(), ["carol"]);
        assert_eq!(reads(), before + 1, "disabling a user moves it");
        twit.delete_user("carol").await.unwrap();
        assert!(list().await.unwrap().is_empty(), "deleting the followee moves it");
    }

    #[tokio::test]
    async fn setting_latest_invalidates_it() {
        let twit = service();
        assert_eq!(twit.latest().await.unwrap(), -1);
        twit.set_latest(7).await.unwrap();
        assert_eq!(twit.latest().await.unwrap(), 7);
        assert_eq!(twit.latest().await.unwrap(), 7);
        twit.set_latest(8).await.unwrap();
        assert_eq!(twit.latest().await.unwrap(), 8);
    }

    #[tokio::test]
    async fn an_answer_read_across_a_write_is_not_kept() {
        let cache: Cache<(), i64> = Cache::new();
        let stale = cache.get_or_read((), async {
            // A write finishes while this read is in flight.
            cache.invalidating(async { Ok(()) }).await.unwrap();
            Ok(1)
        });
        assert_eq!(stale.await.unwrap(), 1);
        assert_eq!(cache.get_or_read((), async { Ok(2) }).await.unwrap(), 2, "1 was not kept");
        assert_eq!(cache.get_or_read((), async { Ok(3) }).await.unwrap(), 2, "2 was");
    }
}
