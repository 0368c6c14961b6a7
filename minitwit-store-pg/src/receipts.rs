//! Keyed writes' receipts (see `minitwit_core::idempotency`): the receipt is inserted
//! first in the write's own transaction, claiming the key. A concurrent transaction with
//! the same key (another request, another replica) waits on that row until the first
//! ends: if it committed, the waiter finds its receipt and writes nothing; if it rolled
//! back or its process died, the waiter claims the key itself.

use crate::error::backend_error;
use crate::store::sql_limit;
use crate::{follows, messages, users};
use minitwit_core::{Receipt, ReceiptKey, StoreError, StoreResult, Write};
use sqlx::{PgConnection, PgExecutor, PgPool};

/// A receipt as stored.
#[derive(sqlx::FromRow)]
struct ReceiptRow {
    fingerprint: Vec<u8>,
    status: i16,
    body: Vec<u8>,
    recorded_at: i64,
}

impl TryFrom<ReceiptRow> for Receipt {
    type Error = StoreError;

    fn try_from(row: ReceiptRow) -> StoreResult<Self> {
        let corrupt =
            || StoreError::Backend("a receipt with a malformed status or fingerprint".into());
        Ok(Self {
            fingerprint: row.fingerprint.try_into().map_err(|_| corrupt())?,
            status: u16::try_from(row.status).map_err(|_| corrupt())?,
            body: row.body,
            recorded_at: row.recorded_at,
        })
    }
}

/// The receipt under `key`, unless recorded before `since`.
pub(crate) async fn receipt(
    db: impl PgExecutor<'_>,
    key: &ReceiptKey,
    since: i64,
) -> StoreResult<Option<Receipt>> {
    let row = sqlx::query_as::<_, ReceiptRow>(
        "SELECT fingerprint, status, body, recorded_at FROM receipts
         WHERE scope = $1 AND key = $2 AND recorded_at >= $3",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(since)
    .fetch_optional(db)
    .await
    .map_err(backend_error)?;
    row.map(Receipt::try_from).transpose()
}

/// `write` and its receipt in one transaction, unless a live receipt holds the key:
/// then that receipt, and nothing written.
pub(crate) async fn apply_once(
    pool: &PgPool,
    key: &ReceiptKey,
    receipt: &Receipt,
    since: i64,
    write: Write,
) -> StoreResult<Option<Receipt>> {
    let mut tx = pool.begin().await.map_err(backend_error)?;
    if !claim(&mut tx, key, receipt, since).await? {
        // Rolled back on drop: the claim changed nothing.
        return receipt_now(&mut tx, key).await.map(Some);
    }
    apply(&mut tx, write).await?;
    tx.commit().await.map_err(backend_error)?;
    Ok(None)
}

/// Inserts `receipt` under `key`, or replaces an expired one; `false` when a live one
/// holds the key. Waits for a transaction that holds the key uncommitted.
async fn claim(
    conn: &mut PgConnection,
    key: &ReceiptKey,
    receipt: &Receipt,
    since: i64,
) -> StoreResult<bool> {
    let status = i16::try_from(receipt.status)
        .map_err(|_| StoreError::Backend(format!("status {} out of range", receipt.status)))?;
    let done = sqlx::query(
        "INSERT INTO receipts (scope, key, fingerprint, status, body, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
             body = EXCLUDED.body, recorded_at = EXCLUDED.recorded_at
         WHERE receipts.recorded_at < $7",
    )
    .bind(&key.scope)
    .bind(&key.key)
    .bind(&receipt.fingerprint[..])
    .bind(status)
    .bind(&receipt.body)
    .bind(receipt.recorded_at)
    .bind(since)
    .execute(conn)
    .await
    .map_err(backend_error)?;
    Ok(done.rows_affected() == 1)
}

/// The receipt holding `key` now (committed by the transaction `claim` waited for).
async fn receipt_now(conn: &mut PgConnection, key: &ReceiptKey) -> StoreResult<Receipt> {
    receipt(conn, key, i64::MIN)
        .await?
        .ok_or_else(|| StoreError::Backend("a claimed receipt vanished".into()))
}

/// Applies one of the writes a key can carry, on the transaction's connection.
async fn apply(conn: &mut PgConnection, write: Write) -> StoreResult<()> {
    match write {
        Write::Register(user) => users::create(conn, user).await.map(drop),
        Write::Post(message) => messages::add(conn, message).await.map(drop),
        Write::Follow { follower, followee } => follows::follow(conn, follower, followee).await,
        Write::Unfollow { follower, followee } => follows::unfollow(conn, follower, followee).await,
    }
}

/// Removes up to `limit` receipts recorded before `before`, oldest first.
pub(crate) async fn forget(pool: &PgPool, before: i64, limit: usize) -> StoreResult<usize> {
    let done = sqlx::query(
        "DELETE FROM receipts WHERE (scope, key) IN (
             SELECT scope, key FROM receipts WHERE recorded_at < $1
             ORDER BY recorded_at LIMIT $2)",
    )
    .bind(before)
    .bind(sql_limit(limit))
    .execute(pool)
    .await
    .map_err(backend_error)?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}
