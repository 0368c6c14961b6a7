//! Follows: following (idempotent under races), unfollowing, by the users' ids or by
//! their names in the statement that changes the follow (once under a key, if it has
//! one), and the follow listings (by the follower's id, or by their name in the same
//! statement that finds them).

use crate::batch::{Batched, by_place};
use crate::error::{FOLLOWEE_FK, backend_error, found_by_name, store_error};
use crate::latest::{LatestWrites, with_latest};
use crate::receipts::{Claim, Claims, batch_rows_sql, claim_all_sql, claim_sql, claiming};
use crate::rows::sql_limit;
use async_trait::async_trait;
use minitwit_core::UserId;
use minitwit_core::idempotency::FollowChange;
use minitwit_core::model::Follow;
use minitwit_core::store::{ByName, StoreResult};
use sqlx::PgPool;
use std::sync::Arc;

/// `follower` follows `followee`. `ON CONFLICT DO NOTHING` makes racing follows of one
/// pair all succeed with one row; an unknown user is the store's `UnknownUser`.
pub(crate) async fn follow(pool: &PgPool, follower: UserId, followee: UserId) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(follower.0)
    .bind(followee.0)
    .execute(pool)
    .await
    .map_err(|e| store_error(e, |fk| Some(if fk == FOLLOWEE_FK { followee } else { follower })))?;
    Ok(())
}

/// `follower` stops following `followee` (not following is fine).
pub(crate) async fn unfollow(pool: &PgPool, follower: UserId, followee: UserId) -> StoreResult<()> {
    sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
        .bind(follower.0)
        .bind(followee.0)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// Whether `follower` follows `followee`.
pub(crate) async fn is_following(
    pool: &PgPool,
    follower: UserId,
    followee: UserId,
) -> StoreResult<bool> {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2)",
    )
    .bind(follower.0)
    .bind(followee.0)
    .fetch_one(pool)
    .await
    .map_err(backend_error)
}

/// The names of up to `limit` users whom `follower` follows.
pub(crate) async fn followees(
    pool: &PgPool,
    follower: UserId,
    limit: usize,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT u.username FROM follows f JOIN users u ON u.id = f.followee_id
         WHERE f.follower_id = $1 ORDER BY f.followee_id LIMIT $2",
    )
    .bind(follower.0)
    .bind(sql_limit(limit))
    .fetch_all(pool)
    .await
    .map_err(backend_error)
}

/// The names of up to `limit` users whom the user named `username` follows, in one
/// statement; `None` if nobody has that name.
pub(crate) async fn followees_by_name(
    pool: &PgPool,
    username: &str,
    limit: usize,
) -> StoreResult<Option<Vec<String>>> {
    sqlx::query_scalar::<_, Vec<String>>(
        "SELECT ARRAY(
             SELECT u.username FROM follows f JOIN users u ON u.id = f.followee_id
             WHERE f.follower_id = follower.id ORDER BY f.followee_id LIMIT $2)
         FROM users follower WHERE follower.username = $1",
    )
    .bind(username)
    .bind(sql_limit(limit))
    .fetch_optional(pool)
    .await
    .map_err(backend_error)
}

/// Up to `limit` follow pairs after `after`, in pair order.
pub(crate) async fn after(
    pool: &PgPool,
    after: Option<Follow>,
    limit: usize,
) -> StoreResult<Vec<Follow>> {
    let after = after.map_or((i64::MIN, i64::MIN), |f| (f.follower.0, f.followee.0));
    let rows = sqlx::query_as::<_, (i64, i64)>(
        "SELECT follower_id, followee_id FROM follows
         WHERE (follower_id, followee_id) > ($1, $2)
         ORDER BY follower_id, followee_id LIMIT $3",
    )
    .bind(after.0)
    .bind(after.1)
    .bind(sql_limit(limit))
    .fetch_all(pool)
    .await
    .map_err(backend_error)?;
    Ok(rows
        .into_iter()
        .map(|(follower, followee)| Follow {
            follower: UserId(follower),
            followee: UserId(followee),
        })
        .collect())
}

/// The users named `$9` (the follower) and `$10` (the followee) as one row, `pair`, in a
/// `WITH` list; no row if either name is nobody's.
macro_rules! pair_sql {
    () => {
        "pair AS (SELECT r.id AS follower_id, e.id AS followee_id FROM users r, users e
         WHERE r.username = $9 AND e.username = $10)"
    };
}

/// A follow or an unfollow between the users named `$9` and `$10` in one statement, under
/// a key when `$1` to `$7` claim one (see [`claim_sql!`]) and else applied as it is: the
/// claim selects from `pair`, or nothing when `$1` is null. No row when either name is
/// nobody's; else both ids and whether the key was claimed (1 or 0; 0 unkeyed).
macro_rules! follow_by_names_sql {
    ($applied:literal, $tail:literal) => {
        concat!(
            with_latest!("$8"),
            pair_sql!(),
            ", claim AS (",
            claim_sql!("SELECT $1, $2, $3, $4, $5, $6 FROM pair WHERE $1::TEXT IS NOT NULL"),
            "), applied AS (",
            $applied,
            " AND ($1::TEXT IS NULL OR EXISTS (SELECT 1 FROM claim)) ",
            $tail,
            ") SELECT follower_id, followee_id, (SELECT count(*) FROM claim) FROM pair"
        )
    };
}

/// [`follow_by_names_sql!`] of a follow (a pair already followed stays as it is).
const FOLLOW_BY_NAMES: &str = follow_by_names_sql!(
    "INSERT INTO follows (follower_id, followee_id)
     SELECT follower_id, followee_id FROM pair WHERE TRUE",
    "ON CONFLICT DO NOTHING"
);

/// [`follow_by_names_sql!`] of an unfollow (not following is fine).
const UNFOLLOW_BY_NAMES: &str = follow_by_names_sql!(
    "DELETE FROM follows f USING pair p
     WHERE f.follower_id = p.follower_id AND f.followee_id = p.followee_id",
    ""
);

/// [`follow_by_names_sql!`] for many changes (`$9` followers' names, `$10` followees',
/// `$11` whether each follows or unfollows; their keys' claims in `$1` to `$7`, see
/// `receipts::Claims`): one row for each change whose users both exist, with its place
/// among the changes (from 1), both ids, and whether it was applied (its key claimed, or
/// none). Changes of one pair in one batch were in flight together: the pair ends
/// followed if any of them follows, an order they could have come in.
const CHANGE_ALL_BY_NAMES: &str = concat!(
    with_latest!("$8"),
    "changes AS (SELECT * FROM ",
    batch_rows_sql!("$9::TEXT[], $10::TEXT[], $11::BOOLEAN[]", "c", "follower, followee, follow"),
    "), pair AS (
         SELECT c.*, r.id AS follower_id, e.id AS followee_id
         FROM changes c JOIN users r ON r.username = c.follower
                        JOIN users e ON e.username = c.followee),
     claim AS (",
    claim_all_sql!("pair WHERE key IS NOT NULL"),
    "), applied AS (
         SELECT place, key IS NULL OR (scope, key) IN (SELECT scope, key FROM claim) AS applied
         FROM pair),
     go AS (SELECT pair.* FROM pair JOIN applied USING (place) WHERE applied.applied),
     followed AS (
         INSERT INTO follows (follower_id, followee_id)
         SELECT DISTINCT follower_id, followee_id FROM go WHERE follow
         ON CONFLICT DO NOTHING),
     unfollowed AS (
         DELETE FROM follows f USING go
         WHERE NOT go.follow AND f.follower_id = go.follower_id
           AND f.followee_id = go.followee_id)
     SELECT place, follower_id, followee_id, applied FROM pair JOIN applied USING (place)"
);

/// A follow or an unfollow (`change`) between the users named `follower` and `followee`,
/// applied once under its key if it has one, else as it is; stored together with the
/// changes waiting beside it (see `batch`).
pub(crate) struct FollowByNames {
    pub(crate) follower: String,
    pub(crate) followee: String,
    pub(crate) change: FollowChange,
    pub(crate) claim: Option<Claim>,
}

/// What a change by names did: nothing, when either name is nobody's; else the pair,
/// changed, or none when its key was held already (by an earlier change, whose receipt
/// answers).
pub(crate) type Changed = ByName<Option<Follow>>;

/// The pair `follower` and `followee` (ids), if the change was `applied`.
fn changed(follower: i64, followee: i64, applied: bool) -> Option<Follow> {
    applied.then_some(Follow { follower: UserId(follower), followee: UserId(followee) })
}

/// Both users found by name in the statement that changes the follow and claims the key.
#[async_trait]
impl Batched for FollowByNames {
    type Outcome = Changed;

    async fn store_one(&self, pool: &PgPool, latest: &Arc<LatestWrites>) -> StoreResult<Changed> {
        let sql = match self.change {
            FollowChange::Follow => FOLLOW_BY_NAMES,
            FollowChange::Unfollow => UNFOLLOW_BY_NAMES,
        };
        let carried = latest.carry(pool);
        let once = self.claim.as_ref().map(Claim::once);
        let row = claiming::<(i64, i64, i64)>(sql, once, &carried)?
            .bind(&self.follower)
            .bind(&self.followee)
            .fetch_optional(pool)
            .await;
        carried.done(&row);
        // Following has no rule for disabled users: a pair found is never refused.
        let found = found_by_name(row.map(|row| row.map(|pair| (false, pair))))?;
        Ok(found.map(|(follower, followee, claimed)| {
            changed(follower, followee, once.is_none() || claimed == 1)
        }))
    }

    async fn store_all(
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
        changes: &[&Self],
    ) -> Result<Vec<Changed>, sqlx::Error> {
        let followers: Vec<&str> = changes.iter().map(|c| c.follower.as_str()).collect();
        let followees: Vec<&str> = changes.iter().map(|c| c.followee.as_str()).collect();
        let follows: Vec<bool> = changes.iter().map(|c| c.change == FollowChange::Follow).collect();
        let claims = Claims::of(changes.iter().map(|c| c.claim.as_ref()));
        let carried = latest.carry(pool);
        let query = claims.bind(sqlx::query_as::<_, (i64, i64, i64, bool)>(CHANGE_ALL_BY_NAMES));
        let rows = query
            .bind(carried.bound())
            .bind(followers)
            .bind(followees)
            .bind(follows)
            .fetch_all(pool)
            .await;
        carried.done(&rows);
        let outcomes = rows?.into_iter().map(|(place, follower, followee, applied)| {
            (place, ByName::Done(changed(follower, followee, applied)))
        });
        by_place(changes.len(), outcomes)
    }
}
