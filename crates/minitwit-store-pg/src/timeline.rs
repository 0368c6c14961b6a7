//! The timeline queries. Each reads newest first by `(pub_date, id)` from a partial
//! index of unflagged messages (see the migrations), so the first page and every keyset
//! page cost O(log n + page):
//! - public: `messages_public_idx (pub_date DESC, id DESC)`;
//! - one author: `messages_author_timeline_idx (author_id, pub_date DESC, id DESC)`;
//! - home: for the user and each followee, the newest `limit` keys below the cursor
//!   from the per-author index (a LATERAL join: k short index-only range scans), then
//!   the best `limit` of those, and only then the messages and authors themselves.
//!   The obvious `author_id IN (followees) ORDER BY pub_date` walks the whole date index
//!   past everyone else's messages instead; see BENCHMARKS.md for the difference.

use crate::error::backend_error;
use crate::rows::{EntryRow, into_all};
use minitwit_core::{Cursor, StoreResult, Timeline, TimelineEntry};
use sqlx::PgPool;

const PUBLIC: &str = "
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM messages m JOIN users u ON u.id = m.author_id
    WHERE NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
    ORDER BY m.pub_date DESC, m.id DESC
    LIMIT $3";

const USER: &str = "
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM messages m JOIN users u ON u.id = m.author_id
    WHERE m.author_id = $4 AND NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
    ORDER BY m.pub_date DESC, m.id DESC
    LIMIT $3";

const HOME: &str = "
    WITH authors AS (
        SELECT $4::BIGINT AS id
        UNION
        SELECT followee_id FROM follows WHERE follower_id = $4
    ), newest AS (
        SELECT k.pub_date, k.id
        FROM authors a
        CROSS JOIN LATERAL (
            SELECT m.pub_date, m.id FROM messages m
            WHERE m.author_id = a.id AND NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
            ORDER BY m.pub_date DESC, m.id DESC
            LIMIT $3
        ) k
        ORDER BY k.pub_date DESC, k.id DESC
        LIMIT $3
    )
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM newest n
    JOIN messages m ON m.id = n.id
    JOIN users u ON u.id = m.author_id
    ORDER BY n.pub_date DESC, n.id DESC";

/// The SQL for `timeline` and the user it is about, if any. Parameters: `$1, $2` the
/// cursor, `$3` the limit, `$4` the user.
pub(crate) fn query_for(timeline: Timeline) -> (&'static str, Option<i64>) {
    match timeline {
        Timeline::Public => (PUBLIC, None),
        Timeline::User(id) => (USER, Some(id)),
        Timeline::Home(id) => (HOME, Some(id)),
    }
}

/// Reads one page of `timeline`.
pub(crate) async fn read(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Vec<TimelineEntry>> {
    // "Before the newest possible entry" reads from the start with the same query.
    let before = before.unwrap_or(Cursor { pub_date: i64::MAX, id: i64::MAX });
    let (sql, user) = query_for(timeline);
    let mut query = sqlx::query_as::<_, EntryRow>(sql)
        .bind(before.pub_date)
        .bind(before.id)
        .bind(crate::store::sql_limit(limit));
    if let Some(user) = user {
        query = query.bind(user);
    }
    Ok(into_all(query.fetch_all(pool).await.map_err(backend_error)?))
}

/// The plan of [`read`]'s query for these arguments, as `EXPLAIN` prints it.
pub(crate) async fn explain(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let before = before.unwrap_or(Cursor { pub_date: i64::MAX, id: i64::MAX });
    let (sql, user) = query_for(timeline);
    let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"));
    let mut query = sqlx::query_scalar::<_, String>(explain)
        .bind(before.pub_date)
        .bind(before.id)
        .bind(crate::store::sql_limit(limit));
    if let Some(user) = user {
        query = query.bind(user);
    }
    query.fetch_all(pool).await.map_err(backend_error)
}
