//! `latest` written beside its request (`src/latest.rs`): many values begun at once are
//! each answered, a read sees every value begun before it, and the value stored last is
//! the newest begun, as when each was written in place; a simulator write records it in
//! its own transaction.

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

/// The simulator's writes record the `latest` begun before them in their own
/// transaction (one commit per action): the slot holding it and the row the write made
/// carry the same transaction id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_write_records_latest_in_its_own_transaction() {
    use minitwit_core::MessageText;
    use minitwit_core::idempotency::{FollowChange, Receipt, ReceiptKey};
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    let store: &dyn minitwit_core::store::Store = &store;
    for name in ["a", "b"] {
        user(store, name).await;
    }

    let wait = store.begin_set_latest(11).await.unwrap();
    let text = MessageText::parse("unkeyed").unwrap();
    store.add_message_by_name("a", text, 1).await.unwrap();
    wait.await.unwrap();
    let posted = "SELECT xmin::text FROM messages WHERE text = 'unkeyed'";
    assert!(same_transaction(&url, posted, 11).await, "a post by name");

    let wait = store.begin_set_latest(12).await.unwrap();
    let key = ReceiptKey { scope: "sim".into(), key: "k1".into() };
    let receipt = Receipt { fingerprint: [0; 32], status: 204, body: Vec::new(), recorded_at: 5 };
    let text = MessageText::parse("keyed").unwrap();
    store.apply_once_by_name(&key, &receipt, 0, "a", text, 1).await.unwrap();
    wait.await.unwrap();
    let posted = "SELECT xmin::text FROM messages WHERE text = 'keyed'";
    assert!(same_transaction(&url, posted, 12).await, "a keyed post by name");

    let wait = store.begin_set_latest(13).await.unwrap();
    store.change_follow_by_names("a", "b", FollowChange::Follow, None).await.unwrap();
    wait.await.unwrap();
    assert!(same_transaction(&url, "SELECT xmin::text FROM follows", 13).await, "a follow");
}

/// Whether the row `row` selects (its `xmin`) was written by the transaction that
/// recorded `latest`.
async fn same_transaction(url: &str, row: &str, latest: i64) -> bool {
    let sql = format!(
        "SELECT coalesce(({row}) = (SELECT xmin::text FROM latest_slots WHERE value = {latest}),
                         FALSE)"
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.expect("connects");
    sqlx::query_scalar::<_, bool>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut conn)
        .await
        .expect("reads the transaction ids")
}

async fn user(store: &dyn minitwit_core::store::Store, name: &str) -> minitwit_core::User {
    let user = minitwit_core::model::NewUser {
        username: minitwit_core::Username::parse(name).expect("valid"),
        email: minitwit_core::Email::parse(&format!("{name}@example.com")).expect("valid"),
        pw_hash: "x".into(),
    };
    store.create_user(user).await.expect("created")
}

/// During a rolling deploy, a replica of the previous release still writes the one-row
/// table `latest`: this release reads its value.
#[tokio::test]
async fn a_value_written_by_the_previous_release_is_read() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    let store: &dyn minitwit_core::store::Store = &store;
    store.set_latest(4).await.unwrap();
    testkit::execute(
        &url,
        "INSERT INTO latest (id, value) VALUES (TRUE, 17)
         ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value",
    )
    .await;
    assert_eq!(store.latest().await.unwrap(), Some(17));
    store.set_latest(18).await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(18), "and a later value of its own");
}
