//! Messages: posting (by the author's id, or by their name in the statement that stores
//! the message), look-up by id, flagging, and the administrative listings (the
//! timelines are `timeline`'s).

use crate::batch::{Batched, by_place};
use crate::error::{backend_error, found_by_name, store_error};
use crate::latest::{LatestWrites, with_latest};
use crate::receipts::{Claim, Claims, batch_rows_sql, claim_all_sql, claim_sql, claiming};
use crate::rows::sql_limit;
use crate::rows::{self, MessageRow, into_all, message_columns};
use async_trait::async_trait;
use minitwit_core::model::NewMessage;
use minitwit_core::store::{ByName, StoreResult};
use minitwit_core::{Message, MessageFilter, MessageId, MessageText, UserId};
use sqlx::PgPool;
use std::sync::Arc;

/// Stores a message under a fresh id; an unknown author is the store's `UnknownUser`.
pub(crate) async fn add(pool: &PgPool, message: NewMessage) -> StoreResult<MessageId> {
    let author = message.author_id;
    let id = sqlx::query_scalar::<_, i64>(
        "INSERT INTO messages (author_id, text, pub_date) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(author.0)
    .bind(message.text.as_ref())
    .bind(message.pub_date)
    .fetch_one(pool)
    .await
    .map_err(|e| store_error(e, |_| Some(author)))?;
    Ok(MessageId(id))
}

/// A post by the user named `$9` (`$10` text, `$11` date) in one statement, which also
/// records the `latest` carried in `$8` (see `latest`): the user found; unless they are
/// disabled, the key in `$1` to `$7` claimed if there is one (see `receipts`); the
/// message stored if the key was claimed or there is none. No row when nobody has the
/// name; else the user's `disabled` flag, their id and the new message's id (NULL when
/// nothing was stored).
const POST_BY_NAME: &str = concat!(
    with_latest!("$8"),
    "author AS (SELECT id, disabled FROM users WHERE username = $9), claim AS (",
    claim_sql!(
        "SELECT $1, $2, $3, $4, $5, $6 FROM author WHERE NOT disabled AND $1::TEXT IS NOT NULL"
    ),
    "), applied AS (INSERT INTO messages (author_id, text, pub_date) ",
    "SELECT id, $10, $11 FROM author WHERE NOT disabled ",
    "AND ($1::TEXT IS NULL OR EXISTS (SELECT 1 FROM claim)) RETURNING id) ",
    "SELECT disabled, id, (SELECT id FROM applied) FROM author"
);

/// [`POST_BY_NAME`] for many posts (`$9` names, `$10` texts, `$11` dates; their keys'
/// claims in `$1` to `$7`, see `receipts::Claims`): one row for each post whose author
/// exists, with its place among the posts (from 1), the author's `disabled` flag and id,
/// and the new message's id (NULL when nothing was stored). Ids are drawn before the
/// insert so that each post learns its own, however alike the posts.
const POST_ALL_BY_NAME: &str = concat!(
    with_latest!("$8"),
    "posts AS (SELECT * FROM ",
    batch_rows_sql!("$9::TEXT[], $10::TEXT[], $11::BIGINT[]", "p", "username, text, pub_date"),
    "), found AS (
         SELECT p.*, u.id AS author, u.disabled
         FROM posts p JOIN users u ON u.username = p.username),
     claim AS (",
    claim_all_sql!("found WHERE NOT disabled AND key IS NOT NULL"),
    "), fresh AS MATERIALIZED (
         SELECT place, author, text, pub_date,
                nextval(pg_get_serial_sequence('messages', 'id')::regclass) AS id
         FROM found
         WHERE NOT disabled AND (key IS NULL OR (scope, key) IN (SELECT scope, key FROM claim))
         ORDER BY place),
     stored AS (
         INSERT INTO messages (id, author_id, text, pub_date)
         SELECT id, author, text, pub_date FROM fresh)
     SELECT found.place, found.disabled, found.author, fresh.id
     FROM found LEFT JOIN fresh USING (place)"
);

/// A post by name: its author's name, its text, its date, and the key it is stored once
/// under, if any.
pub(crate) struct Post {
    pub(crate) username: String,
    pub(crate) text: MessageText,
    pub(crate) pub_date: i64,
    pub(crate) claim: Option<Claim>,
}

/// What a post by name did: nothing, for nobody or a disabled user; else the new
/// message's id and its author's, or none when its key was held already (by an earlier
/// post, whose receipt answers).
pub(crate) type Posted = ByName<Option<(MessageId, UserId)>>;

/// What a post by an enabled author stored: its message's id, if any, and the author's.
fn stored(author: i64, id: Option<i64>) -> Option<(MessageId, UserId)> {
    id.map(|id| (MessageId(id), UserId(author)))
}

/// Posts by name are stored together (see `batch`): each, its author found in the same
/// statement, unless nobody has that name or the user is disabled.
#[async_trait]
impl Batched for Post {
    type Outcome = Posted;

    async fn store_one(&self, pool: &PgPool, latest: &Arc<LatestWrites>) -> StoreResult<Posted> {
        let carried = latest.carry(pool);
        let once = self.claim.as_ref().map(Claim::once);
        let row = claiming::<(bool, i64, Option<i64>)>(POST_BY_NAME, once, &carried)?
            .bind(&self.username)
            .bind(self.text.as_ref())
            .bind(self.pub_date)
            .fetch_optional(pool)
            .await;
        carried.done(&row);
        let row = row.map(|row| row.map(|(disabled, author, id)| (disabled, (author, id))));
        Ok(found_by_name(row)?.map(|(author, id)| stored(author, id)))
    }

    async fn store_all(
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
        posts: &[&Self],
    ) -> Result<Vec<Posted>, sqlx::Error> {
        let names: Vec<&str> = posts.iter().map(|post| post.username.as_str()).collect();
        let texts: Vec<&str> = posts.iter().map(|post| post.text.as_ref()).collect();
        let dates: Vec<i64> = posts.iter().map(|post| post.pub_date).collect();
        let claims = Claims::of(posts.iter().map(|post| post.claim.as_ref()));
        let carried = latest.carry(pool);
        let query =
            claims.bind(sqlx::query_as::<_, (i64, bool, i64, Option<i64>)>(POST_ALL_BY_NAME));
        let rows =
            query.bind(carried.bound()).bind(names).bind(texts).bind(dates).fetch_all(pool).await;
        carried.done(&rows);
        let outcomes = rows?.into_iter().map(|(place, disabled, author, id)| {
            let outcome = match disabled {
                true => ByName::Disabled,
                false => ByName::Done(stored(author, id)),
            };
            (place, outcome)
        });
        by_place(posts.len(), outcomes)
    }
}

/// The message with this id, flagged or not.
pub(crate) async fn by_id(pool: &PgPool, id: MessageId) -> StoreResult<Option<Message>> {
    let row = sqlx::query_as::<_, MessageRow>(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    Ok(row.map(Message::from))
}

/// Flags or unflags a message; whether it exists.
pub(crate) async fn set_flagged(pool: &PgPool, id: MessageId, flagged: bool) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE messages SET flagged = $2 WHERE id = $1")
        .bind(id.0)
        .bind(flagged)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected() > 0)
}

/// Messages for administration, newest id first. One statement per case, so that each
/// has a plan using its index.
pub(crate) async fn list(pool: &PgPool, filter: MessageFilter) -> StoreResult<Vec<Message>> {
    let flagged: &[bool] = match filter.flagged {
        Some(true) => &[true],
        Some(false) => &[false],
        None => &[false, true],
    };
    let sql = match filter.author {
        Some(_) => concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id < $1 AND flagged = ANY($2) AND author_id = $4
             ORDER BY id DESC LIMIT $3"
        ),
        None => concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id < $1 AND flagged = ANY($2)
             ORDER BY id DESC LIMIT $3"
        ),
    };
    let query = sqlx::query_as::<_, MessageRow>(sql)
        .bind(filter.before.map_or(i64::MAX, |id| id.0))
        .bind(flagged)
        .bind(sql_limit(filter.limit));
    let query = match filter.author {
        Some(author) => query.bind(author.0),
        None => query,
    };
    let rows = query.fetch_all(pool).await.map_err(backend_error)?;
    Ok(into_all(rows))
}

/// Up to `limit` messages with ids above `after`, by id.
pub(crate) async fn after(
    pool: &PgPool,
    after: Option<MessageId>,
    limit: usize,
) -> StoreResult<Vec<Message>> {
    let sql =
        concat!("SELECT ", message_columns!(), " FROM messages WHERE id > $1 ORDER BY id LIMIT $2");
    rows::after::<MessageRow, Message>(pool, sql, after.map(|id| id.0), limit).await
}
