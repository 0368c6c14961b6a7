//! The change feed over PostgreSQL: what one process writes reaches another process's
//! subscribers through LISTEN/NOTIFY (two stores over one database stand for the two
//! processes), and live timelines over it keep the pages' rules
//! (`minitwit_core::testkit::feed`).

use minitwit_core::Store;
use minitwit_core::testkit::feed;
use minitwit_store_pg::testkit::{connect, fresh_database_url};
use std::sync::Arc;

async fn two_processes() -> (Arc<dyn Store>, Arc<dyn Store>, impl Drop) {
    let (url, guard) = fresh_database_url().await;
    let writer: Arc<dyn Store> = Arc::new(connect(&url).await);
    let reader: Arc<dyn Store> = Arc::new(connect(&url).await);
    (writer, reader, guard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_reaches_another_process() {
    let (writer, reader, _db) = two_processes().await;
    feed::delivers_every_change(writer, reader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_timelines_keep_the_rules_across_processes() {
    let (writer, reader, _db) = two_processes().await;
    feed::live_timelines_keep_the_rules(writer, reader).await;
}
