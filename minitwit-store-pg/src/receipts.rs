//! Keyed writes' receipts (see `minitwit_core::idempotency`): one statement inserts the
//! receipt, claiming the key, and the write with it (a data-modifying `WITH`), so both
//! commit together in one round trip. A concurrent statement with the same key (another
//! request, another replica) waits on the receipt's row until the first ends: if it
//! committed, the waiter finds its receipt and writes nothing; if it failed, the waiter
//! claims the key itself.

use crate::error::{FOLLOWEE_FK, backend_error, found_by_name, store_error};
use crate::rows::sql_limit;
use minitwit_core::idempotency::{Receipt, ReceiptKey, Write};
use minitwit_core::store::{ByName, StoreError, StoreResult};
use minitwit_core::{MessageId, MessageText, UserId};
use sqlx::{PgExecutor, PgPool};

/// The conflict clause of [`claim_sql!`]: an expired receipt is replaced.
macro_rules! claim_conflict_sql {
    () => {
        " ON CONFLICT (scope, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
             body = EXCLUDED.body, recorded_at = EXCLUDED.recorded_at
         WHERE receipts.recorded_at < $7
         RETURNING 1"
    };
}

/// Claims a key: inserts the receipt ($1 to $6, as `VALUES` or from the `SELECT` given,
/// which may yield no row), or replaces one recorded before $7 (expired); returns a row
/// only if it did. Waits for a statement that holds the key uncommitted.
macro_rules! claim_sql {
    () => {
        claim_sql!("VALUES ($1, $2, $3, $4, $5, $6)")
    };
    ($rows:literal) => {
        concat!(
            "INSERT INTO receipts (scope, key, fingerprint, status, body, recorded_at) ",
            $rows,
            claim_conflict_sql!()
        )
    };
}

/// One statement claiming the key and, only if it did, inserting what `$insert`
/// selects (its values from $8 on); it returns 1 if it claimed the key, else 0 (and no
/// message id: see [`apply_once`]). Being one statement, the claim and the write commit
/// together or not at all, in one round trip.
macro_rules! keyed {
    ($insert:literal) => {
        keyed!($insert, "")
    };
    ($insert:literal, $tail:literal) => {
        concat!(
            "WITH claim AS (",
            claim_sql!(),
            "), applied AS (",
            $insert,
            " WHERE EXISTS (SELECT 1 FROM claim) ",
            $tail,
            ") SELECT count(*), NULL::BIGINT FROM claim"
        )
    };
}

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

/// `write` and its receipt in one statement, unless a live receipt holds the key: then
/// that receipt, and nothing written. With it, the id of the message a post stored.
pub(crate) async fn apply_once(
    pool: &PgPool,
    key: &ReceiptKey,
    receipt: &Receipt,
    since: i64,
    write: Write,
) -> StoreResult<(Option<Receipt>, Option<MessageId>)> {
    let status = stored_status(receipt)?;
    // Each statement returns whether it claimed the key (1 or 0) and, for a post, the new
    // message's id.
    let claim = |sql| {
        sqlx::query_as::<_, (i64, Option<i64>)>(sql)
            .bind(&key.scope)
            .bind(&key.key)
            .bind(&receipt.fingerprint[..])
            .bind(status)
            .bind(&receipt.body)
            .bind(receipt.recorded_at)
            .bind(since)
    };
    let (claimed, posted) = match write {
        Write::Register(user) => {
            claim(keyed!("INSERT INTO users (username, email, pw_hash) SELECT $8, $9, $10"))
                .bind(user.username.as_ref().to_owned())
                .bind(user.email.as_ref().to_owned())
                .bind(user.pw_hash)
                .fetch_one(pool)
                .await
                .map_err(backend_error)
        }
        Write::Post(message) => {
            let author = message.author_id;
            let (claimed, posted) = claim(concat!(
                "WITH claim AS (",
                claim_sql!(),
                "), applied AS (INSERT INTO messages (author_id, text, pub_date) ",
                "SELECT $8, $9, $10 WHERE EXISTS (SELECT 1 FROM claim) RETURNING id) ",
                "SELECT (SELECT count(*) FROM claim), (SELECT id FROM applied)"
            ))
            .bind(author.0)
            .bind(message.text.as_ref().to_owned())
            .bind(message.pub_date)
            .fetch_one(pool)
            .await
            .map_err(|e| store_error(e, |_| Some(author)))?;
            Ok((claimed, posted))
        }
        Write::Follow { follower, followee } => claim(keyed!(
            "INSERT INTO follows (follower_id, followee_id) SELECT $8, $9",
            "ON CONFLICT DO NOTHING"
        ))
        .bind(follower.0)
        .bind(followee.0)
        .fetch_one(pool)
        .await
        .map_err(|e| {
            store_error(e, |fk| Some(if fk == FOLLOWEE_FK { followee } else { follower }))
        }),
        Write::Unfollow { follower, followee } => claim(concat!(
            "WITH claim AS (",
            claim_sql!(),
            "), applied AS (DELETE FROM follows WHERE follower_id = $8 AND followee_id = $9 ",
            "AND EXISTS (SELECT 1 FROM claim)) SELECT count(*), NULL::BIGINT FROM claim"
        ))
        .bind(follower.0)
        .bind(followee.0)
        .fetch_one(pool)
        .await
        .map_err(backend_error),
    }?;
    let replayed = if claimed == 1 { None } else { Some(receipt_now(pool, key).await?) };
    Ok((replayed, posted.map(MessageId)))
}

/// A keyed post by the user named `$8` (`$9` text, `$10` date) in one statement: the
/// user found, the key claimed only if they are enabled, the message stored only if the
/// key was claimed. No row when nobody has the name; else the user's `disabled` flag,
/// their id, whether the key was claimed (1 or 0) and the new message's id.
const POST_ONCE_BY_NAME: &str = concat!(
    "WITH author AS (SELECT id, disabled FROM users WHERE username = $8), ",
    "claim AS (",
    claim_sql!("SELECT $1, $2, $3, $4, $5, $6 FROM author WHERE NOT disabled"),
    "), applied AS (INSERT INTO messages (author_id, text, pub_date) ",
    "SELECT id, $9, $10 FROM author WHERE EXISTS (SELECT 1 FROM claim) RETURNING id) ",
    "SELECT disabled, id, (SELECT count(*) FROM claim), (SELECT id FROM applied) FROM author"
);

/// A post by the user named `username`, found in the same statement, applied once under
/// `key` (see [`apply_once`]), unless nobody has that name or the user is disabled: then
/// nothing is written and no receipt kept. As [`apply_once`], with the new message's
/// author.
pub(crate) async fn apply_once_by_name(
    pool: &PgPool,
    key: &ReceiptKey,
    receipt: &Receipt,
    since: i64,
    username: &str,
    text: &MessageText,
    pub_date: i64,
) -> StoreResult<ByName<(Option<Receipt>, Option<(MessageId, UserId)>)>> {
    let row = sqlx::query_as::<_, (bool, i64, i64, Option<i64>)>(POST_ONCE_BY_NAME)
        .bind(&key.scope)
        .bind(&key.key)
        .bind(&receipt.fingerprint[..])
        .bind(stored_status(receipt)?)
        .bind(&receipt.body)
        .bind(receipt.recorded_at)
        .bind(since)
        .bind(username)
        .bind(text.as_ref())
        .bind(pub_date)
        .fetch_optional(pool)
        .await;
    // The rest of the row: the author, whether the statement claimed the key (1: this
    // call posted; 0: an earlier call holds it, and its receipt answers) and the post.
    let found = found_by_name(row.map(|row| {
        row.map(|(disabled, author, claimed, posted)| (disabled, (author, claimed, posted)))
    }))?;
    let replayed = match found {
        ByName::Done((_, claimed, _)) if claimed != 1 => Some(receipt_now(pool, key).await?),
        _ => None,
    };
    Ok(found
        .map(|(author, _, posted)| (replayed, posted.map(|id| (MessageId(id), UserId(author))))))
}

/// A receipt's status as stored (`SMALLINT`).
fn stored_status(receipt: &Receipt) -> StoreResult<i16> {
    i16::try_from(receipt.status)
        .map_err(|_| StoreError::Backend(format!("status {} out of range", receipt.status)))
}

/// The receipt holding `key` now (committed by the statement the claim waited for).
async fn receipt_now(pool: &PgPool, key: &ReceiptKey) -> StoreResult<Receipt> {
    receipt(pool, key, i64::MIN)
        .await?
        .ok_or_else(|| StoreError::Backend("a claimed receipt vanished".into()))
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
