//! The timeline queries. Each reads newest first by `(pub_date, id)` from a partial
//! index of unflagged messages (see the migrations), so the first page and every keyset
//! page cost O(log n + page):
//! - public: `messages_public_idx (pub_date DESC, id DESC)`;
//! - one author: `messages_author_timeline_idx (author_id, pub_date DESC, id DESC)`;
//! - home, two ways in one statement, so that neither a user following many people
//!   nor one following quiet people is slow:
//!   1. fast path: walk the newest `32 × limit` entries of the public index, keeping
//!      the user's and their followees' (a hashed lookup); stops at `limit` hits;
//!   2. only if that found fewer than `limit`: for the user and each followee, the
//!      newest `limit` keys below the cursor from the per-author index (a LATERAL
//!      join: k short index-only range scans), then the best `limit` of those.
//!
//!   Either way the messages and authors themselves are read for the page only. The
//!   obvious `author_id IN (followees) ORDER BY pub_date` is the fast path without its
//!   bound: when the followees posted little lately it walks the whole date index.
//!   BENCHMARKS.md has the measurements.

use crate::error::backend_error;
use crate::rows::{EntryRow, into_all};
use crate::store::sql_limit;
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
    WITH window_end AS (
        SELECT w.pub_date, w.id FROM messages w
        WHERE NOT w.flagged AND (w.pub_date, w.id) < ($1, $2)
        ORDER BY w.pub_date DESC, w.id DESC
        OFFSET $5 LIMIT 1
    ), recent AS (
        SELECT m.pub_date, m.id FROM messages m
        WHERE NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
          AND (m.pub_date, m.id) >= (
              COALESCE((SELECT pub_date FROM window_end), -9223372036854775808),
              COALESCE((SELECT id FROM window_end), -9223372036854775808))
          AND (m.author_id = $4
               OR m.author_id IN (SELECT followee_id FROM follows WHERE follower_id = $4))
        ORDER BY m.pub_date DESC, m.id DESC
        LIMIT $3
    ), authors AS (
        SELECT $4::BIGINT AS id
        UNION
        SELECT followee_id FROM follows WHERE follower_id = $4
    ), per_author AS (
        SELECT k.pub_date, k.id
        FROM authors a
        CROSS JOIN LATERAL (
            SELECT m.pub_date, m.id FROM messages m
            WHERE m.author_id = a.id AND NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
            ORDER BY m.pub_date DESC, m.id DESC
            LIMIT $3
        ) k
        WHERE (SELECT count(*) FROM recent) < $3
        ORDER BY k.pub_date DESC, k.id DESC
        LIMIT $3
    ), newest AS (
        SELECT pub_date, id FROM recent WHERE (SELECT count(*) FROM recent) >= $3
        UNION ALL
        SELECT pub_date, id FROM per_author
    )
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM newest n
    JOIN messages m ON m.id = n.id
    JOIN users u ON u.id = m.author_id
    ORDER BY n.pub_date DESC, n.id DESC";

/// How many of the newest public entries (per entry of the page) the home timeline's
/// fast path looks through before falling back to per-author reads.
const WINDOW_PER_ENTRY: usize = 32;

/// The SQL for reading a page of `timeline` and its parameters: `$1, $2` the cursor,
/// `$3` the limit, `$4` the user, `$5` the home timeline's fast-path window.
fn statement(timeline: Timeline, before: Option<Cursor>, limit: usize) -> (&'static str, Vec<i64>) {
    // "Before the newest possible entry" reads from the start with the same query.
    let before = before.unwrap_or(Cursor { pub_date: i64::MAX, id: i64::MAX });
    let mut params = vec![before.pub_date, before.id, sql_limit(limit)];
    let sql = match timeline {
        Timeline::Public => PUBLIC,
        Timeline::User(id) => {
            params.push(id);
            USER
        }
        Timeline::Home(id) => {
            params.extend([id, sql_limit(limit.saturating_mul(WINDOW_PER_ENTRY))]);
            HOME
        }
    };
    (sql, params)
}

/// Reads one page of `timeline`.
pub(crate) async fn read(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Vec<TimelineEntry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let (sql, params) = statement(timeline, before, limit);
    let query = params.into_iter().fold(sqlx::query_as::<_, EntryRow>(sql), |q, p| q.bind(p));
    Ok(into_all(query.fetch_all(pool).await.map_err(backend_error)?))
}

/// The plan of [`read`]'s query for these arguments, as `EXPLAIN` prints it.
pub(crate) async fn explain(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let (sql, params) = statement(timeline, before, limit);
    let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"));
    let query = params.into_iter().fold(sqlx::query_scalar::<_, String>(explain), |q, p| q.bind(p));
    query.fetch_all(pool).await.map_err(backend_error)
}
