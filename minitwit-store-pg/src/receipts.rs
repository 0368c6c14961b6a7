//! Keyed writes' receipts (see `minitwit_core::idempotency`): one statement inserts the
//! receipt, claiming the key, and the write with it (a data-modifying `WITH`), so both
//! commit together in one round trip. A concurrent statement with the same key (another
//! request, another replica) waits on the receipt's row until the first ends: if it
//! committed, the waiter finds its receipt and writes nothing; if it failed, the waiter
//! claims the key itself. A follow by names takes the same statement with or without a
//! key (the claim then selects nothing). Each of these statements also records the
//! simulator's `latest` noted for it (see `latest`).

use crate::error::{FOLLOWEE_FK, backend_error, found_by_name, store_error};
use crate::latest::{Carried, LatestWrites, with_latest};
use crate::rows::sql_limit;
use minitwit_core::idempotency::{FollowChange, Once, Receipt, ReceiptKey, Write};
use minitwit_core::model::Follow;
use minitwit_core::store::{ByName, StoreError, StoreResult};
use minitwit_core::{MessageId, MessageText, UserId};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgExecutor, PgPool, Postgres};
use std::sync::Arc;

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
/// selects (its values from $9 on); it returns 1 if it claimed the key, else 0 (and no
/// message id: see [`apply_once`]). Being one statement, the claim and the write commit
/// together or not at all, in one round trip.
macro_rules! keyed {
    ($insert:literal) => {
        keyed!($insert, "")
    };
    ($insert:literal, $tail:literal) => {
        concat!(
            with_latest!("$8"),
            "claim AS (",
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
    latest: &Arc<LatestWrites>,
    once: Once<'_>,
    write: &Write,
) -> StoreResult<(Option<Receipt>, Option<MessageId>)> {
    // Each statement returns whether it claimed the key (1 or 0) and, for a post, the new
    // message's id.
    let carried = latest.carry(pool);
    let claim = |sql| claiming::<(i64, Option<i64>)>(sql, Some(once), &carried);
    let applied = match *write {
        Write::Register(ref user) => {
            claim(keyed!("INSERT INTO users (username, email, pw_hash) SELECT $9, $10, $11"))?
                .bind(user.username.as_ref())
                .bind(user.email.as_ref())
                .bind(user.pw_hash.as_str())
                .fetch_one(pool)
                .await
                .map_err(backend_error)
        }
        Write::Post(ref message) => {
            let author = message.author_id;
            let (claimed, posted) = claim(concat!(
                with_latest!("$8"),
                "claim AS (",
                claim_sql!(),
                "), applied AS (INSERT INTO messages (author_id, text, pub_date) ",
                "SELECT $9, $10, $11 WHERE EXISTS (SELECT 1 FROM claim) RETURNING id) ",
                "SELECT (SELECT count(*) FROM claim), (SELECT id FROM applied)"
            ))?
            .bind(author.0)
            .bind(message.text.as_ref())
            .bind(message.pub_date)
            .fetch_one(pool)
            .await
            .map_err(|e| store_error(e, |_| Some(author)))?;
            Ok((claimed, posted))
        }
        Write::Follow { follower, followee } => claim(keyed!(
            "INSERT INTO follows (follower_id, followee_id) SELECT $9, $10",
            "ON CONFLICT DO NOTHING"
        ))?
        .bind(follower.0)
        .bind(followee.0)
        .fetch_one(pool)
        .await
        .map_err(|e| {
            store_error(e, |fk| Some(if fk == FOLLOWEE_FK { followee } else { follower }))
        }),
        Write::Unfollow { follower, followee } => claim(concat!(
            with_latest!("$8"),
            "claim AS (",
            claim_sql!(),
            "), applied AS (DELETE FROM follows WHERE follower_id = $9 AND followee_id = $10 ",
            "AND EXISTS (SELECT 1 FROM claim)) SELECT count(*), NULL::BIGINT FROM claim"
        ))?
        .bind(follower.0)
        .bind(followee.0)
        .fetch_one(pool)
        .await
        .map_err(backend_error),
    };
    carried.done(&applied);
    let (claimed, posted) = applied?;
    let replayed = if claimed == 1 { None } else { Some(receipt_now(pool, once.key).await?) };
    Ok((replayed, posted.map(MessageId)))
}

/// A keyed post by the user named `$9` (`$10` text, `$11` date) in one statement: the
/// user found, the key claimed only if they are enabled, the message stored only if the
/// key was claimed. No row when nobody has the name; else the user's `disabled` flag,
/// their id, whether the key was claimed (1 or 0) and the new message's id.
const POST_ONCE_BY_NAME: &str = concat!(
    with_latest!("$8"),
    "author AS (SELECT id, disabled FROM users WHERE username = $9), ",
    "claim AS (",
    claim_sql!("SELECT $1, $2, $3, $4, $5, $6 FROM author WHERE NOT disabled"),
    "), applied AS (INSERT INTO messages (author_id, text, pub_date) ",
    "SELECT id, $10, $11 FROM author WHERE EXISTS (SELECT 1 FROM claim) RETURNING id) ",
    "SELECT disabled, id, (SELECT count(*) FROM claim), (SELECT id FROM applied) FROM author"
);

/// A post by the user named `username`, found in the same statement, applied once under
/// `key` (see [`apply_once`]), unless nobody has that name or the user is disabled: then
/// nothing is written and no receipt kept. As [`apply_once`], with the new message's
/// author.
pub(crate) async fn apply_once_by_name(
    pool: &PgPool,
    latest: &Arc<LatestWrites>,
    once: Once<'_>,
    username: &str,
    text: &MessageText,
    pub_date: i64,
) -> StoreResult<ByName<(Option<Receipt>, Option<(MessageId, UserId)>)>> {
    let carried = latest.carry(pool);
    let row = claiming::<(bool, i64, i64, Option<i64>)>(POST_ONCE_BY_NAME, Some(once), &carried)?
        .bind(username)
        .bind(text.as_ref())
        .bind(pub_date)
        .fetch_optional(pool)
        .await;
    carried.done(&row);
    // The rest of the row: the author, whether the statement claimed the key (1: this
    // call posted; 0: an earlier call holds it, and its receipt answers) and the post.
    let found = found_by_name(row.map(|row| {
        row.map(|(disabled, author, claimed, posted)| (disabled, (author, claimed, posted)))
    }))?;
    let replayed = match found {
        ByName::Done((_, claimed, _)) if claimed != 1 => Some(receipt_now(pool, once.key).await?),
        _ => None,
    };
    Ok(found
        .map(|(author, _, posted)| (replayed, posted.map(|id| (MessageId(id), UserId(author))))))
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

/// A follow or an unfollow (`change`) between the users named `follower` and `followee`,
/// found in the same statement, applied once under `once`'s key if given (see
/// [`apply_once`]), else as it is; unless either name is nobody's: then nothing is
/// written and no receipt kept. With the receipt that answers instead, the pair, which
/// changed unless a receipt answers.
pub(crate) async fn change_follow_by_names(
    pool: &PgPool,
    latest: &Arc<LatestWrites>,
    follower: &str,
    followee: &str,
    change: FollowChange,
    once: Option<Once<'_>>,
) -> StoreResult<ByName<(Option<Receipt>, Follow)>> {
    let sql = match change {
        FollowChange::Follow => FOLLOW_BY_NAMES,
        FollowChange::Unfollow => UNFOLLOW_BY_NAMES,
    };
    let carried = latest.carry(pool);
    let row = claiming::<(i64, i64, i64)>(sql, once, &carried)?
        .bind(follower)
        .bind(followee)
        .fetch_optional(pool)
        .await;
    carried.done(&row);
    // Following has no rule for disabled users: a pair found is never refused.
    let found = found_by_name(row.map(|row| row.map(|pair| (false, pair))))?;
    let replayed = match (&found, once) {
        // Keyed, and the key was not claimed: an earlier call holds it.
        (ByName::Done((_, _, 0)), Some(once)) => Some(receipt_now(pool, once.key).await?),
        _ => None,
    };
    Ok(found.map(|(follower, followee, _)| {
        (replayed, Follow { follower: UserId(follower), followee: UserId(followee) })
    }))
}

/// `sql`, whose `$1` to `$7` claim a key (see [`claim_sql!`]), with `once`'s key, receipt
/// and the oldest recording time in force bound to them (all null without a key), and
/// whose `$8` records the `latest` carried (see [`with_latest!`]).
fn claiming<'q, O>(
    sql: &'static str,
    once: Option<Once<'q>>,
    carried: &Carried,
) -> StoreResult<QueryAs<'q, Postgres, O, PgArguments>>
where
    O: for<'r> FromRow<'r, PgRow>,
{
    let status = once.map(|once| stored_status(once.receipt)).transpose()?;
    Ok(sqlx::query_as(sql)
        .bind(once.map(|once| once.key.scope.as_str()))
        .bind(once.map(|once| once.key.key.as_str()))
        .bind(once.map(|once| &once.receipt.fingerprint[..]))
        .bind(status)
        .bind(once.map(|once| once.receipt.body.as_slice()))
        .bind(once.map(|once| once.receipt.recorded_at))
        .bind(once.map(|once| once.since))
        .bind(carried.bound()))
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
