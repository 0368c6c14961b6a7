//! Outage: with a server of its own, the test stops PostgreSQL under a connected store,
//! sees the store answer "unavailable" (callers answer 503), starts the server again
//! and sees the same store work again without a restart. Connecting with no server or
//! a malformed URL fails with the matching `PgError`.

use minitwit_core::model::NewUser;
use minitwit_core::store::StoreError;
use minitwit_core::{Email, Store, Username};
use minitwit_store_pg::{PgError, PgOptions, PgStore};
use minitwit_test_support::TestCluster;
use std::time::Duration;

/// Runs a blocking cluster operation off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("the blocking task ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_reported_and_survived() {
    let cluster = blocking(TestCluster::start).await.unwrap_or_else(|e| panic!("{e}"));
    let cluster = std::sync::Arc::new(cluster);
    let options = PgOptions {
        max_connections: 2,
        acquire_timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    let store = PgStore::connect(&cluster.url("postgres"), options).await.expect("connects");
    let alice = NewUser {
        username: Username::parse("alice").expect("valid"),
        email: Email::parse("alice@example.com").expect("valid"),
        pw_hash: "hash".into(),
    };
    store.create_user(alice).await.expect("creates a user while the server is up");

    let c = std::sync::Arc::clone(&cluster);
    blocking(move || c.stop()).await.expect("stops the server");
    for attempt in 0..2 {
        let down = store.user_by_name("alice").await;
        assert!(matches!(down, Err(StoreError::Unavailable(_))), "attempt {attempt}: {down:?}");
    }
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(store.counts().await, Err(StoreError::Unavailable(_))));

    let c = std::sync::Arc::clone(&cluster);
    blocking(move || c.resume()).await.expect("starts the server again");
    store.ping().await.expect("the same store answers again");
    let back = store.user_by_name("alice").await.expect("reads again");
    assert_eq!(back.map(|u| u.username).as_deref(), Some("alice"));
}

#[tokio::test]
async fn connecting_without_a_server_fails_clearly() {
    let nowhere = tempfile::tempdir().expect("a temporary directory");
    let url = format!("postgres://postgres@localhost/x?host={}", nowhere.path().display());
    let options = PgOptions { acquire_timeout: Duration::from_millis(300), ..PgOptions::default() };
    let err = PgStore::connect(&url, options.clone()).await.expect_err("no server there");
    assert!(matches!(err, PgError::Unreachable(_)), "{err:?}");
    let err = PgStore::connect("postgres://h:notaport/db", options)
        .await
        .expect_err("not a PostgreSQL URL");
    assert!(matches!(err, PgError::InvalidUrl(_)), "{err:?}");
}
