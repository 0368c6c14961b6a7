//! Stores by URL: `sled:PATH` (the embedded default) or `postgres://…` /
//! `postgresql://…`, the latter optionally with read replicas (`--replica-store`). The
//! only place the binary names a concrete backend.

use crate::cli::{ReplicaArgs, SledDurability, StoreOptions};
use minitwit_core::Store;
use minitwit_store_pg::{HomeReport, PgOptions, PgStore, ReplicaOptions, RoutedStore};
use minitwit_store_sled::{Durability, SledOptions, SledStore};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a store could not be opened; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The URL names no backend this build has.
    #[error(
        "unknown store URL {0:?}: use sled:PATH (e.g. sled:./minitwit-data) or postgres://USER:PASSWORD@HOST/DB"
    )]
    UnknownScheme(String),
    /// `sled:` without a path.
    #[error("the store URL sled: needs a directory, e.g. sled:./minitwit-data")]
    EmptySledPath,
    /// sled refused to open (locked by a running server, unreadable, …).
    #[error(transparent)]
    Sled(#[from] minitwit_store_sled::OpenError),
    /// `--replica-store` beside a store that is not PostgreSQL, or a replica URL that is
    /// not PostgreSQL.
    #[error(
        "--replica-store {0:?} needs a postgres:// --store and a postgres:// replica URL (streaming replicas of that database)"
    )]
    ReplicaNotPostgres(String),
    /// PostgreSQL could not be reached or migrated.
    #[error("cannot open the PostgreSQL store at {url}: {source}")]
    Postgres {
        /// The URL without its password.
        url: String,
        /// What went wrong.
        source: minitwit_store_pg::PgError,
    },
}

/// A parsed store URL.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An embedded sled store in this directory.
    Sled(PathBuf),
    /// A PostgreSQL database.
    Postgres(String),
}

impl StoreUrl {
    /// Parses `sled:PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, OpenStoreError> {
        if let Some(path) = url.strip_prefix("sled:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(OpenStoreError::EmptySledPath);
            }
            return Ok(Self::Sled(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(OpenStoreError::UnknownScheme(redact(url)))
    }

    /// Opens the store; PostgreSQL migrations are applied on connecting.
    pub async fn open(&self, options: StoreOptions) -> Result<Arc<dyn Store>, OpenStoreError> {
        match self {
            Self::Sled(path) => Ok(Arc::new(open_sled(path, options)?)),
            Self::Postgres(url) => Ok(Arc::new(connect_pg(url, options).await?)),
        }
    }

    /// Opens the store with the read replicas of `replicas` (PostgreSQL only); without
    /// replicas, exactly as [`StoreUrl::open`].
    pub async fn open_with_replicas(
        &self,
        options: StoreOptions,
        replicas: &ReplicaArgs,
    ) -> Result<Arc<dyn Store>, OpenStoreError> {
        let Some(first) = replicas.urls.first() else { return self.open(options).await };
        let Self::Postgres(url) = self else {
            return Err(OpenStoreError::ReplicaNotPostgres(redact(first)));
        };
        if let Some(other) =
            replicas.urls.iter().find(|r| !matches!(Self::parse(r), Ok(Self::Postgres(_))))
        {
            return Err(OpenStoreError::ReplicaNotPostgres(redact(other)));
        }
        let replica_options = ReplicaOptions {
            max_lag: Duration::from_millis(replicas.replica_max_lag_ms),
            ..ReplicaOptions::default()
        };
        let store = RoutedStore::connect(url, &replicas.urls, pg_options(options), replica_options)
            .await
            .map_err(|source| OpenStoreError::Postgres { url: redact(url), source })?;
        // With the process's recorder, if `serve` installed one; otherwise to no one.
        minitwit_store_pg::describe_metrics();
        Ok(Arc::new(store))
    }
}

/// Opens a sled store with the command line's settings.
fn open_sled(path: &Path, options: StoreOptions) -> Result<SledStore, OpenStoreError> {
    let durability = match options.sled_durability {
        SledDurability::Durable => Durability::Durable,
        SledDurability::Relaxed => Durability::Relaxed,
    };
    let options = SledOptions {
        durability,
        cache_capacity_bytes: options.sled_cache_mb.saturating_mul(1024 * 1024),
        home_bound: options.sled_home_bound,
        fanout_limit: options.sled_fanout_limit,
        home_cache_entries: options.sled_home_cache_entries,
    };
    Ok(SledStore::open(path, options)?)
}

/// Connects to PostgreSQL (applying the migrations) with the command line's settings.
async fn connect_pg(url: &str, options: StoreOptions) -> Result<PgStore, OpenStoreError> {
    PgStore::connect(url, pg_options(options))
        .await
        .map_err(|source| OpenStoreError::Postgres { url: redact(url), source })
}

/// The PostgreSQL pool settings from the command line.
fn pg_options(options: StoreOptions) -> PgOptions {
    let statement_timeout = (options.pg_statement_timeout_ms > 0)
        .then(|| Duration::from_millis(options.pg_statement_timeout_ms));
    PgOptions {
        max_connections: options.pg_max_connections,
        acquire_timeout: Duration::from_millis(options.pg_acquire_timeout_ms),
        statement_timeout,
        home_bound: options.pg_home_bound,
        fanout_limit: options.pg_fanout_limit,
        ..PgOptions::default()
    }
}

impl StoreUrl {
    /// The migrations `open` would apply, changing nothing (sled has none: its format is
    /// checked on opening).
    pub async fn pending_migrations(
        &self,
        options: StoreOptions,
    ) -> Result<Vec<String>, OpenStoreError> {
        match self {
            Self::Sled(_) => Ok(Vec::new()),
            Self::Postgres(url) => {
                let timeout = Duration::from_millis(options.pg_acquire_timeout_ms);
                minitwit_store_pg::pending_migrations(url, timeout)
                    .await
                    .map_err(|source| OpenStoreError::Postgres { url: redact(url), source })
            }
        }
    }
}

/// What `check` found in a store, whatever its backend.
#[derive(Debug, Default)]
pub struct StoreCheck {
    /// What was counted, by name, in the order printed.
    pub counts: Vec<(&'static str, u64)>,
    /// Descriptions of the first problems found.
    pub problems: Vec<String>,
    /// How many problems were found in all.
    pub problem_count: u64,
}

impl StoreUrl {
    /// Checks the store's consistency, reading all of it (run it on a quiet store): on
    /// sled every record, index entry and counter; on PostgreSQL the kept home
    /// timelines against the messages and follows, rebuilt first when `rebuild_home`.
    pub async fn check(
        &self,
        options: StoreOptions,
        rebuild_home: bool,
    ) -> anyhow::Result<StoreCheck> {
        match self {
            Self::Sled(path) => {
                anyhow::ensure!(
                    !rebuild_home,
                    "sled keeps its home timelines in memory and builds them again after \
                     every start: there is nothing to rebuild (drop --rebuild-home)"
                );
                let report = open_sled(path, options)?.check_integrity().await?;
                Ok(StoreCheck {
                    counts: vec![
                        ("users", report.users),
                        ("messages", report.messages),
                        ("follows", report.follows),
                        ("flagged", report.flagged),
                    ],
                    problems: report.problems,
                    problem_count: report.problem_count,
                })
            }
            Self::Postgres(url) => {
                let store = connect_pg(url, options).await?;
                if rebuild_home {
                    store.rebuild_home_timelines().await?;
                }
                Ok(home_check(store.check_home_timelines().await?))
            }
        }
    }
}

/// PostgreSQL's [`HomeReport`] as counts, each count that is not zero a problem.
fn home_check(report: HomeReport) -> StoreCheck {
    let counts = vec![
        ("home_entries_missing", report.missing),
        ("home_entries_extra", report.extra),
        ("home_follow_lists_wrong", report.follow_lists_wrong),
    ];
    let problems: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name}: {n} (rebuild them: check --rebuild-home)"))
        .collect();
    StoreCheck { problem_count: problems.len() as u64, counts, problems }
}

/// Shown without any password.
impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sled(path) => write!(f, "sled:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `url` with every password replaced by `***`: the user-info part (`user:PASSWORD@`),
/// and any `…password=VALUE` pair, in a query string (`?password=`, `&sslpassword=`) or a
/// key/value connection string (`host=db password='a b'`), whatever the key's case.
pub fn redact(url: &str) -> String {
    redact_pairs(&redact_userinfo(url))
}

/// Redacts the password of `scheme://user:PASSWORD@host…`. The user info ends at the last
/// `@`, so a password holding `@`, `/` or `?` is hidden whole (an `@` in the query hides
/// more than needed, never less).
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some(at) = rest.rfind('@') else { return url.to_owned() };
    let (userinfo, host_and_tail) = rest.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host_and_tail}"),
        None => url.to_owned(),
    }
}

/// Redacts the value of every key ending in `password` (any case) followed by `=`: up to
/// the next `&`, `;` or space, or to the closing quote of a quoted value.
fn redact_pairs(text: &str) -> String {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(KEY) {
        let key_end = search + found + KEY.len();
        search = key_end;
        let after_key = &text[key_end..];
        let spaces = after_key.len() - after_key.trim_start().len();
        let Some(value) = after_key.trim_start().strip_prefix('=') else { continue };
        let value_start = key_end + spaces + 1 + (value.len() - value.trim_start().len());
        let value_end = value_start + value_len(&text[value_start..]);
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = value_end;
        search = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The length of the value at the start of `rest`: a quoted one with its quotes (and
/// `\'` escapes), else up to the next `&`, `;`, `#` or white space.
fn value_len(rest: &str) -> usize {
    if let Some(quoted) = rest.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        return rest.len();
    }
    rest.find(|c: char| c == '&' || c == ';' || c == '#' || c.is_whitespace()).unwrap_or(rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_by_scheme() {
        assert_eq!(StoreUrl::parse("sled:./data").ok(), Some(StoreUrl::Sled("./data".into())));
        assert_eq!(StoreUrl::parse("sled:///tmp/x").ok(), Some(StoreUrl::Sled("/tmp/x".into())));
        assert!(matches!(StoreUrl::parse("postgresql://h/db"), Ok(StoreUrl::Postgres(_))));
        assert!(matches!(StoreUrl::parse("sled:"), Err(OpenStoreError::EmptySledPath)));
        assert!(matches!(StoreUrl::parse("mysql://x"), Err(OpenStoreError::UnknownScheme(_))));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?password=x"), "postgres://h/db?password=***");
        assert_eq!(
            redact("postgres://h/db?user=u&PassWord=x&sslmode=require"),
            "postgres://h/db?user=u&PassWord=***&sslmode=require"
        );
        assert_eq!(redact("postgres://h/db?sslpassword=k"), "postgres://h/db?sslpassword=***");
        assert_eq!(redact("postgres://u:p@ss/w?rd@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("host=db password = 'a \\' b' user=u"), "host=db password = *** user=u");
        assert_eq!(redact("host=db password=s3cret"), "host=db password=***");
        assert_eq!(redact("user:pw@h"), "user:pw@h", "no scheme: no user info to find");
        assert_eq!(redact("passwords are fine"), "passwords are fine");
        let shown = StoreUrl::parse("postgres://u:pw@h/db").map(|u| u.to_string());
        assert_eq!(shown.ok().as_deref(), Some("postgres://u:***@h/db"));
    }
}
