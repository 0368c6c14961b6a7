//! The kept home timelines' check and rebuild. The timelines themselves are kept by the
//! database: the triggers of the migrations `home_timelines` and `home_triggers_by_row`
//! write them with every post and follow, and `timeline` reads them.

use crate::error::backend_error;
use minitwit_core::store::StoreResult;
use sqlx::PgPool;

/// What [`crate::PgStore::check_home_timelines`] found; all zero when the kept home
/// timelines agree with the messages and follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HomeReport {
    /// Messages a kept home timeline must hold and does not: above its active reader's
    /// floor, by the reader or by a followee who is not loud.
    pub missing: u64,
    /// Entries no home timeline may hold: of a reader who is not active, of a message
    /// that does not exist (or under another date or author), or by someone the reader
    /// neither is nor follows.
    pub extra: u64,
    /// Follows of active readers missing from the list posts fan out to, or (of a loud
    /// author) from the list their pages merge on read; and rows of those lists that
    /// are not such a follow.
    pub follow_lists_wrong: u64,
}

impl HomeReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        *self == Self::default()
    }
}

/// The rules of the migration `home_timelines`, checked over all the data.
const CHECK: &str = "
    WITH expected AS (
        SELECT m.author_id AS owner_id, m.pub_date, m.id FROM messages m
        UNION
        SELECT f.follower_id, m.pub_date, m.id
        FROM follows f JOIN messages m ON m.author_id = f.followee_id
        WHERE NOT EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = f.followee_id)
    ), above_floor AS (
        SELECT e.* FROM expected e
        JOIN home_active a ON a.owner_id = e.owner_id
        LEFT JOIN home_floors fl ON fl.owner_id = e.owner_id
        WHERE fl.owner_id IS NULL OR (e.pub_date, e.id) >= (fl.pub_date, fl.message_id)
    )
    SELECT
        (SELECT count(*) FROM above_floor a WHERE NOT EXISTS (
            SELECT 1 FROM home_entries h
            WHERE (h.owner_id, h.pub_date, h.message_id) = (a.owner_id, a.pub_date, a.id))),
        (SELECT count(*) FROM home_entries h WHERE NOT EXISTS (
            SELECT 1 FROM home_active a WHERE a.owner_id = h.owner_id) OR NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.id = h.message_id AND m.pub_date = h.pub_date
              AND m.author_id = h.author_id
              AND (m.author_id = h.owner_id OR EXISTS (
                  SELECT 1 FROM follows f
                  WHERE f.follower_id = h.owner_id AND f.followee_id = m.author_id)))),
        (SELECT count(*) FROM follows f
         WHERE EXISTS (SELECT 1 FROM home_active a WHERE a.owner_id = f.follower_id)
           AND (NOT EXISTS (
                    SELECT 1 FROM home_active_follows af
                    WHERE (af.follower_id, af.followee_id) = (f.follower_id, f.followee_id))
                OR EXISTS (SELECT 1 FROM home_loud l WHERE l.user_id = f.followee_id)
                   AND NOT EXISTS (
                       SELECT 1 FROM home_loud_follows lf
                       WHERE (lf.follower_id, lf.followee_id)
                             = (f.follower_id, f.followee_id))))
        + (SELECT count(*) FROM (
               SELECT follower_id, followee_id FROM home_active_follows
               UNION ALL
               SELECT follower_id, followee_id FROM home_loud_follows) l
           WHERE NOT EXISTS (
               SELECT 1 FROM follows f JOIN home_active a ON a.owner_id = f.follower_id
               WHERE (f.follower_id, f.followee_id) = (l.follower_id, l.followee_id)))";

/// Checks the kept home timelines against the messages and follows (reads everything:
/// for tests and repairs, not for a busy server).
pub(crate) async fn check(pool: &PgPool) -> StoreResult<HomeReport> {
    let (missing, extra, lists) =
        sqlx::query_as::<_, (i64, i64, i64)>(CHECK).fetch_one(pool).await.map_err(backend_error)?;
    let count = |n: i64| u64::try_from(n).unwrap_or_default();
    Ok(HomeReport {
        missing: count(missing),
        extra: count(extra),
        follow_lists_wrong: count(lists),
    })
}

/// Builds the kept home timelines again from the messages and follows alone, in one
/// transaction.
pub(crate) async fn rebuild(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("SELECT home_rebuild()").execute(pool).await.map_err(backend_error)?;
    Ok(())
}
