//! Follows: following (idempotent under races), unfollowing, and the follow listings
//! (by the follower's id, or by their name in the same statement that finds them).

use crate::error::{FOLLOWEE_FK, backend_error, store_error};
use crate::rows::sql_limit;
use minitwit_core::UserId;
use minitwit_core::model::Follow;
use minitwit_core::store::StoreResult;
use sqlx::PgPool;

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
