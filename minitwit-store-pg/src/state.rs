//! The store's own state: the simulator's `latest`, settings (the session key), the
//! totals the counter triggers keep exact, and the snapshot that names what reads see.

use crate::error::backend_error;
use crate::latest::latest_update;
use crate::rows::CountsRow;
use minitwit_core::Counts;
use minitwit_core::consistency::Snapshot;
use minitwit_core::store::StoreResult;
use sqlx::PgPool;

/// What a statement started now sees, named: the server's start time (another server,
/// or this one restarted, names its snapshots apart) and the transaction snapshot
/// (`pg_current_snapshot`: the newest transaction finished and those still running). It
/// changes with every commit, and only with one: what reads see only grows, and two
/// equal snapshots mean that nothing committed between them. `None` on a standby, whose
/// snapshot lists no running transaction and so could stay equal across a commit replayed.
pub(crate) async fn snapshot(pool: &PgPool) -> StoreResult<Option<Snapshot>> {
    let named = sqlx::query_scalar::<_, String>(
        "SELECT pg_postmaster_start_time()::text || ' ' || pg_current_snapshot()::text
         WHERE NOT pg_is_in_recovery()",
    )
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    Ok(named.map(Snapshot::named))
}

/// The stored `latest`, if any: the value asked for last by the process that wrote
/// last (see the migration `latest_slots`).
pub(crate) async fn latest(pool: &PgPool) -> StoreResult<Option<i64>> {
    sqlx::query_scalar::<_, i64>(
        "SELECT value FROM latest_slots
         WHERE value IS NOT NULL AND process = (
             SELECT process FROM latest_slots WHERE value IS NOT NULL
             ORDER BY written DESC LIMIT 1)
         ORDER BY asked DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(backend_error)
}

/// Records `latest`'s `row`: the writing process, the value's number and the value (see
/// [`latest_update!`]).
pub(crate) async fn set_latest(pool: &PgPool, row: [i64; 3]) -> StoreResult<()> {
    sqlx::query(latest_update!("$1")).bind(row).execute(pool).await.map_err(backend_error)?;
    Ok(())
}

/// Clears every slot and records `latest` alone, as no process's (an import's).
pub(crate) async fn replace_latest(conn: &mut sqlx::PgConnection, latest: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE latest_slots SET process = 0, asked = 0,
             value = CASE WHEN slot = 0 THEN $1 END,
             written = CASE WHEN slot = 0 THEN nextval('latest_order') ELSE 0 END",
    )
    .bind(latest)
    .execute(conn)
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
