//! The store's own state: the simulator's `latest`, settings (the session key), and the
//! totals the counter triggers keep exact.

use crate::error::backend_error;
use crate::rows::CountsRow;
use minitwit_core::Counts;
use minitwit_core::store::StoreResult;
use sqlx::PgPool;

/// The stored `latest`, if any.
pub(crate) async fn latest(pool: &PgPool) -> StoreResult<Option<i64>> {
    sqlx::query_scalar::<_, i64>("SELECT value FROM latest")
        .fetch_optional(pool)
        .await
        .map_err(backend_error)
}

/// Stores `latest`.
pub(crate) async fn set_latest(pool: impl sqlx::PgExecutor<'_>, latest: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO latest (id, value) VALUES (TRUE, $1)
         ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
    )
    .bind(latest)
    .execute(pool)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// The setting `key`, if set.
pub(crate) async fn setting(pool: &PgPool, key: &str) -> StoreResult<Option<Vec<u8>>> {
    sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .map_err(backend_error)
}

/// Sets `key` to `value` unless it is set, and returns what it holds. Two statements on
/// purpose: an insert that loses the race waits for the winner to commit, and the
/// following `SELECT` (a new snapshot) then sees the winner's value. One statement would
/// read from a snapshot taken before the winner committed.
pub(crate) async fn init_setting(pool: &PgPool, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .map_err(backend_error)
}

/// The totals: the 16 counter slots that triggers keep exact, summed (see the migrations).
pub(crate) async fn counts(pool: &PgPool) -> StoreResult<Counts> {
    let row = sqlx::query_as::<_, CountsRow>(
        "SELECT sum(users)::BIGINT AS users, sum(messages)::BIGINT AS messages,
                sum(follows)::BIGINT AS follows, sum(flagged)::BIGINT AS flagged
         FROM count_slots",
    )
    .fetch_one(pool)
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
