//! A real failover against [`RoutedStore`]'s replica choice: a primary with two
//! streaming standbys; one standby is stopped, the other receives more of the primary's
//! WAL, the primary dies, and the stopped standby is promoted (timeline 2). The other
//! standby, still on timeline 1, now stands past the new primary's writes by LSN without
//! holding them: it must serve no reader (CONTRACT.md §10, §12).
//!
//! [`RoutedStore`]: minitwit_store_pg::RoutedStore

#![allow(clippy::unwrap_used)]

use minitwit_core::Store;
use minitwit_store_pg::{PgOptions, ReplicaOptions, RoutedStore, testkit};
use minitwit_test_support::TestCluster;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

async fn execute(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn lsn(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let position: Option<i64> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    position.unwrap_or(0)
}

/// Waits (at most a minute) until the standby at `standby_url` has replayed `target`
/// (read through its `postgres` database: a database just created on the primary may not
/// exist on the standby yet).
async fn replayed(standby_url: &str, target: i64) {
    let start = Instant::now();
    while lsn(standby_url, "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::BIGINT").await
        < target
    {
        assert!(start.elapsed() < Duration::from_secs(60), "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const WRITE_POSITION: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::BIGINT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_left_on_the_old_timeline_serves_no_reader_after_a_failover() {
    let primary = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let promoted = primary.start_standby().unwrap_or_else(|e| panic!("{e}"));
    let stale = primary.start_standby().unwrap_or_else(|e| panic!("{e}"));
    let url = primary.create_database("minitwit_failover").unwrap();
    testkit::connect(&url).await; // migrates
    let at = lsn(&url, WRITE_POSITION).await;
    replayed(&promoted.url("postgres"), at).await;
    replayed(&stale.url("postgres"), at).await;

    // The standby to be promoted stops; the other receives a megabyte more of the old
    // primary's WAL (a transaction never acknowledged to anyone), then the primary dies.
    promoted.stop().unwrap();
    execute(&url, "SELECT pg_logical_emit_message(true, 'minitwit-test', repeat('x', 1048576))")
        .await;
    replayed(&stale.url("postgres"), lsn(&url, WRITE_POSITION).await).await;
    primary.kill().unwrap();
    promoted.resume().unwrap();
    let new_url = promoted.url("minitwit_failover");
    execute(&new_url, "SELECT pg_promote(true, 60)").await;

    // A write on the new primary (timeline 2), a little past where it forked: the stale
    // standby's replay position (timeline 1) is further still.
    execute(
        &new_url,
        "INSERT INTO users (username, email, pw_hash) VALUES ('after-failover', 'a@example.com', 'x')",
    )
    .await;
    let stale_url = stale.url("minitwit_failover");
    let stale_at =
        lsn(&stale_url, "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::BIGINT").await;
    assert!(
        stale_at > lsn(&new_url, WRITE_POSITION).await,
        "the test needs the stale standby ahead by LSN"
    );

    let options = PgOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let replicas =
        ReplicaOptions { check_interval: Duration::from_millis(50), ..ReplicaOptions::default() };
    let store = RoutedStore::connect(&new_url, &[stale_url], options, replicas).await.unwrap();
    // Several checks of the stale standby, which answers and looks fresh by LSN alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        let found = store.user_by_name("after-failover").await.unwrap();
        assert!(found.is_some(), "a read was served by the standby left on the old timeline");
    }
}
