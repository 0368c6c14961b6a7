//! Errors: [`PgError`] for setting a store up, and [`store_error`], the one place where
//! database errors become the domain's [`StoreError`]s.

use minitwit_core::UserId;
use minitwit_core::store::{ByName, StoreError, StoreResult};
use sqlx::error::ErrorKind;

/// Why a [`crate::PgStore`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database URL cannot be parsed.
    #[error("invalid PostgreSQL URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// No connection could be made: the server is down or unreachable, or it refused
    /// the credentials or the database name.
    #[error("cannot connect to PostgreSQL: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// Applying the migrations failed (or the database holds a newer, unknown one).
    #[error("migrating the database failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
}

/// The unique constraint on usernames (named in the migrations).
const USERNAME_UNIQUE: &str = "users_username_key";
/// The foreign key from a follow to its followee; the follower's is the other one.
pub(crate) const FOLLOWEE_FK: &str = "follows_followee_id_fkey";

/// Maps a database error to the domain's. `missing_user` names the user that a
/// violated foreign key (given by constraint name) refers to; `None` when the caller
/// cannot tell, which is reported as a backend failure.
pub(crate) fn store_error(
    err: sqlx::Error,
    missing_user: impl FnOnce(&str) -> Option<UserId>,
) -> StoreError {
    let sqlx::Error::Database(db) = &err else {
        return connection_error(err);
    };
    let constraint = db.constraint().unwrap_or_default();
    match db.kind() {
        ErrorKind::UniqueViolation if constraint == USERNAME_UNIQUE => StoreError::UsernameTaken,
        ErrorKind::UniqueViolation => StoreError::Conflict(db.message().to_owned()),
        ErrorKind::ForeignKeyViolation => match missing_user(constraint) {
            Some(id) => StoreError::UnknownUser(id),
            None => StoreError::Backend(db.message().to_owned()),
        },
        _ if is_unavailable_state(db.code().as_deref().unwrap_or_default()) => {
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Backend(err.to_string()),
    }
}

/// Whether `err` is a violated foreign key: a row the statement read (a user) was
/// deleted by a transaction that committed while it ran.
fn is_missing_reference(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation)
}

/// What a statement addressed to a user by name found, from its row (whether the user is
/// disabled, then the rest): nobody, a disabled user, or the rest for the caller to read.
/// An author deleted while the statement ran counts as nobody (the statement left
/// nothing).
pub(crate) fn found_by_name<T>(
    row: Result<Option<(bool, T)>, sqlx::Error>,
) -> StoreResult<ByName<T>> {
    match row {
        Ok(None) => Ok(ByName::UnknownUser),
        Ok(Some((true, _))) => Ok(ByName::Disabled),
        Ok(Some((false, rest))) => Ok(ByName::Done(rest)),
        Err(err) if is_missing_reference(&err) => Ok(ByName::UnknownUser),
        Err(err) => Err(backend_error(err)),
    }
}

/// [`store_error`] for statements that violate no foreign key.
pub(crate) fn backend_error(err: sqlx::Error) -> StoreError {
    store_error(err, |_| None)
}

/// Errors outside the database's own answers: connection trouble is "unavailable".
fn connection_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(err.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// SQLSTATEs that mean "try again later": connection exceptions (class 08), too many
/// connections and other resource shortages (class 53), the server shutting down or
/// starting (57P01–57P03), statements cancelled by `statement_timeout` (57014), and a
/// write reaching a member that is no longer the primary (25006, read-only transaction:
/// a connection opened just before a switch, or a demoted member), which the next
/// connection to the new primary serves.
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "25006")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_states_are_recognised() {
        for code in ["08006", "08001", "53300", "57P01", "57P03", "57014", "25006"] {
            assert!(is_unavailable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "40001", ""] {
            assert!(!is_unavailable_state(code), "{code}");
        }
    }

    #[test]
    fn pool_trouble_is_unavailable() {
        assert!(matches!(backend_error(sqlx::Error::PoolTimedOut), StoreError::Unavailable(_)));
        assert!(matches!(backend_error(sqlx::Error::RowNotFound), StoreError::Backend(_)));
    }
}
