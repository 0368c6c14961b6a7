//! Which migrations a database still needs, found without applying any: for
//! `minitwit migrate --check` before a rolling deploy, and for readiness checks of a
//! migration step.

use crate::error::PgError;
use crate::store::MIGRATOR;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;

/// The migrations this build has that the database at `url` has not applied
/// (`VERSION DESCRIPTION` each, oldest first). Connects once, within `timeout`, and
/// changes nothing.
pub async fn pending_migrations(url: &str, timeout: Duration) -> Result<Vec<String>, PgError> {
    let options = PgConnectOptions::from_str(url).map_err(PgError::InvalidUrl)?;
    let mut conn = tokio::time::timeout(timeout, PgConnection::connect_with(&options))
        .await
        .map_err(|_| PgError::Unreachable(sqlx::Error::PoolTimedOut))?
        .map_err(PgError::Unreachable)?;
    let applied = applied_versions(&mut conn).await.map_err(PgError::Unreachable)?;
    // Closing politely only matters to the server's log.
    let _ = conn.close().await;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect())
}

/// The versions recorded as applied (none when the migrations table does not exist).
async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(&mut *conn)
        .await
}
