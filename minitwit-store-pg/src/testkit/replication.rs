//! A throwaway primary with a streaming standby ([`ReplicatedPair`]) for replica tests:
//! fresh databases on it, [`RoutedStore`]s over them, and waiting for the standby to
//! replay everything the primary has committed.

use super::{TEMPLATE, TestDatabase, execute, migrate};
use crate::{PgOptions, ReplicaOptions, RoutedStore};
use minitwit_core::Store;
use minitwit_test_support::TestCluster;
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long [`ReplicatedPair::wait_for_standby`] waits before failing the test.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

/// A primary and its hot standby, each a [`TestCluster`]; stop, resume and delay either
/// through them.
#[derive(Debug)]
pub struct ReplicatedPair {
    /// The primary.
    pub primary: TestCluster,
    /// The streaming standby.
    pub standby: TestCluster,
    template: tokio::sync::OnceCell<()>,
}

impl ReplicatedPair {
    /// Starts a primary and a standby of it; panics with the fix when PostgreSQL is missing.
    pub fn start() -> Self {
        let primary = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
        let standby = primary.start_standby().unwrap_or_else(|e| panic!("{e}"));
        Self { primary, standby, template: tokio::sync::OnceCell::new() }
    }

    /// A fresh migrated database on the primary, already replayed by the standby: its
    /// URLs on the primary and on the standby, and the guard that drops it.
    pub async fn fresh_database(&self) -> (String, String, TestDatabase) {
        let admin_url = self.primary.url("postgres");
        self.template
            .get_or_init(|| async {
                execute(&admin_url, &format!("CREATE DATABASE {TEMPLATE}")).await;
                migrate(&self.primary.url(TEMPLATE)).await;
            })
            .await;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "minitwit_replicated_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        execute(&admin_url, &format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")).await;
        self.wait_for_standby().await;
        let urls = (self.primary.url(&name), self.standby.url(&name));
        (urls.0, urls.1, TestDatabase { name, admin_url })
    }

    /// Waits until the standby has replayed every commit the primary made so far;
    /// panics after a minute. Writes one flushed WAL record on the primary to wait for.
    pub async fn wait_for_standby(&self) {
        let target = self.mark_primary().await;
        let standby_url = self.standby.url("postgres");
        let start = Instant::now();
        loop {
            if let Ok(mut conn) = PgConnection::connect(&standby_url).await {
                let replayed: Result<Option<i64>, _> =
                    sqlx::query_scalar("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::BIGINT")
                        .fetch_one(&mut conn)
                        .await;
                let _ = conn.close().await;
                if matches!(replayed, Ok(Some(position)) if position >= target) {
                    return;
                }
            }
            assert!(start.elapsed() < CATCH_UP_LIMIT, "the standby did not catch up in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes a flushed WAL record on the primary (a logical message in a committed
    /// transaction) and returns its position: once replayed, so is every earlier commit.
    async fn mark_primary(&self) -> i64 {
        let url = self.primary.url("postgres");
        let mut conn = PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the primary ({url}): {e}"));
        let mut tx = conn.begin().await.unwrap_or_else(|e| panic!("BEGIN: {e}"));
        sqlx::query("SET LOCAL synchronous_commit = on")
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("SET synchronous_commit: {e}"));
        let position: i64 = sqlx::query_scalar(
            "SELECT (pg_logical_emit_message(true, 'minitwit-test', 'mark') - '0/0'::pg_lsn)::BIGINT",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("writing a WAL mark: {e}"));
        tx.commit().await.unwrap_or_else(|e| panic!("COMMIT: {e}"));
        let _ = conn.close().await;
        position
    }

    /// A [`RoutedStore`] over the database at `primary_url` with the standby database at
    /// `standby_url` as its one replica, with test pool settings.
    pub async fn routed_store(
        &self,
        primary_url: &str,
        standby_url: &str,
        replicas: ReplicaOptions,
    ) -> RoutedStore {
        let options = PgOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
            ..PgOptions::default()
        };
        RoutedStore::connect(primary_url, &[standby_url.to_owned()], options, replicas)
            .await
            .unwrap_or_else(|e| panic!("connecting to {primary_url}: {e}"))
    }
}

/// The process's shared pair, started on first use (never stopped by tests).
fn shared_pair() -> &'static ReplicatedPair {
    static PAIR: OnceLock<ReplicatedPair> = OnceLock::new();
    PAIR.get_or_init(ReplicatedPair::start)
}

/// A [`RoutedStore`] over a fresh database of the process's shared primary and standby,
/// the standby in sync: the conformance suite and the model test run on it.
pub async fn fresh_routed_store() -> (Arc<dyn Store>, TestDatabase) {
    let pair = shared_pair();
    let (primary, standby, guard) = pair.fresh_database().await;
    let store = pair.routed_store(&primary, &standby, ReplicaOptions::default()).await;
    (Arc::new(store), guard)
}
