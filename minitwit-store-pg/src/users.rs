//! Users: creation (the unique name is the database's constraint), look-ups, changes, and
//! deletion (messages and follows go with the user through `ON DELETE CASCADE`).

use crate::error::backend_error;
use crate::rows::{self, UserRow, user_columns};
use minitwit_core::model::NewUser;
use minitwit_core::store::StoreResult;
use minitwit_core::{User, UserId};
use sqlx::PgPool;

/// Creates a user under a fresh id.
pub(crate) async fn create(pool: &PgPool, user: NewUser) -> StoreResult<User> {
    let row = sqlx::query_as::<_, UserRow>(concat!(
        "INSERT INTO users (username, email, pw_hash) VALUES ($1, $2, $3) RETURNING ",
        user_columns!()
    ))
    .bind(user.username.as_ref())
    .bind(user.email.as_ref())
    .bind(&user.pw_hash)
    .fetch_one(pool)
    .await
    .map_err(backend_error)?;
    Ok(row.into())
}

/// The user with this id.
pub(crate) async fn by_id(pool: &PgPool, id: UserId) -> StoreResult<Option<User>> {
    let row = sqlx::query_as::<_, UserRow>(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    Ok(row.map(User::from))
}

/// The user with exactly this name.
pub(crate) async fn by_name(pool: &PgPool, username: &str) -> StoreResult<Option<User>> {
    let row = sqlx::query_as::<_, UserRow>(concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    Ok(row.map(User::from))
}

/// Up to `limit` users with ids above `after`, by id.
pub(crate) async fn after(
    pool: &PgPool,
    after: Option<UserId>,
    limit: usize,
) -> StoreResult<Vec<User>> {
    let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id > $1 ORDER BY id LIMIT $2");
    rows::after::<UserRow, User>(pool, sql, after.map(|id| id.0), limit).await
}

/// Sets a user's password hash; whether the user exists.
pub(crate) async fn set_password_hash(
    pool: &PgPool,
    id: UserId,
    pw_hash: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE users SET pw_hash = $2 WHERE id = $1")
        .bind(id.0)
        .bind(pw_hash)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected() > 0)
}

/// Disables or enables a user; whether the user exists.
pub(crate) async fn set_disabled(pool: &PgPool, id: UserId, disabled: bool) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
        .bind(id.0)
        .bind(disabled)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected() > 0)
}

/// The user's session generation (0 until first bumped, and for unknown users).
pub(crate) async fn session_generation(pool: &PgPool, id: UserId) -> StoreResult<i64> {
    let generation: Option<i64> =
        sqlx::query_scalar("SELECT generation FROM session_generations WHERE user_id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await
            .map_err(backend_error)?;
    Ok(generation.unwrap_or(0))
}

/// A user row with the user's session generation.
#[derive(sqlx::FromRow)]
struct UserGenerationRow {
    #[sqlx(flatten)]
    user: UserRow,
    generation: i64,
}

/// The user with this id and their session generation (0 until first bumped), in one
/// statement: what checking a session needs.
pub(crate) async fn with_generation(pool: &PgPool, id: UserId) -> StoreResult<Option<(User, i64)>> {
    let row = sqlx::query_as::<_, UserGenerationRow>(concat!(
        "SELECT ",
        user_columns!(),
        ", COALESCE((SELECT generation FROM session_generations WHERE user_id = users.id), 0)
           AS generation
         FROM users WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(pool)
    .await
    .map_err(backend_error)?;
    Ok(row.map(|row| (User::from(row.user), row.generation)))
}

/// Ends every session of a user; whether the user exists.
pub(crate) async fn bump_session_generation(pool: &PgPool, id: UserId) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO session_generations (user_id, generation) \
         SELECT id, 1 FROM users WHERE id = $1 \
         ON CONFLICT (user_id) DO UPDATE \
         SET generation = session_generations.generation + 1",
    )
    .bind(id.0)
    .execute(pool)
    .await
    .map_err(backend_error)?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a user with their messages and follows; whether the user existed.
pub(crate) async fn delete(pool: &PgPool, id: UserId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(done.rows_affected() > 0)
}
