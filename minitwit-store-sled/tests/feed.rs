//! The change feed on the embedded store: every write's change delivered in process, and
//! live timelines over it keeping the pages' rules (`minitwit_core::testkit::feed`).

use minitwit_core::testkit::feed;
use minitwit_store_sled::testkit::fresh_store;

#[tokio::test]
async fn every_change_is_delivered() {
    let (store, _dir) = fresh_store().await;
    feed::delivers_every_change(store.clone(), store).await;
}

#[tokio::test]
async fn live_timelines_keep_the_rules() {
    let (store, _dir) = fresh_store().await;
    feed::live_timelines_keep_the_rules(store.clone(), store).await;
}
