//! `latest` written beside its request (`src/latest.rs`): many values begun at once are
//! each answered, a read sees every value begun before it, and the value stored last is
//! the newest begun, as when each was written in place.

use minitwit_store_pg::testkit;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_begun_together_are_answered_and_the_newest_is_kept() {
    let (store, _db) = testkit::fresh_store().await;
    let mut waits = Vec::new();
    for value in 1..=50 {
        waits.push(store.begin_set_latest(value).await.expect("begins"));
        if value % 10 == 0 {
            assert_eq!(store.latest().await.expect("reads"), Some(value), "read after begin");
        }
    }
    for wait in futures::future::join_all(waits).await {
        wait.expect("durable");
    }
    assert_eq!(store.latest().await.expect("reads"), Some(50));
    store.set_latest(7).await.expect("records");
    assert_eq!(store.latest().await.expect("reads"), Some(7), "a later, smaller value");
}
