//! `import`: a whole [`ImportBatch`] in one transaction, written with `UNNEST` batch
//! inserts of a few thousand rows per statement, after which the id sequences continue
//! above the largest imported ids; its undo, `remove`; and `end`, which closes an
//! import (see `minitwit_core::transfer`).

use crate::error::backend_error;
use minitwit_core::UserId;
use minitwit_core::model::ImportBatch;
use minitwit_core::store::{IMPORT_MARK, StoreError, StoreResult};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashSet;

/// Rows per `INSERT … SELECT FROM UNNEST(…)` statement.
const CHUNK: usize = 10_000;

/// Writes `batch` all or nothing.
pub(crate) async fn run(pool: &PgPool, batch: ImportBatch) -> StoreResult<()> {
    let mut tx = bulk_transaction(pool).await?;
    insert_users(&mut tx, &batch).await?;
    if let Some(missing) = first_missing_user(&mut tx, &batch).await? {
        return Err(StoreError::UnknownUser(missing));
    }
    insert_messages(&mut tx, &batch).await?;
    insert_follows(&mut tx, &batch).await?;
    let max_user = batch.users.iter().map(|u| u.id.0).max();
    let max_message = batch.messages.iter().map(|m| m.id.0).max();
    continue_sequence(&mut tx, "users", max_user).await?;
    continue_sequence(&mut tx, "messages", max_message).await?;
    tx.commit().await.map_err(backend_error)
}

async fn insert_users(
    tx: &mut Transaction<'static, Postgres>,
    batch: &ImportBatch,
) -> StoreResult<()> {
    for chunk in batch.users.chunks(CHUNK) {
        sqlx::query(
            "INSERT INTO users (id, username, email, pw_hash, disabled)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BOOLEAN[])",
        )
        .bind(chunk.iter().map(|u| u.id.0).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.username.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.email.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.pw_hash.as_str()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|u| u.disabled).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(backend_error)?;
    }
    Ok(())
}

/// The first user id, in batch order (message authors, then follow pairs), that
/// neither the store nor the batch holds.
async fn first_missing_user(
    tx: &mut Transaction<'static, Postgres>,
    batch: &ImportBatch,
) -> StoreResult<Option<UserId>> {
    let mut seen = HashSet::new();
    let referenced: Vec<i64> = batch
        .messages
        .iter()
        .map(|m| m.author_id.0)
        .chain(batch.follows.iter().flat_map(|f| [f.follower.0, f.followee.0]))
        .filter(|id| seen.insert(*id))
        .collect();
    sqlx::query_scalar::<_, i64>(
        "SELECT r.id FROM UNNEST($1::BIGINT[]) WITH ORDINALITY AS r (id, n)
         WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = r.id)
         ORDER BY r.n LIMIT 1",
    )
    .bind(referenced)
    .fetch_optional(&mut **tx)
    .await
    .map(|missing| missing.map(UserId))
    .map_err(backend_error)
}

async fn insert_messages(
    tx: &mut Transaction<'static, Postgres>,
    batch: &ImportBatch,
) -> StoreResult<()> {
    for chunk in batch.messages.chunks(CHUNK) {
        let ids: Vec<i64> = chunk.iter().map(|m| m.id.0).collect();
        let authors: Vec<i64> = chunk.iter().map(|m| m.author_id.0).collect();
        let dates: Vec<i64> = chunk.iter().map(|m| m.pub_date).collect();
        sqlx::query(
            "INSERT INTO messages (id, author_id, text, pub_date, flagged)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BOOLEAN[])",
        )
        .bind(&ids)
        .bind(&authors)
        .bind(chunk.iter().map(|m| m.text.as_str()).collect::<Vec<_>>())
        .bind(&dates)
        .bind(chunk.iter().map(|m| m.flagged).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(backend_error)?;
        sqlx::query("SELECT home_spread($1, $2, $3)")
            .bind(&ids)
            .bind(&authors)
            .bind(&dates)
            .execute(&mut **tx)
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// Pairs the store holds already are kept, as `follow` does.
async fn insert_follows(
    tx: &mut Transaction<'static, Postgres>,
    batch: &ImportBatch,
) -> StoreResult<()> {
    for chunk in batch.follows.chunks(CHUNK) {
        let begun = sqlx::query_as::<_, (i64, i64)>(
            "INSERT INTO follows (follower_id, followee_id)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]) ON CONFLICT DO NOTHING
             RETURNING follower_id, followee_id",
        )
        .bind(chunk.iter().map(|f| f.follower.0).collect::<Vec<_>>())
        .bind(chunk.iter().map(|f| f.followee.0).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await
        .map_err(backend_error)?;
        pairs_changed(tx, "SELECT home_add_follows($1, $2)", begun).await?;
    }
    Ok(())
}

/// Hands the follow pairs a bulk statement began or ended to `sql` (`home_add_follows`
/// or `home_remove_follows`), which brings the kept home timelines up to date.
async fn pairs_changed(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    pairs: Vec<(i64, i64)>,
) -> StoreResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let (followers, followees): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
    sqlx::query(sql)
        .bind(followers)
        .bind(followees)
        .execute(&mut **tx)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// Moves `table`'s id sequence up to `max_imported` if it is behind, never down:
/// ids are never reused.
async fn continue_sequence(
    tx: &mut Transaction<'static, Postgres>,
    table: &'static str,
    max_imported: Option<i64>,
) -> StoreResult<()> {
    let Some(max_imported) = max_imported else { return Ok(()) };
    sqlx::query(
        "SELECT setval(s::REGCLASS, GREATEST($2, COALESCE(pg_sequence_last_value(s::REGCLASS), 1)))
         FROM pg_get_serial_sequence($1, 'id') AS s",
    )
    .bind(table)
    .bind(max_imported)
    .execute(&mut **tx)
    .await
    .map_err(backend_error)?;
    Ok(())
}

/// Removes the batch's follow pairs, messages and users (their messages and session
/// rows go with them: `ON DELETE CASCADE`) in one transaction. The users' follows are
/// ended first, by a statement of their own, with the users locked so that no follow
/// of theirs can begin meanwhile: in bulk, a follow ended by the cascade would not be
/// taken out of the kept home timelines.
pub(crate) async fn remove(pool: &PgPool, batch: ImportBatch) -> StoreResult<()> {
    let mut tx = bulk_transaction(pool).await?;
    let users: Vec<i64> = batch.users.iter().map(|u| u.id.0).collect();
    sqlx::query("SELECT FROM users WHERE id = ANY($1) FOR UPDATE")
        .bind(&users)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
    let ended = sqlx::query_as::<_, (i64, i64)>(
        "DELETE FROM follows f
         WHERE f.follower_id = ANY($3) OR f.followee_id = ANY($3)
            OR (f.follower_id, f.followee_id) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))
         RETURNING f.follower_id, f.followee_id",
    )
    .bind(batch.follows.iter().map(|f| f.follower.0).collect::<Vec<_>>())
    .bind(batch.follows.iter().map(|f| f.followee.0).collect::<Vec<_>>())
    .bind(&users)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend_error)?;
    pairs_changed(&mut tx, "SELECT home_remove_follows($1, $2)", ended).await?;
    let messages: Vec<i64> = batch.messages.iter().map(|m| m.id.0).collect();
    let by_id = [
        (REMOVE_KEPT_ENTRIES, messages.clone()),
        ("DELETE FROM messages WHERE id = ANY($1)", messages),
        ("DELETE FROM users WHERE id = ANY($1)", users),
    ];
    for (sql, ids) in by_id {
        let ids: Vec<i64> = ids;
        sqlx::query(sql).bind(ids).execute(&mut *tx).await.map_err(backend_error)?;
    }
    tx.commit().await.map_err(backend_error)
}

/// Removes the messages `$1` from the kept home timelines they are in: their author's
/// and their author's followers' (ended follows and deleted users take theirs along).
const REMOVE_KEPT_ENTRIES: &str = "
    DELETE FROM home_entries h USING (
        SELECT m.author_id AS owner_id, m.pub_date, m.id FROM messages m WHERE m.id = ANY($1)
        UNION ALL
        SELECT f.follower_id, m.pub_date, m.id
        FROM messages m JOIN follows f ON f.followee_id = m.author_id
        WHERE m.id = ANY($1)
    ) d
    WHERE h.owner_id = d.owner_id AND h.pub_date = d.pub_date AND h.message_id = d.id";

/// A transaction for writing in bulk: the kept home timelines' row triggers do nothing
/// in it; its statements hand what they wrote to the timelines' set-wise functions
/// (migration `triggers_without_when`), which take no locks (an import runs alone), so
/// a batch of thousands of authors does not fill the server's lock table.
async fn bulk_transaction(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.map_err(backend_error)?;
    sqlx::query("SET LOCAL minitwit.bulk = 'on'").execute(&mut *tx).await.map_err(backend_error)?;
    Ok(tx)
}

/// Records `latest` if given and removes the mark of the import in progress, in one
/// transaction.
pub(crate) async fn end(pool: &PgPool, latest: Option<i64>) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(backend_error)?;
    if let Some(latest) = latest {
        crate::state::replace_latest(&mut tx, latest).await?;
    }
    sqlx::query("DELETE FROM settings WHERE key = $1")
        .bind(IMPORT_MARK)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
    tx.commit().await.map_err(backend_error)
}
