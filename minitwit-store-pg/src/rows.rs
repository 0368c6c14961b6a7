//! Rows as queries return them, and their conversion into the core's records.

use crate::error::backend_error;
use minitwit_core::store::StoreResult;
use minitwit_core::{Message, MessageId, TimelineEntry, User, UserId};
use sqlx::PgPool;
use sqlx::postgres::PgRow;

/// The columns of a [`UserRow`], in a `SELECT` or `RETURNING` list (a macro, so that
/// `concat!` builds each statement at compile time).
macro_rules! user_columns {
    () => {
        "id, username, email, pw_hash, disabled"
    };
}
pub(crate) use user_columns;

/// The columns of a [`MessageRow`], as [`user_columns!`] for users.
macro_rules! message_columns {
    () => {
        "id, author_id, text, pub_date, flagged"
    };
}
pub(crate) use message_columns;

/// A `users` row.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    username: String,
    email: String,
    pw_hash: String,
    disabled: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId(r.id),
            username: r.username,
            email: r.email,
            pw_hash: r.pw_hash,
            disabled: r.disabled,
        }
    }
}

/// A `messages` row.
#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    author_id: i64,
    text: String,
    pub_date: i64,
    flagged: bool,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Self {
        Message {
            id: MessageId(r.id),
            author_id: UserId(r.author_id),
            text: r.text,
            pub_date: r.pub_date,
            flagged: r.flagged,
        }
    }
}

/// A timeline query's row: a message joined with its author.
#[derive(sqlx::FromRow)]
pub(crate) struct EntryRow {
    id: i64,
    author_id: i64,
    author: String,
    email: String,
    text: String,
    pub_date: i64,
}

impl From<EntryRow> for TimelineEntry {
    fn from(r: EntryRow) -> Self {
        TimelineEntry {
            id: MessageId(r.id),
            author_id: UserId(r.author_id),
            author: r.author,
            email: r.email,
            text: r.text,
            pub_date: r.pub_date,
        }
    }
}

/// The totals, summed over the counter slots.
#[derive(sqlx::FromRow)]
pub(crate) struct CountsRow {
    pub(crate) users: i64,
    pub(crate) messages: i64,
    pub(crate) follows: i64,
    pub(crate) flagged: i64,
}

/// Converts rows into records.
pub(crate) fn into_all<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// A keyset read for export and copy: the records of `sql`'s rows, where `sql` selects
/// the rows with ids above `$1`, by id, `LIMIT $2`.
pub(crate) async fn after<R, T>(
    pool: &PgPool,
    sql: &'static str,
    after: Option<i64>,
    limit: usize,
) -> StoreResult<Vec<T>>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    T: From<R>,
{
    let rows = sqlx::query_as::<_, R>(sql)
        .bind(after.unwrap_or(i64::MIN))
        .bind(sql_limit(limit))
        .fetch_all(pool)
        .await
        .map_err(backend_error)?;
    Ok(into_all(rows))
}

/// A `LIMIT` value: Rust's sizes are unsigned, PostgreSQL's are `BIGINT`.
pub(crate) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
