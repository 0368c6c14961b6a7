//! Keyed writes' receipts (see `minitwit_core::idempotency`): one statement inserts the
//! receipt, claiming the key, and the write with it (a data-modifying `WITH`), so both
//! commit together in one round trip. A concurrent statement with the same key (another
//! request, another replica) waits on the receipt's row until the first ends: if it
//! committed, the waiter finds its receipt and writes nothing; if it failed, the waiter
//! claims the key itself. Posts by name and follows by names claim their keys in their
//! own statements (`messages`, `follows`), alone ([`claim_sql!`]) or many at once
//! ([`claim_all_sql!`], [`Claims`]). Each of these statements also records the
//! simulator's `latest` noted for it (see `latest`).

use crate::error::{FOLLOWEE_FK, backend_error, store_error};
use crate::latest::{Carried, LatestWrites, with_latest};
use crate::rows::sql_limit;
use minitwit_core::MessageId;
use minitwit_core::idempotency::{Once, Receipt, ReceiptKey, Write};
use minitwit_core::store::{StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgExecutor, PgPool, Postgres};
use std::sync::Arc;

/// The conflict clause of [`claim_sql!`] and [`claim_all_sql!`]: a receipt recorded
/// before $7 (expired) is replaced; the row claimed is returned as `$returning`.
macro_rules! claim_conflict_sql {
    ($returning:literal) => {
        concat!(
            " ON CONFLICT (scope, key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
                 body = EXCLUDED.body, recorded_at = EXCLUDED.recorded_at
             WHERE receipts.recorded_at < $7
             RETURNING ",
            $returning
        )
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
            $crate::receipts::claim_conflict_sql!("1")
        )
    };
}
pub(crate) use claim_sql;

/// Claims the keys of many writes at once: inserts the receipts of `$source` (a `FROM`
/// item with the columns `scope`, `key`, `fingerprint`, `status`, `body` and
/// `recorded_at`, and its `WHERE`), in the order of their keys, so that two batches
/// claiming the same keys never wait on each other in a circle; or replaces receipts
/// recorded before $7. Returns the `scope` and `key` of each key it claimed. Waits for a
/// statement that holds one of the keys uncommitted.
macro_rules! claim_all_sql {
    ($source:literal) => {
        concat!(
            "INSERT INTO receipts (scope, key, fingerprint, status, body, recorded_at)
             SELECT scope, key, fingerprint, status, body, recorded_at FROM ",
            $source,
            " ORDER BY scope, key",
            $crate::receipts::claim_conflict_sql!("scope, key")
        )
    };
}
pub(crate) use {claim_all_sql, claim_conflict_sql};

/// A batch's writes as rows of the `FROM` item `$name`: the write's own arrays
/// (`$arrays`, named `$columns`), then its claim's, as [`Claims`] binds them to $1 to $6
/// (`scope`, `key`, `fingerprint`, `status`, `body`, `recorded_at`, all NULL without a
/// key), then `place`, the write's place in the batch from 1.
macro_rules! batch_rows_sql {
    ($arrays:literal, $name:literal, $columns:literal) => {
        concat!(
            "unnest(",
            $arrays,
            ", $1::TEXT[], $2::TEXT[], $3::BYTEA[], $4::SMALLINT[], $5::BYTEA[], $6::BIGINT[])
             WITH ORDINALITY AS ",
            $name,
            "(",
            $columns,
            ", scope, key, fingerprint, status, body, recorded_at, place)"
        )
    };
}
pub(crate) use batch_rows_sql;

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

/// A key to claim for a write that waits in a batch: an owned [`Once`], its status as
/// stored.
pub(crate) struct Claim {
    key: ReceiptKey,
    receipt: Receipt,
    status: i16,
    since: i64,
}

impl Claim {
    /// `once`, owned; refused if its status cannot be stored.
    pub(crate) fn of(once: Once<'_>) -> StoreResult<Self> {
        Ok(Self {
            key: once.key.clone(),
            receipt: once.receipt.clone(),
            status: stored_status(once.receipt)?,
            since: once.since,
        })
    }

    /// The claim, borrowed.
    pub(crate) fn once(&self) -> Once<'_> {
        Once { key: &self.key, receipt: &self.receipt, since: self.since }
    }
}

/// The claims of a batch's writes as the arrays its statement binds to $1 to $6 (see
/// [`batch_rows_sql!`]), one element per write, NULL for a write without a key; and as $7
/// the oldest recording time in force among them, so that a receipt expired for one
/// claim by a moment is still in force for all.
pub(crate) struct Claims<'a> {
    scopes: Vec<Option<&'a str>>,
    keys: Vec<Option<&'a str>>,
    fingerprints: Vec<Option<&'a [u8]>>,
    statuses: Vec<Option<i16>>,
    bodies: Vec<Option<&'a [u8]>>,
    recorded_at: Vec<Option<i64>>,
    since: Option<i64>,
}

impl<'a> Claims<'a> {
    /// The claims of writes, in order.
    pub(crate) fn of(claims: impl ExactSizeIterator<Item = Option<&'a Claim>>) -> Self {
        let n = claims.len();
        let mut all = Self {
            scopes: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            fingerprints: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            since: None,
        };
        for claim in claims {
            all.scopes.push(claim.map(|c| c.key.scope.as_str()));
            all.keys.push(claim.map(|c| c.key.key.as_str()));
            all.fingerprints.push(claim.map(|c| &c.receipt.fingerprint[..]));
            all.statuses.push(claim.map(|c| c.status));
            all.bodies.push(claim.map(|c| c.receipt.body.as_slice()));
            all.recorded_at.push(claim.map(|c| c.receipt.recorded_at));
            if let Some(claim) = claim {
                all.since = Some(all.since.map_or(claim.since, |since| since.min(claim.since)));
            }
        }
        all
    }

    /// `query` with the claims bound to $1 to $7.
    pub(crate) fn bind<O>(
        self,
        query: QueryAs<'a, Postgres, O, PgArguments>,
    ) -> QueryAs<'a, Postgres, O, PgArguments> {
        query
            .bind(self.scopes)
            .bind(self.keys)
            .bind(self.fingerprints)
            .bind(self.statuses)
            .bind(self.bodies)
            .bind(self.recorded_at)
            .bind(self.since)
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

/// `sql`, whose `$1` to `$7` claim a key (see [`claim_sql!`]), with `once`'s key, receipt
/// and the oldest recording time in force bound to them (all null without a key), and
/// whose `$8` records the `latest` carried (see [`with_latest!`]).
pub(crate) fn claiming<'q, O>(
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
pub(crate) async fn receipt_now(pool: &PgPool, key: &ReceiptKey) -> StoreResult<Receipt> {
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
