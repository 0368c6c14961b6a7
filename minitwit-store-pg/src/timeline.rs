//! The timeline queries. Each reads newest first by `(pub_date, id)` from a partial
//! index of unflagged messages (see the migrations), so the first page and every keyset
//! page cost O(log n + page):
//! - public: `messages_public_idx (pub_date DESC, id DESC)`;
//! - one author: `messages_author_timeline_idx (author_id, pub_date DESC, id DESC)`, in
//!   index order: the connections disable bitmap scans (see `store`), which a generic
//!   plan otherwise picks for pages larger than an average author's share of rows,
//!   reading and sorting all of the author's messages;
//! - home, from the kept home timeline (fan-out on write: the migration
//!   `home_timelines` has its rules, and `home_triggers_by_row` the locks that order
//!   posts, follows and activations as they are now) in one statement: the reader's
//!   entries above their floor from `home_entries_pkey`, with the newest of each loud
//!   followee's messages above the floor merged in; a page that reaches below the
//!   floor goes on with the merge below, read only then, and from the floor that
//!   statement saw (it returns the reader's state with the entries).
//! - home below the floor, merged from the authors' own indexes, two ways in one
//!   statement, so that neither a user following many people nor one following quiet
//!   people is slow:
//!   1. fast path: walk the newest `32 × limit` entries of the public index, keeping
//!      the user's and their followees' (a hashed lookup); stops at `limit` hits;
//!   2. only if that found fewer than `limit`: for the user and each followee, the
//!      newest `limit` keys below the cursor from the per-author index (a LATERAL
//!      join: k short index-only range scans), then the best `limit` of those.
//!
//!   Either way the messages and authors themselves are read for the page only, one
//!   key lookup each (`OFFSET 0` keeps the planner from turning those lookups into a
//!   hash join over a whole small table, which it prefers below some 100k rows). The
//!   obvious `author_id IN (followees) ORDER BY pub_date` is the fast path without its
//!   bound: when the followees posted little lately it walks the whole date index.
//!   BENCHMARKS.md has the measurements.

use crate::error::backend_error;
use crate::rows::sql_limit;
use crate::rows::{EntryRow, into_all};
use minitwit_core::store::StoreResult;
use minitwit_core::{Cursor, MessageId, Timeline, TimelineEntry, UserId};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};

const PUBLIC: &str = "
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM messages m JOIN users u ON u.id = m.author_id
    WHERE NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
    ORDER BY m.pub_date DESC, m.id DESC
    LIMIT __LIMIT__";

const USER: &str = "
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM messages m JOIN users u ON u.id = m.author_id
    WHERE m.author_id = $3 AND NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
    ORDER BY m.pub_date DESC, m.id DESC
    LIMIT __LIMIT__";

const HOME_KEPT: &str = "
    WITH state AS (
        SELECT EXISTS (SELECT 1 FROM home_active WHERE owner_id = $3) AS active,
               (SELECT pub_date FROM home_floors WHERE owner_id = $3) AS floor_date,
               (SELECT message_id FROM home_floors WHERE owner_id = $3) AS floor_id
    ), floor AS (
        SELECT CASE WHEN active THEN COALESCE(floor_date, -9223372036854775808)
                    ELSE 9223372036854775807 END AS pub_date,
               CASE WHEN active THEN COALESCE(floor_id, -9223372036854775808)
                    ELSE 9223372036854775807 END AS id
        FROM state
    ), kept AS (
        SELECT h.pub_date, h.message_id AS id FROM home_entries h
        WHERE h.owner_id = $3 AND (h.pub_date, h.message_id) < ($1, $2)
          AND (h.pub_date, h.message_id)
              >= ((SELECT pub_date FROM floor), (SELECT id FROM floor))
          AND NOT (SELECT flagged FROM messages WHERE id = h.message_id)
        ORDER BY h.pub_date DESC, h.message_id DESC
        LIMIT __LIMIT__
    ), loud AS (
        SELECT k.pub_date, k.id
        FROM home_loud_follows lf
        CROSS JOIN LATERAL (
            SELECT m.pub_date, m.id FROM messages m
            WHERE m.author_id = lf.followee_id AND NOT m.flagged
              AND (m.pub_date, m.id) < ($1, $2)
              AND (m.pub_date, m.id) >= ((SELECT pub_date FROM floor), (SELECT id FROM floor))
            ORDER BY m.pub_date DESC, m.id DESC
            LIMIT __LIMIT__
        ) k
        WHERE lf.follower_id = $3
    ), newest AS (
        SELECT pub_date, id FROM kept
        UNION
        SELECT pub_date, id FROM loud
        ORDER BY pub_date DESC, id DESC
        LIMIT __LIMIT__
    ), page AS (
        SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
        FROM newest n
        CROSS JOIN LATERAL (SELECT * FROM messages WHERE id = n.id OFFSET 0) m
        CROSS JOIN LATERAL (SELECT username, email FROM users WHERE id = m.author_id OFFSET 0) u
    )
    SELECT s.active, s.floor_date, s.floor_id, p.*
    FROM state s LEFT JOIN page p ON TRUE
    ORDER BY p.pub_date DESC, p.id DESC";

const HOME_MERGED: &str = "
    WITH window_end AS (
        SELECT w.pub_date, w.id FROM messages w
        WHERE NOT w.flagged AND (w.pub_date, w.id) < ($1, $2)
        ORDER BY w.pub_date DESC, w.id DESC
        OFFSET __WINDOW__ LIMIT 1
    ), recent AS (
        SELECT m.pub_date, m.id FROM messages m
        WHERE NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
          AND (m.pub_date, m.id) >= (
              COALESCE((SELECT pub_date FROM window_end), -9223372036854775808),
              COALESCE((SELECT id FROM window_end), -9223372036854775808))
          AND (m.author_id = $3
               OR m.author_id IN (SELECT followee_id FROM follows WHERE follower_id = $3))
        ORDER BY m.pub_date DESC, m.id DESC
        LIMIT __LIMIT__
    ), authors AS (
        SELECT $3::BIGINT AS id
        UNION
        SELECT followee_id FROM follows WHERE follower_id = $3
    ), per_author AS (
        SELECT k.pub_date, k.id
        FROM authors a
        CROSS JOIN LATERAL (
            SELECT m.pub_date, m.id FROM messages m
            WHERE m.author_id = a.id AND NOT m.flagged AND (m.pub_date, m.id) < ($1, $2)
            ORDER BY m.pub_date DESC, m.id DESC
            LIMIT __LIMIT__
        ) k
        WHERE (SELECT count(*) FROM recent) < __LIMIT__
        ORDER BY k.pub_date DESC, k.id DESC
        LIMIT __LIMIT__
    ), newest AS (
        SELECT pub_date, id FROM recent WHERE (SELECT count(*) FROM recent) >= __LIMIT__
        UNION ALL
        SELECT pub_date, id FROM per_author
    )
    SELECT m.id, m.author_id, u.username AS author, u.email, m.text, m.pub_date
    FROM newest n
    CROSS JOIN LATERAL (SELECT * FROM messages WHERE id = n.id OFFSET 0) m
    CROSS JOIN LATERAL (SELECT username, email FROM users WHERE id = m.author_id OFFSET 0) u
    ORDER BY n.pub_date DESC, n.id DESC";

/// "Before the newest possible entry": reads from the start with the same query.
const NEWEST: Cursor = Cursor { pub_date: i64::MAX, id: MessageId(i64::MAX) };

/// How many of the newest public entries (per entry of the page) the home timeline's
/// fast path looks through before falling back to per-author reads.
const WINDOW_PER_ENTRY: usize = 32;

/// The SQL for reading a page of `timeline` and its parameters: `$1, $2` the cursor,
/// `$3` the user.
///
/// The limit (and the home timeline's window) are written into the SQL as numbers, not
/// passed as parameters: PostgreSQL plans a prepared statement once for all parameter
/// values after a few runs, and a plan made without knowing that a page is short joins
/// the page to whole tables. A handful of page sizes means a handful of statements.
fn statement(timeline: Timeline, before: Option<Cursor>, limit: usize) -> (String, Vec<i64>) {
    let before = before.unwrap_or(NEWEST);
    match timeline {
        Timeline::Public => fill(PUBLIC, before, None, limit),
        Timeline::User(id) => fill(USER, before, Some(id), limit),
        Timeline::Home(id) => fill(HOME_KEPT, before, Some(id), limit),
    }
}

/// `template` with its limit (and window) written in, and its parameters.
fn fill(template: &str, before: Cursor, user: Option<UserId>, limit: usize) -> (String, Vec<i64>) {
    let params = [before.pub_date, before.id.0].into_iter().chain(user.map(|id| id.0)).collect();
    let window = sql_limit(limit.saturating_mul(WINDOW_PER_ENTRY));
    let sql = template
        .replace("__LIMIT__", &sql_limit(limit).to_string())
        .replace("__WINDOW__", &window.to_string());
    (sql, params)
}

/// Reads one page of `timeline`; on the `primary`, a home page may start keeping its
/// reader's home timeline (see [`below_floor`]).
pub(crate) async fn read(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
    primary: bool,
) -> StoreResult<Vec<TimelineEntry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let Timeline::Home(reader) = timeline else {
        return run(pool, statement(timeline, before, limit)).await;
    };
    let (mut page, kept) = read_kept(pool, statement(timeline, before, limit)).await?;
    if page.len() < limit {
        let rest = page.last().map(Cursor::after).or(before);
        page.extend(below_floor(pool, reader, kept, rest, limit - page.len(), primary).await?);
    }
    Ok(page)
}

/// Runs one timeline statement.
async fn run(pool: &PgPool, (sql, params): (String, Vec<i64>)) -> StoreResult<Vec<TimelineEntry>> {
    let query = sqlx::query_as::<_, EntryRow>(sqlx::AssertSqlSafe(sql));
    let query = params.into_iter().fold(query, |q, p| q.bind(p));
    Ok(into_all(query.fetch_all(pool).await.map_err(backend_error)?))
}

/// Runs the kept home timeline's statement: its entries, and how much of the reader's
/// home timeline it found kept, seen in the same snapshot. The merge below the floor
/// must go by that, not by a later look: a reader activated between the two statements
/// would otherwise have their page end where the kept entries (which the first did not
/// see) begin.
async fn read_kept(
    pool: &PgPool,
    (sql, params): (String, Vec<i64>),
) -> StoreResult<(Vec<TimelineEntry>, Kept)> {
    let query = sqlx::query_as::<_, KeptRow>(sqlx::AssertSqlSafe(sql));
    let query = params.into_iter().fold(query, |q, p| q.bind(p));
    let rows = query.fetch_all(pool).await.map_err(backend_error)?;
    // The statement always has a row (its state, with no entry when the page is empty);
    // without one, merging everything is still right.
    let kept = rows.first().map_or(Kept::Nothing, |row| row.kept);
    Ok((rows.into_iter().filter_map(|row| row.entry.map(TimelineEntry::from)).collect(), kept))
}

/// How much of a reader's home timeline is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// None: the reader is not active, their pages are merged.
    Nothing,
    /// Everything above this floor; below it pages are merged.
    Above(Cursor),
    /// Everything: the reader is active and has no floor.
    Everything,
}

/// A row of the kept home timeline's statement: the reader's state, and an entry unless
/// the page is empty.
struct KeptRow {
    kept: Kept,
    entry: Option<EntryRow>,
}

impl<'r> FromRow<'r, PgRow> for KeptRow {
    fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
        let active: bool = row.try_get("active")?;
        let floor: (Option<i64>, Option<i64>) =
            (row.try_get("floor_date")?, row.try_get("floor_id")?);
        let kept = match (active, floor) {
            (false, _) => Kept::Nothing,
            (true, (Some(pub_date), Some(id))) => {
                Kept::Above(Cursor { pub_date, id: MessageId(id) })
            }
            (true, _) => Kept::Everything,
        };
        let entry = match row.try_get::<Option<i64>, _>("id")? {
            Some(_) => Some(EntryRow::from_row(row)?),
            None => None,
        };
        Ok(Self { kept, entry })
    }
}

/// The rest of a home page that the kept timeline ended short of: up to `limit`
/// entries merged from the authors' indexes below the reader's floor (nothing when
/// the reader has none: then the kept timeline holds everything). A reader whose home
/// timeline is not kept yet gets the whole page merged, and is activated on the
/// `primary` (see the migration `home_timelines`) so that their next pages are kept
/// ones; a read replica leaves that to a read that reaches the primary.
async fn below_floor(
    pool: &PgPool,
    reader: UserId,
    kept: Kept,
    before: Option<Cursor>,
    limit: usize,
    primary: bool,
) -> StoreResult<Vec<TimelineEntry>> {
    let floor = match kept {
        Kept::Nothing => NEWEST,
        Kept::Above(floor) => floor,
        Kept::Everything => return Ok(Vec::new()),
    };
    let before = before.map_or(floor, |before| before.min(floor));
    let page = run(pool, fill(HOME_MERGED, before, Some(reader), limit)).await?;
    if kept == Kept::Nothing && primary {
        activate(pool, reader).await;
    }
    Ok(page)
}

/// Starts keeping `reader`'s home timeline. A failure (an outage, say) only postpones
/// it to a later read, so it is logged, not returned.
async fn activate(pool: &PgPool, reader: UserId) {
    let activated = sqlx::query("SELECT home_activate($1)").bind(reader.0).execute(pool).await;
    if let Err(e) = activated {
        tracing::debug!(reader = reader.0, error = %e, "home timeline not activated");
    }
}

/// The plans of [`read`]'s queries for these arguments, as `EXPLAIN` prints them: for
/// the home timeline, the kept timeline's statement followed by the merge below the
/// floor (at the same cursor).
pub(crate) async fn explain(
    pool: &PgPool,
    timeline: Timeline,
    before: Option<Cursor>,
    limit: usize,
) -> StoreResult<TimelinePlans> {
    let mut plans = explain_one(pool, statement(timeline, before, limit)).await?;
    if let Timeline::Home(reader) = timeline {
        let merged =
            explain_one(pool, fill(HOME_MERGED, before.unwrap_or(NEWEST), Some(reader), limit))
                .await?;
        plans.custom.extend(merged.custom);
        plans.generic.extend(merged.generic);
    }
    Ok(plans)
}

/// The plans of one statement.
async fn explain_one(
    pool: &PgPool,
    (sql, params): (String, Vec<i64>),
) -> StoreResult<TimelinePlans> {
    let explain = sqlx::AssertSqlSafe(format!("EXPLAIN {sql}"));
    let custom = params
        .iter()
        .fold(sqlx::query_scalar::<_, String>(explain), |q, p| q.bind(*p))
        .fetch_all(pool)
        .await
        .map_err(backend_error)?;
    let generic = explain_generic(pool, &sql, &params).await.map_err(backend_error)?;
    Ok(TimelinePlans { custom, generic })
}

/// The generic plan of `sql`: prepared on a connection of its own that is closed
/// afterwards, so neither the setting nor the prepared statement outlives the call.
async fn explain_generic(pool: &PgPool, sql: &str, params: &[i64]) -> sqlx::Result<Vec<String>> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    let types = vec!["BIGINT"; params.len()].join(", ");
    let prepare = format!("PREPARE minitwit_explain ({types}) AS {sql}");
    sqlx::query(sqlx::AssertSqlSafe(prepare)).execute(&mut *conn).await?;
    // The arguments are integers: written out, they cannot change the statement.
    let args: Vec<String> = params.iter().map(i64::to_string).collect();
    let execute = format!("EXPLAIN EXECUTE minitwit_explain ({})", args.join(", "));
    sqlx::query_scalar(sqlx::AssertSqlSafe(execute)).fetch_all(&mut *conn).await
}

/// How PostgreSQL runs a timeline query, as `EXPLAIN` prints it (one line per element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePlans {
    /// The plan for these very arguments: what the first runs of a statement use.
    pub custom: Vec<String>,
    /// The plan for any arguments, which PostgreSQL may switch to once a prepared
    /// statement has run a few times.
    pub generic: Vec<String>,
}
