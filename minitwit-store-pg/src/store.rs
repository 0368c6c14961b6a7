//! [`PgStore`]: connecting and migrating, and the [`Store`] trait over a PostgreSQL
//! connection pool, each operation delegated to the module of its concern (`users`,
//! `messages`, `follows`, `timeline`, `state`, `import`), as the sled store is split.
//! Every statement is a runtime-checked query (no database is needed to build), and every
//! write is one statement or one transaction, durable when acknowledged. The hot reads go
//! through `coalesce`, so identical concurrent ones share a statement.
//!
//! Connection settings, each measured with `benches/store.rs`: generic plans, no bitmap
//! scans (pages are read in index order), and no ping before a statement on a connection
//! used within the last second.

use crate::batch::{Batches, KEYED_IN_FLIGHT, POSTS_IN_FLIGHT};
use crate::coalesce::Coalescer;
use crate::error::{PgError, backend_error};
use crate::feed::PgFeed;
use crate::follows::FollowByNames;
use crate::home::{self, HomeReport};
use crate::latest::LatestWrites;
use crate::messages::Post;
use crate::options::PgOptions;
use crate::receipts::Claim;
use crate::timeline::{self, TimelinePlans};
use crate::{follows, import, messages, receipts, state, users};
use async_trait::async_trait;
use minitwit_core::consistency::Snapshot;
use minitwit_core::feed::{Change, ChangeFeed};
use minitwit_core::idempotency::{FollowChange, Once, Receipt, ReceiptKey, Write};
use minitwit_core::model::{Follow, ImportBatch, NewMessage, NewUser};
use minitwit_core::store::{ByName, DurableWait, StoreError, StoreResult};
use minitwit_core::{
    Counts, Cursor, Message, MessageFilter, MessageId, MessageText, Store, Timeline, TimelineEntry,
    User, UserId,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The migrations in this crate's `migrations/`, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A pooled connection idle at least this long is pinged before it is used again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(1);

/// MiniTwit's data in PostgreSQL. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// The hot reads, each shared by the identical reads made at the same time.
    reads: Arc<Reads>,
    /// The change feed in this process: its delivery, listening once asked for, and the
    /// queue of the changes this process announces.
    feed: Arc<PgFeed>,
    /// Whether this store reaches the primary ([`PgStore::connect`]), so that a home
    /// read may start keeping its reader's home timeline; a read replica's cannot.
    primary: bool,
    /// The writes of `latest` begun and maybe still in flight (see `latest`).
    pub(crate) latest_writes: Arc<LatestWrites>,
    /// Posts by name without a key, keyed posts by name and follow changes by names,
    /// each waiting to be stored together with their kind (see `batch`).
    posts: Arc<Batches<Post>>,
    keyed_posts: Arc<Batches<Post>>,
    follows: Arc<Batches<FollowByNames>>,
}

/// What identifies a timeline page: the timeline's kind and user, the cursor, the size.
type PageKey = (u8, UserId, Option<Cursor>, usize);

/// The reads whose identical concurrent calls share one statement (`coalesce`).
#[derive(Default)]
struct Reads {
    latest: Coalescer<(), Option<i64>>,
    timeline: Coalescer<PageKey, Vec<TimelineEntry>>,
    user_by_name: Coalescer<String, Option<User>>,
    user_by_id: Coalescer<UserId, Option<User>>,
    session_generation: Coalescer<UserId, i64>,
    user_with_generation: Coalescer<UserId, Option<(User, i64)>>,
    followees: Coalescer<(UserId, usize), Vec<String>>,
    followees_by_name: Coalescer<(String, usize), Option<Vec<String>>>,
    snapshot: Coalescer<(), Option<Snapshot>>,
}

/// Shows the pool's state, never its connect options (they hold the password).
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`; a Unix
    /// socket directory goes in `?host=/path`) and applies any pending migrations.
    /// Fails if the URL is malformed, no connection can be made within
    /// `options.acquire_timeout`, or migrating fails.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, PgError> {
        let store = Self { primary: true, ..Self::connect_lazy(url, &options)? };
        store.migrate().await?;
        store.set_home_settings(&options).await?;
        Ok(store)
    }

    /// A store whose connections open on first use, unmigrated: for read replicas, which
    /// receive the schema from their primary and may be down when this process starts.
    /// Fails only on a malformed URL.
    pub(crate) fn connect_lazy(url: &str, options: &PgOptions) -> Result<Self, PgError> {
        refuse_multi_host(url)?;
        let timeout = options.statement_timeout.map_or(0, |t| t.as_millis()).to_string();
        let connect = PgConnectOptions::from_str(url).map_err(PgError::InvalidUrl)?.options([
            ("statement_timeout", timeout.as_str()),
            // Plan each statement once per connection, not on every run: every query
            // here has a good plan for any arguments (tests/indexes.rs checks the
            // timelines'), and planning the home timeline costs more than running it.
            ("plan_cache_mode", "force_generic_plan"),
            // Every read here wants a page in index order. A plan made for any author
            // expects a few dozen messages from one, and for a page larger than that
            // prefers a bitmap scan, which reads all of the author's messages and sorts
            // them: O(messages) for a prolific author instead of O(page), and twice the
            // public timeline's time on the benchmark's data (tests/indexes.rs).
            ("enable_bitmapscan", "off"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx pings a connection before every use by default: a second round trip
            // for every statement. It pings each connection again when it is released,
            // so a connection idle for less than `PING_IDLE_AFTER` was alive that
            // recently; only longer-idle ones, which may have outlived a server
            // restart, are pinged.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(connect);
        Ok(Self {
            pool,
            reads: Arc::default(),
            feed: Arc::default(),
            primary: false,
            latest_writes: Arc::default(),
            posts: Arc::new(Batches::new(POSTS_IN_FLIGHT)),
            keyed_posts: Arc::new(Batches::new(KEYED_IN_FLIGHT)),
            follows: Arc::new(Batches::new(KEYED_IN_FLIGHT)),
        })
    }

    /// Applies the migrations not applied yet. Replicas starting together are safe:
    /// the migrator holds an advisory lock while it works. The statement timeout does
    /// not apply: building an index on a large table may take a while.
    pub async fn migrate(&self) -> Result<(), PgError> {
        let mut conn = self.pool.acquire().await.map_err(PgError::Unreachable)?;
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *conn)
            .await
            .map_err(PgError::Unreachable)?;
        let migrated = MIGRATOR.run(&mut *conn).await.map_err(PgError::Migration);
        // Back to the pool's setting before the connection is reused.
        sqlx::query("RESET statement_timeout")
            .execute(&mut *conn)
            .await
            .map_err(PgError::Unreachable)?;
        migrated
    }

    /// Stores the kept home timelines' bound and fan-out limit (see
    /// [`PgOptions::home_bound`]), unless they are already those.
    async fn set_home_settings(&self, options: &PgOptions) -> Result<(), PgError> {
        sqlx::query(
            "UPDATE home_settings SET bound = $1, fanout_limit = $2
             WHERE (bound, fanout_limit) IS DISTINCT FROM ($1, $2)",
        )
        .bind(i32::try_from(options.home_bound.max(1)).unwrap_or(i32::MAX))
        .bind(i32::try_from(options.fanout_limit).unwrap_or(i32::MAX))
        .execute(&self.pool)
        .await
        .map_err(PgError::Unreachable)?;
        Ok(())
    }

    /// Checks the kept home timelines against the messages and follows (reads all of
    /// them: for tests and repairs).
    pub async fn check_home_timelines(&self) -> StoreResult<HomeReport> {
        home::check(&self.pool).await
    }

    /// Builds the kept home timelines again from the messages and follows alone.
    pub async fn rebuild_home_timelines(&self) -> StoreResult<()> {
        home::rebuild(&self.pool).await
    }

    /// The query plans PostgreSQL chooses for reading this page of `timeline`: for
    /// checking index use on real data.
    pub async fn explain_timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<TimelinePlans> {
        timeline::explain(&self.pool, timeline, before, limit).await
    }

    /// Refreshes the planner's statistics and the visibility map (`VACUUM (ANALYZE)`),
    /// as autovacuum does within a minute or so; worth calling right after a bulk
    /// import so that the first queries are planned with the new sizes.
    pub async fn vacuum_analyze(&self) -> StoreResult<()> {
        sqlx::query("VACUUM (ANALYZE) users, messages, follows")
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    /// The answer to a keyed write that a batch did not apply because its key was held:
    /// the receipt of the earlier write under it.
    async fn held(&self, key: Option<&ReceiptKey>) -> StoreResult<ByName<Option<Receipt>>> {
        let key =
            key.ok_or_else(|| StoreError::Backend("a write without a key was not applied".into()))?;
        Ok(ByName::Done(Some(receipts::receipt_now(&self.pool, key).await?)))
    }
}

/// Refuses libpq's multi-host URLs (`postgres://h1,h2,h3/db`) and
/// `target_session_attrs`: sqlx connects to one host and ignores that parameter, so such
/// a URL would reach whichever member answers, a standby included, and writes would fail
/// there. A cluster that fails over is reached through one address that follows the
/// primary (HAProxy over Patroni's REST API: OPERATIONS.md, "High availability").
fn refuse_multi_host(url: &str) -> Result<(), PgError> {
    let refuse = |what: &str| {
        let message = format!(
            "{what} is not supported (the driver connects to one host and would not follow \
             the primary): give the address of a proxy that routes to the primary, such as \
             HAProxy over Patroni (OPERATIONS.md, \"High availability\")"
        );
        Err(PgError::InvalidUrl(sqlx::Error::Configuration(message.into())))
    };
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or_default();
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    if hosts.contains(',') {
        return refuse("a URL naming several hosts");
    }
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if matches!(key, "target_session_attrs" | "host" | "hostaddr" | "port")
            && value.contains(',')
            || key == "target_session_attrs" && value != "any"
        {
            return refuse(&format!("`{key}={value}`"));
        }
    }
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        Some(self.feed.delivery(&self.pool))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend_error)?;
        Ok(())
    }

    /// Commits are durable when acknowledged, so there is nothing to flush.
    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        users::create(&self.pool, user).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.reads.user_by_id.read(id, || users::by_id(&self.pool, id)).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let read = || users::by_name(&self.pool, username);
        self.reads.user_by_name.read(username.to_owned(), read).await
    }

    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>> {
        users::after(&self.pool, after, limit).await
    }

    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool> {
        users::set_password_hash(&self.pool, id, pw_hash).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let found = users::set_disabled(&self.pool, id, disabled).await?;
        if found {
            let change = if disabled { Change::UserDisabled(id) } else { Change::UserEnabled(id) };
            self.feed.announce(&self.pool, change);
        }
        Ok(found)
    }

    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        self.reads.session_generation.read(id, || users::session_generation(&self.pool, id)).await
    }

    /// One statement: the user's row with their generation.
    async fn user_with_generation(&self, id: UserId) -> StoreResult<Option<(User, i64)>> {
        let read = || users::with_generation(&self.pool, id);
        self.reads.user_with_generation.read(id, read).await
    }

    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        let found = users::bump_session_generation(&self.pool, id).await?;
        if found {
            self.feed.announce(&self.pool, Change::SessionsEnded(id));
        }
        Ok(found)
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let found = users::delete(&self.pool, id).await?;
        if found {
            self.feed.announce(&self.pool, Change::UserDeleted(id));
        }
        Ok(found)
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        let author = message.author_id;
        let id = messages::add(&self.pool, message).await?;
        self.feed.announce(&self.pool, Change::Posted { id, author });
        Ok(id)
    }

    /// One statement, shared with the posts waiting beside it (see `batch`): the author
    /// found by name and the message stored; then announced.
    async fn add_message_by_name(
        &self,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<MessageId>> {
        let post = Post { username: username.to_owned(), text, pub_date, claim: None };
        let posted = self.posts.store(&self.pool, &self.latest_writes, post).await?;
        posted.try_map(|stored| {
            let (id, author) = stored.ok_or_else(|| {
                StoreError::Backend("a post by an enabled user stored nothing".into())
            })?;
            self.feed.announce(&self.pool, Change::Posted { id, author });
            Ok(id)
        })
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        messages::by_id(&self.pool, id).await
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        let found = messages::set_flagged(&self.pool, id, flagged).await?;
        if found {
            self.feed.announce(&self.pool, flag_change(vec![id], flagged));
        }
        Ok(found)
    }

    /// One transaction: the named rows are locked, and updated only if all exist.
    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        let mut tx = self.pool.begin().await.map_err(backend_error)?;
        let numbers: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let found: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM messages WHERE id = ANY($1) FOR UPDATE")
                .bind(&numbers)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend_error)?;
        let unknown: Vec<MessageId> =
            ids.iter().copied().filter(|id| !found.contains(&id.0)).collect();
        if !unknown.is_empty() {
            return Ok(unknown);
        }
        sqlx::query("UPDATE messages SET flagged = $2 WHERE id = ANY($1)")
            .bind(&numbers)
            .bind(flagged)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        if !ids.is_empty() {
            self.feed.announce(&self.pool, flag_change(ids.to_vec(), flagged));
        }
        Ok(unknown)
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>> {
        messages::list(&self.pool, filter).await
    }

    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        messages::after(&self.pool, after, limit).await
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        follows::follow(&self.pool, follower, followee).await?;
        self.feed.announce(&self.pool, Change::Followed(Follow { follower, followee }));
        Ok(())
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        follows::unfollow(&self.pool, follower, followee).await?;
        self.feed.announce(&self.pool, Change::Unfollowed(Follow { follower, followee }));
        Ok(())
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        follows::is_following(&self.pool, follower, followee).await
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        let read = || follows::followees(&self.pool, follower, limit);
        self.reads.followees.read((follower, limit), read).await
    }

    /// One statement: the user found by name and their list.
    async fn followees_by_name(
        &self,
        username: &str,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        let read = || follows::followees_by_name(&self.pool, username, limit);
        self.reads.followees_by_name.read((username.to_owned(), limit), read).await
    }

    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>> {
        follows::after(&self.pool, after, limit).await
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let key = match timeline {
            Timeline::Public => (0, UserId(0), before, limit),
            Timeline::User(id) => (1, id, before, limit),
            Timeline::Home(id) => (2, id, before, limit),
        };
        self.reads
            .timeline
            .read(key, || timeline::read(&self.pool, timeline, before, limit, self.primary))
            .await
    }

    /// One statement, shared by every concurrent caller; `None` on a standby.
    async fn snapshot(&self) -> StoreResult<Option<Snapshot>> {
        self.reads.snapshot.read((), || state::snapshot(&self.pool)).await
    }

    async fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>> {
        receipts::receipt(&self.pool, key, since).await
    }

    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>> {
        let once = Once { key, receipt, since };
        let (kept, posted) =
            receipts::apply_once(&self.pool, &self.latest_writes, once, &write).await?;
        if let (None, Some(change)) = (&kept, Change::of_write(&write, posted)) {
            self.feed.announce(&self.pool, change);
        }
        Ok(kept)
    }

    /// One statement, shared with the posts waiting beside it (see `batch`): the author
    /// found by name, the key claimed and the message stored; then announced.
    async fn apply_once_by_name(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        username: &str,
        text: MessageText,
        pub_date: i64,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let claim = Claim::of(Once { key, receipt, since })?;
        let post = Post { username: username.to_owned(), text, pub_date, claim: Some(claim) };
        Ok(match self.keyed_posts.store(&self.pool, &self.latest_writes, post).await? {
            ByName::Done(Some((id, author))) => {
                self.feed.announce(&self.pool, Change::Posted { id, author });
                ByName::Done(None)
            }
            ByName::Done(None) => self.held(Some(key)).await?,
            ByName::Disabled => ByName::Disabled,
            ByName::UnknownUser => ByName::UnknownUser,
        })
    }

    /// One statement, shared with the changes waiting beside it (see `batch`): both users
    /// found by name, the key claimed if there is one, the follow changed; then
    /// announced, unless a receipt answered.
    async fn change_follow_by_names(
        &self,
        follower: &str,
        followee: &str,
        change: FollowChange,
        once: Option<Once<'_>>,
    ) -> StoreResult<ByName<Option<Receipt>>> {
        let claim = once.map(Claim::of).transpose()?;
        let (follower, followee) = (follower.to_owned(), followee.to_owned());
        let write = FollowByNames { follower, followee, change, claim };
        Ok(match self.follows.store(&self.pool, &self.latest_writes, write).await? {
            ByName::Done(Some(pair)) => {
                let write = change.write(pair.follower, pair.followee);
                if let Some(change) = Change::of_write(&write, None) {
                    self.feed.announce(&self.pool, change);
                }
                ByName::Done(None)
            }
            ByName::Done(None) => self.held(once.map(|once| once.key)).await?,
            ByName::Disabled => ByName::Disabled,
            ByName::UnknownUser => ByName::UnknownUser,
        })
    }

    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        receipts::forget(&self.pool, before, limit).await
    }

    /// After the writes of `latest` begun in this process before it.
    async fn latest(&self) -> StoreResult<Option<i64>> {
        self.latest_writes.settled(&self.pool).await;
        self.reads.latest.read((), || state::latest(&self.pool)).await
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.latest_writes.begin(&self.pool, latest).await
    }

    /// Written on a task of its own, so that its commit and the request's own can share
    /// a flush (see `latest`).
    async fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait> {
        Ok(self.latest_writes.begin(&self.pool, latest))
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        state::setting(&self.pool, key).await
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        state::init_setting(&self.pool, key, value).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        state::counts(&self.pool).await
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        import::run(&self.pool, batch).await
    }

    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()> {
        import::remove(&self.pool, batch).await
    }

    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        import::end(&self.pool, latest).await
    }
}

/// The change of flagging (or unflagging) `ids`.
fn flag_change(ids: Vec<MessageId>, flagged: bool) -> Change {
    if flagged { Change::Flagged(ids) } else { Change::Unflagged(ids) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_host_urls_are_refused_naming_the_way_that_works() {
        for url in [
            "postgres://minitwit:pw@pg1:5432,pg2:5432,pg3:5432/minitwit",
            "postgres://minitwit:pw@pg1,pg2/minitwit?target_session_attrs=read-write",
            "postgres://minitwit:pw@haproxy:5000/minitwit?target_session_attrs=read-write",
            "postgres://minitwit@localhost/minitwit?host=pg1,pg2",
        ] {
            let err = PgStore::connect_lazy(url, &PgOptions::default())
                .map(|_| ())
                .expect_err(url)
                .to_string();
            assert!(err.contains("HAProxy"), "{url}: {err}");
            assert!(!err.contains("pw"), "the password leaked: {err}");
        }
    }

    #[tokio::test]
    async fn single_host_urls_are_accepted() {
        for url in [
            "postgres://minitwit:pw@haproxy:5000/minitwit",
            "postgres://minitwit:pw@haproxy:5000/minitwit?target_session_attrs=any&sslmode=prefer",
            "postgres://minitwit@localhost/minitwit?host=/var/run/postgresql",
        ] {
            assert!(PgStore::connect_lazy(url, &PgOptions::default()).is_ok(), "{url}");
        }
    }
}
