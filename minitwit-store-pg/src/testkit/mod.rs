//! A real PostgreSQL for tests, started by the tests themselves: one throwaway server
//! ([`TestCluster`]) per test process, shared by its tests, and a fresh database per
//! test, copied from a migrated template database so creating one is quick.
//!
//! Set `MINITWIT_TEST_DATABASE_URL` to use an existing server instead: each test then
//! gets a fresh database created and migrated on it (the URL's user must be allowed to
//! create databases), dropped again when the test's guard goes.
//!
//! If no server can be had, these functions panic with a message saying how to fix
//! it: the tests fail, they never skip.
//!
//! Layout: this module hands out databases ([`fresh_store`], [`fresh_database_url`],
//! the [`TestDatabase`] guard); `replication` runs a primary with a standby
//! ([`ReplicatedPair`]) for replica tests; `url` swaps the database name in a URL. The
//! servers themselves, [`TestCluster`]s (started, stopped and cleaned up), are
//! `minitwit-test-support`'s.
//!
//! ```no_run
//! # async fn demo() {
//! let (store, _db) = minitwit_store_pg::testkit::fresh_store().await;
//! let (url, _other) = minitwit_store_pg::testkit::fresh_database_url().await;
//! # let _ = (store, url); }
//! ```

mod replication;
mod url;

pub use replication::{ReplicatedPair, fresh_routed_store};

use crate::{PgOptions, PgStore};
use minitwit_core::Store;
use minitwit_test_support::TestCluster;
use sqlx::{Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How many statements storing posts by name without a key a store runs at once: a
/// post that finds one free goes alone; the others wait and are stored together.
pub const POSTS_IN_FLIGHT: usize = crate::batch::POSTS_IN_FLIGHT;

/// [`POSTS_IN_FLIGHT`] for keyed posts by name, and for follow changes by names, each.
pub const KEYED_WRITES_IN_FLIGHT: usize = crate::batch::KEYED_IN_FLIGHT;

/// The environment variable naming a server to use instead of a throwaway one.
pub const DATABASE_URL_VAR: &str = "MINITWIT_TEST_DATABASE_URL";

/// The migrated database every fresh one is copied from (throwaway server only).
const TEMPLATE: &str = "minitwit_template";

/// Where the test databases live.
enum Server {
    /// Our own throwaway server; fresh databases are copies of [`TEMPLATE`].
    Throwaway(TestCluster),
    /// A server named by [`DATABASE_URL_VAR`]; fresh databases start empty.
    External(String),
}

impl Server {
    /// The URL of `database` on this server.
    fn url(&self, database: &str) -> String {
        match self {
            Server::Throwaway(cluster) => cluster.url(database),
            Server::External(url) => url::with_database(url, database),
        }
    }

    /// A URL of a database that always exists, for creating and dropping others.
    fn admin_url(&self) -> String {
        match self {
            Server::Throwaway(cluster) => cluster.url("postgres"),
            Server::External(url) => url.clone(),
        }
    }
}

/// The process's server, started on first use. Never dropped: the cluster's watchdog
/// stops it when the process exits.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.is_empty() => Server::External(url),
        _ => Server::Throwaway(TestCluster::start().unwrap_or_else(|e| panic!("{e}"))),
    })
}

/// A fresh, empty, migrated database; it is dropped with the returned guard. Panics
/// (with the fix) when no PostgreSQL can be had.
pub async fn fresh_database_url() -> (String, TestDatabase) {
    let server = server();
    if let Server::Throwaway(cluster) = server {
        ensure_template(cluster).await;
    }
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name =
        format!("minitwit_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let create = match server {
        Server::Throwaway(_) => format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"),
        Server::External(_) => format!("CREATE DATABASE {name}"),
    };
    let admin_url = server.admin_url();
    execute(&admin_url, &create).await;
    let guard = TestDatabase { name: name.clone(), admin_url };
    let url = server.url(&name);
    if let Server::External(_) = server {
        migrate(&url).await;
    }
    (url, guard)
}

/// A fresh database with nothing in it, not even the migrations (for checking what
/// migrating does); it is dropped with the returned guard.
pub async fn empty_database_url() -> (String, TestDatabase) {
    let server = server();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name =
        format!("minitwit_empty_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let admin_url = server.admin_url();
    execute(&admin_url, &format!("CREATE DATABASE {name}")).await;
    (server.url(&name), TestDatabase { name, admin_url })
}

/// A [`PgStore`] on a fresh database (see [`fresh_database_url`]), as the conformance
/// suite wants it.
pub async fn fresh_store() -> (Arc<dyn Store>, TestDatabase) {
    fresh_store_with(PgOptions::default()).await
}

/// [`fresh_store`] with `options` (its pool settings replaced by [`connect`]'s).
pub async fn fresh_store_with(options: PgOptions) -> (Arc<dyn Store>, TestDatabase) {
    let (url, guard) = fresh_database_url().await;
    (Arc::new(connect_with(&url, options).await), guard)
}

/// Connects a store to `url` with test settings: a small pool and a generous wait for
/// connections, so a busy machine does not fail tests.
pub async fn connect(url: &str) -> PgStore {
    connect_with(url, PgOptions::default()).await
}

/// A store over `url` whose connections open on first use, unmigrated, as a replica's
/// is (a standby's database cannot be migrated).
pub fn connect_unmigrated(url: &str, options: PgOptions) -> PgStore {
    PgStore::connect_lazy(url, &options).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// [`connect`] with `options` apart from the pool's size and wait.
async fn connect_with(url: &str, options: PgOptions) -> PgStore {
    let options =
        PgOptions { max_connections: 4, acquire_timeout: Duration::from_secs(60), ..options };
    PgStore::connect(url, options).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Creates and migrates the template database once per process.
async fn ensure_template(cluster: &TestCluster) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        execute(&cluster.url("postgres"), &format!("CREATE DATABASE {TEMPLATE}")).await;
        migrate(&cluster.url(TEMPLATE)).await;
    })
    .await;
}

/// Applies the migrations to the database at `url` and disconnects (a template must
/// have no connections to be copied).
async fn migrate(url: &str) {
    let mut conn =
        PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    crate::store::MIGRATOR.run(&mut conn).await.unwrap_or_else(|e| panic!("migrating {url}: {e}"));
    conn.close().await.unwrap_or_else(|e| panic!("disconnecting from {url}: {e}"));
}

/// Runs `sql` on the database at `url` (tests set up triggers and the like with it);
/// panics with the statement on failure.
pub async fn execute(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server ({url}): {e}"));
    conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    // Closing politely only matters to the server's log.
    let _ = conn.close().await;
}

/// A test database; dropping it drops the database (and cuts its connections).
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let url = self.admin_url.clone();
        // Drop runs without an async context of its own (maybe inside a runtime that
        // must not be blocked on), so the statement runs on a runtime of its own thread.
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&url).await {
                        let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
                        let _ = conn.close().await;
                    }
                });
            }
        });
        // Best effort: a leftover database vanishes with the throwaway server anyway.
        let _ = dropping.join();
    }
}
