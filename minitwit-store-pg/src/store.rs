//! [`PgStore`]: the [`Store`] trait over a PostgreSQL connection pool. Every statement
//! is a runtime-checked query (no database is needed to build), and every write is
//! one statement or one transaction, durable when acknowledged.

use crate::error::{FOLLOWEE_FK, PgError, backend_error, store_error};
use crate::import;
use crate::options::PgOptions;
use crate::rows::{CountsRow, MessageRow, UserRow, into_all};
use crate::timeline::{self, TimelinePlans};
use async_trait::async_trait;
use minitwit_core::{
    Counts, Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, NewUser,
    Store, StoreResult, Timeline, TimelineEntry, User, UserId,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;

/// The migrations in this crate's `migrations/`, embedded at build time.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// MiniTwit's data in PostgreSQL. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
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
        let store = Self::connect_lazy(url, &options)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store whose connections open on first use, unmigrated: for read replicas, which
    /// receive the schema from their primary and may be down when this process starts.
    /// Fails only on a malformed URL.
    pub(crate) fn connect_lazy(url: &str, options: &PgOptions) -> Result<Self, PgError> {
        let timeout = options.statement_timeout.map_or(0, |t| t.as_millis()).to_string();
        let connect = PgConnectOptions::from_str(url).map_err(PgError::InvalidUrl)?.options([
            ("statement_timeout", timeout.as_str()),
            // Plan each statement once per connection, not on every run: every query
            // here has a good plan for any arguments (tests/indexes.rs checks the
            // timelines'), and planning the home timeline costs more than running it.
            ("plan_cache_mode", "force_generic_plan"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .min_connections(options.min_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self { pool })
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
}

/// A `LIMIT` value: Rust's sizes are unsigned, PostgreSQL's are `BIGINT`.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
        let row = sqlx::query_as::<_, UserRow>(
            "INSERT INTO users (username, email, pw_hash) VALUES ($1, $2, $3)
             RETURNING id, username, email, pw_hash, disabled",
        )
        .bind(user.username.as_ref())
        .bind(user.email.as_ref())
        .bind(&user.pw_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(row.into())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>(
            "SELECT id, username, email, pw_hash, disabled FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(row.map(User::from))
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query_as::<_, UserRow>(
            "SELECT id, username, email, pw_hash, disabled FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(row.map(User::from))
    }

    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>> {
        let rows = sqlx::query_as::<_, UserRow>(
            "SELECT id, username, email, pw_hash, disabled FROM users
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(into_all(rows))
    }

    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET pw_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(pw_hash)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
            .bind(id)
            .bind(disabled)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        let generation: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM session_generations WHERE user_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_error)?;
        Ok(generation.unwrap_or(0))
    }

    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO session_generations (user_id, generation) \
             SELECT id, 1 FROM users WHERE id = $1 \
             ON CONFLICT (user_id) DO UPDATE \
             SET generation = session_generations.generation + 1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    /// Messages and follows go with the user through `ON DELETE CASCADE`.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        let author = message.author_id;
        let row = sqlx::query(
            "INSERT INTO messages (author_id, text, pub_date) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(author)
        .bind(message.text.as_ref())
        .bind(message.pub_date)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| store_error(e, |_| Some(author)))?;
        row.try_get("id").map_err(backend_error)
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let row = sqlx::query_as::<_, MessageRow>(
            "SELECT id, author_id, text, pub_date, flagged FROM messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(row.map(Message::from))
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE messages SET flagged = $2 WHERE id = $1")
            .bind(id)
            .bind(flagged)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    /// One transaction: the named rows are locked, and updated only if all exist.
    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        let mut tx = self.pool.begin().await.map_err(backend_error)?;
        let found: Vec<MessageId> =
            sqlx::query_scalar("SELECT id FROM messages WHERE id = ANY($1) FOR UPDATE")
                .bind(ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend_error)?;
        let unknown: Vec<MessageId> =
            ids.iter().copied().filter(|id| !found.contains(id)).collect();
        if !unknown.is_empty() {
            return Ok(unknown);
        }
        sqlx::query("UPDATE messages SET flagged = $2 WHERE id = ANY($1)")
            .bind(ids)
            .bind(flagged)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(unknown)
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>> {
        let flagged: &[bool] = match filter.flagged {
            Some(true) => &[true],
            Some(false) => &[false],
            None => &[false, true],
        };
        // One statement per case, so that each has a plan using its index.
        let sql = match filter.author {
            Some(_) => {
                "SELECT id, author_id, text, pub_date, flagged FROM messages
                 WHERE id < $1 AND flagged = ANY($2) AND author_id = $4
                 ORDER BY id DESC LIMIT $3"
            }
            None => {
                "SELECT id, author_id, text, pub_date, flagged FROM messages
                 WHERE id < $1 AND flagged = ANY($2)
                 ORDER BY id DESC LIMIT $3"
            }
        };
        let query = sqlx::query_as::<_, MessageRow>(sql)
            .bind(filter.before.unwrap_or(i64::MAX))
            .bind(flagged)
            .bind(sql_limit(filter.limit));
        let query = match filter.author {
            Some(author) => query.bind(author),
            None => query,
        };
        let rows = query.fetch_all(&self.pool).await.map_err(backend_error)?;
        Ok(into_all(rows))
    }

    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query_as::<_, MessageRow>(
            "SELECT id, author_id, text, pub_date, flagged FROM messages
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(i64::MIN))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(into_all(rows))
    }

    /// `ON CONFLICT DO NOTHING` makes racing follows of one pair all succeed with one row.
    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(follower)
        .bind(followee)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            store_error(e, |fk| Some(if fk == FOLLOWEE_FK { followee } else { follower }))
        })?;
        Ok(())
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower)
            .bind(followee)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2)",
        )
        .bind(follower)
        .bind(followee)
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        sqlx::query_scalar::<_, String>(
            "SELECT u.username FROM follows f JOIN users u ON u.id = f.followee_id
             WHERE f.follower_id = $1 ORDER BY f.followee_id LIMIT $2",
        )
        .bind(follower)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)
    }

    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>> {
        let after = after.map_or((i64::MIN, i64::MIN), |f| (f.follower, f.followee));
        let rows = sqlx::query_as::<_, (i64, i64)>(
            "SELECT follower_id, followee_id FROM follows
             WHERE (follower_id, followee_id) > ($1, $2)
             ORDER BY follower_id, followee_id LIMIT $3",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(rows.into_iter().map(|(follower, followee)| Follow { follower, followee }).collect())
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        timeline::read(&self.pool, timeline, before, limit).await
    }

    async fn latest(&self) -> StoreResult<Option<i64>> {
        sqlx::query_scalar::<_, i64>("SELECT value FROM latest")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO latest (id, value) VALUES (TRUE, $1)
             ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(latest)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)
    }

    /// Two statements on purpose: an insert that loses the race waits for the winner
    /// to commit, and the following `SELECT` (a new snapshot) then sees the winner's
    /// value. One statement would read from a snapshot taken before the winner committed.
    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(backend_error)
    }

    /// Sums the 16 counter slots that triggers keep exact (see the migrations).
    async fn counts(&self) -> StoreResult<Counts> {
        let row = sqlx::query_as::<_, CountsRow>(
            "SELECT sum(users)::BIGINT AS users, sum(messages)::BIGINT AS messages,
                    sum(follows)::BIGINT AS follows, sum(flagged)::BIGINT AS flagged
             FROM count_slots",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Counts {
            users: count(row.users),
            messages: count(row.messages),
            follows: count(row.follows),
            flagged: count(row.flagged),
        })
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        import::run(&self.pool, batch).await
    }
}
