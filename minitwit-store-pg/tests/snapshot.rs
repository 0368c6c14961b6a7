//! The snapshot that names what reads see (`Store::snapshot`, `src/state.rs`): equal
//! across reads, moved by every commit of any connection, including a commit of a
//! transaction that was already running when the snapshot was taken, and never named by
//! a standby. The service serves what it derived from reads again while it stays equal,
//! so a snapshot that failed to move would serve a page older than a commit.

use minitwit_core::consistency::Snapshot;
use minitwit_core::{Store, Timeline};
use minitwit_store_pg::testkit::{self, ReplicatedPair};
use minitwit_store_pg::{PgOptions, PgStore, ReplicaOptions};
use sqlx::{Connection, PgConnection};

async fn snapshot(store: &dyn Store) -> Snapshot {
    store.snapshot().await.expect("reads the snapshot").expect("a primary names its snapshot")
}

async fn connection(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// Registers `name` through `conn`, outside any store (another process's write).
async fn add_user(conn: &mut PgConnection, name: &str) {
    sqlx::query("INSERT INTO users (username, email, pw_hash) VALUES ($1, 'a@b.c', 'x')")
        .bind(name)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("adding {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_stays_equal_across_reads_and_moves_with_every_commit() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    let first = snapshot(&store).await;
    store.timeline(Timeline::Public, None, 30).await.expect("reads");
    store.user_by_name("nobody").await.expect("reads");
    store.latest().await.expect("reads");
    assert_eq!(snapshot(&store).await, first, "reads commit nothing");
    add_user(&mut connection(&url).await, "alice").await;
    let second = snapshot(&store).await;
    assert_ne!(second, first, "another connection's commit moves it");
    store.set_latest(7).await.expect("records");
    assert_ne!(snapshot(&store).await, second, "so does this store's own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_running_when_the_snapshot_was_taken_moves_it_when_it_commits() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    let mut running = connection(&url).await;
    sqlx::query("BEGIN").execute(&mut running).await.expect("BEGIN");
    add_user(&mut running, "alice").await;
    // A later transaction commits first, so the running one is below the snapshot's
    // horizon and only its list of running transactions tells it apart.
    add_user(&mut connection(&url).await, "bob").await;
    let before = snapshot(&store).await;
    assert_eq!(store.user_by_name("alice").await.expect("reads"), None, "not committed yet");
    sqlx::query("COMMIT").execute(&mut running).await.expect("COMMIT");
    assert_ne!(snapshot(&store).await, before, "its commit moves the snapshot");
    assert!(store.user_by_name("alice").await.expect("reads").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_and_a_store_routing_reads_to_it_name_no_snapshot() {
    let pair = ReplicatedPair::start();
    let (primary_url, standby_url, _db) = pair.fresh_database().await;
    let routed = pair.routed_store(&primary_url, &standby_url, ReplicaOptions::default()).await;
    assert!(routed.snapshot().await.expect("answers").is_none(), "reads may come from a copy");
    let standby = testkit::connect_unmigrated(&standby_url, PgOptions::default());
    let on_standby = standby.snapshot().await.expect("answers");
    assert!(on_standby.is_none(), "a standby's snapshot lists no running transaction");
    let primary = PgStore::connect(&primary_url, PgOptions::default()).await.expect("connects");
    assert!(primary.snapshot().await.expect("answers").is_some());
}
