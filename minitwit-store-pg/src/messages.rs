//! Messages: posting (by the author's id, or by their name in the statement that stores
//! the message), look-up by id, flagging, and the administrative listings (the
//! timelines are `timeline`'s).

use crate::error::{backend_error, found_by_name, store_error};
use crate::latest::{LatestWrites, with_latest};
use crate::rows::sql_limit;
use crate::rows::{self, MessageRow, into_all, message_columns};
use minitwit_core::model::NewMessage;
use minitwit_core::store::{ByName, StoreError, StoreResult};
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

/// Stores a message of the user named `$1` (`$2` text, `$3` date) unless that user is
/// disabled, in one statement that also records the `latest` carried in `$4` (see
/// `latest`); no row when nobody has the name, else the user's `disabled` flag, their id
/// and the new message's id (NULL when disabled: nothing was written).
const INSERT_BY_NAME: &str = concat!(
    with_latest!("$4"),
    "author AS (SELECT id, disabled FROM users WHERE username = $1),
     m AS (
         INSERT INTO messages (author_id, text, pub_date)
         SELECT id, $2, $3 FROM author WHERE NOT disabled
         RETURNING id)
     SELECT disabled, id, (SELECT id FROM m) FROM author"
);

/// A post by name: its author's name, its text and its date.
pub(crate) struct Post {
    pub(crate) username: String,
    pub(crate) text: MessageText,
    pub(crate) pub_date: i64,
}

/// What a post by name did: nothing, for nobody or a disabled user; else the new
/// message's id and its author's.
pub(crate) type Posted = ByName<(MessageId, UserId)>;

/// Stores `post`, its author found in the same statement, unless nobody has that name or
/// the user is disabled.
pub(crate) async fn add_by_name(
    pool: &PgPool,
    latest: &Arc<LatestWrites>,
    post: &Post,
) -> StoreResult<Posted> {
    let carried = latest.carry(pool);
    let row = sqlx::query_as::<_, (bool, i64, Option<i64>)>(INSERT_BY_NAME)
        .bind(&post.username)
        .bind(post.text.as_ref())
        .bind(post.pub_date)
        .bind(carried.bound())
        .fetch_optional(pool)
        .await;
    carried.done(&row);
    let found =
        found_by_name(row.map(|row| row.map(|(disabled, author, id)| (disabled, (author, id)))))?;
    found.try_map(|(author, id)| {
        id.map(|id| (MessageId(id), UserId(author)))
            .ok_or_else(|| StoreError::Backend("a post by an enabled user stored nothing".into()))
    })
}

/// [`INSERT_BY_NAME`] for many posts (`$1` names, `$2` texts, `$3` dates; `$4` the
/// `latest` carried): one row for each post whose author exists, with its place among
/// the posts (from 1), the author's `disabled` flag and id, and the new message's id
/// (NULL when disabled). Ids are drawn before the insert so that each post learns its
/// own, however alike the posts.
const INSERT_ALL_BY_NAME: &str = concat!(
    with_latest!("$4"),
    "posts AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
             WITH ORDINALITY AS p(username, text, pub_date, place)),
     found AS (
         SELECT p.place, p.text, p.pub_date, u.id AS author, u.disabled
         FROM posts p JOIN users u ON u.username = p.username),
     fresh AS MATERIALIZED (
         SELECT place, author, text, pub_date,
                nextval(pg_get_serial_sequence('messages', 'id')::regclass) AS id
         FROM found WHERE NOT disabled ORDER BY place),
     stored AS (
         INSERT INTO messages (id, author_id, text, pub_date)
         SELECT id, author, text, pub_date FROM fresh)
     SELECT found.place, found.disabled, found.author, fresh.id
     FROM found LEFT JOIN fresh USING (place)"
);

/// Stores `posts` in one statement, each as [`add_by_name`] would: each post's outcome,
/// in order. A database's refusal (a user deleted meanwhile, say) stores none of them.
pub(crate) async fn add_all_by_name(
    pool: &PgPool,
    latest: &Arc<LatestWrites>,
    posts: &[&Post],
) -> Result<Vec<Posted>, sqlx::Error> {
    let names: Vec<&str> = posts.iter().map(|post| post.username.as_str()).collect();
    let texts: Vec<&str> = posts.iter().map(|post| post.text.as_ref()).collect();
    let dates: Vec<i64> = posts.iter().map(|post| post.pub_date).collect();
    let carried = latest.carry(pool);
    let rows = sqlx::query_as::<_, (i64, bool, i64, Option<i64>)>(INSERT_ALL_BY_NAME)
        .bind(names)
        .bind(texts)
        .bind(dates)
        .bind(carried.bound())
        .fetch_all(pool)
        .await;
    carried.done(&rows);
    let unexpected = || sqlx::Error::Protocol("a post's row is not as stored".into());
    let mut outcomes: Vec<Posted> = posts.iter().map(|_| ByName::UnknownUser).collect();
    for (place, disabled, author, id) in rows? {
        let outcome = match (disabled, id) {
            (true, _) => ByName::Disabled,
            (false, Some(id)) => ByName::Done((MessageId(id), UserId(author))),
            (false, None) => return Err(unexpected()),
        };
        let slot = usize::try_from(place - 1).ok().and_then(|at| outcomes.get_mut(at));
        *slot.ok_or_else(unexpected)? = outcome;
    }
    Ok(outcomes)
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
