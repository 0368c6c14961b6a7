//! A PostgreSQL outage, seen from both front ends at once (CONTRACT.md §5, §9): while the
//! database is down the site answers a 503 page and the API a 503 in its JSON shape, both
//! leaking nothing; once it is back both serve again, without a restart. PostgreSQL is the
//! backend that can go away: the test stops and resumes its own throwaway server.

use crate::support::api::assert_error;
use crate::support::{Setup, TestApp, spawn_app};
use minitwit_store_pg::{PgOptions, PgStore};
use minitwit_test_support::TestCluster;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What an outage answer must not reveal.
const SECRETS: [&str; 5] = ["postgres", "sqlx", "connection", "pool", "/tmp"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_a_503_on_both_front_ends_and_passes() {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(TestCluster::start)
            .await
            .expect("the start task runs")
            .unwrap_or_else(|err| panic!("{err}")),
    );
    let options = PgOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(1),
        ..PgOptions::default()
    };
    let store = PgStore::connect(&cluster.url("postgres"), options).await.expect("connecting");
    let app = spawn_app((Arc::new(store), Box::new(Arc::clone(&cluster))), Setup::default()).await;
    app.api.register("alice").await;
    assert_eq!(app.site.get("/alice").await.status, 200);

    on_cluster(&cluster, TestCluster::stop).await;
    answers_503(&app).await;
    on_cluster(&cluster, TestCluster::resume).await;
    assert_eq!(status_once_back(|| async { app.site.get("/alice").await.status }).await, 200);
    assert_eq!(status_once_back(|| async { app.api.get("/msgs/alice").await.status }).await, 200);
}

/// Runs a blocking cluster operation off the async workers.
async fn on_cluster<E: std::fmt::Display + 'static>(
    cluster: &Arc<TestCluster>,
    operation: fn(&TestCluster) -> Result<(), E>,
) {
    let cluster = Arc::clone(cluster);
    tokio::task::spawn_blocking(move || operation(&cluster).unwrap_or_else(|err| panic!("{err}")))
        .await
        .expect("the cluster task runs");
}

/// Both front ends answer 503, in their own shapes, and say nothing about the store.
async fn answers_503(app: &TestApp) {
    let page = app.site.get("/public").await;
    assert_eq!(page.status, 503);
    page.assert_contains("503 Service Unavailable").assert_contains("temporarily unavailable");
    let answers = [
        app.api.get("/latest").await,
        app.api.get("/msgs/alice").await,
        app.api.post("/msgs/alice", json!({"content": "lost?"})).await,
        app.api.get("/msgs?latest=5").await,
    ];
    for answer in &answers {
        assert_eq!(assert_error(answer, 503), "The service is temporarily unavailable");
    }
    for secret in SECRETS {
        page.assert_lacks(secret);
        answers.iter().for_each(|answer| assert!(!answer.body.to_string().contains(secret)));
    }
}

/// The status `probe` gets once it stops getting 503 (the pool reconnects on demand; a few
/// attempts, and no timing is asserted).
async fn status_once_back<F: Future<Output = u16>>(probe: impl Fn() -> F) -> u16 {
    let mut status = probe().await;
    for _ in 0..50 {
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = probe().await;
    }
    status
}
