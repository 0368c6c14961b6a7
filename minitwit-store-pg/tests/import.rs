//! Import specifics beyond the conformance suite: a batch naming a user nobody has is
//! refused with that user's id and changes nothing; id sequences move up past imported
//! ids and never back down; undoing an import ends the follows its users have since,
//! counted and out of the kept home timelines.

use minitwit_core::model::{Follow, ImportBatch};
use minitwit_core::store::StoreError;
use minitwit_core::testkit::numbered_user as user;
use minitwit_core::testkit::records::new_user;
use minitwit_core::{Message, MessageId, Store, Timeline, UserId};
use minitwit_store_pg::testkit;

fn message(id: i64, author_id: i64) -> Message {
    Message {
        id: MessageId(id),
        author_id: UserId(author_id),
        text: format!("m{id}"),
        pub_date: id,
        flagged: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_user_is_named_and_nothing_is_written() {
    let (store, _db) = testkit::fresh_store().await;
    let batch = ImportBatch {
        users: vec![user(1), user(2)],
        messages: vec![message(1, 1), message(2, 7), message(3, 8)],
        follows: vec![Follow { follower: UserId(9), followee: UserId(1) }],
    };
    assert_eq!(store.import(batch).await, Err(StoreError::UnknownUser(UserId(7))));
    let follows = ImportBatch {
        follows: vec![Follow { follower: UserId(1), followee: UserId(2) }],
        ..ImportBatch::default()
    };
    assert_eq!(store.import(follows).await, Err(StoreError::UnknownUser(UserId(1))));
    assert_eq!(store.counts().await.expect("counts"), Default::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_continue_above_imported_ids_and_never_go_back() {
    let (store, _db) = testkit::fresh_store().await;
    let first = ImportBatch {
        users: vec![user(100)],
        messages: vec![message(500, 100)],
        ..ImportBatch::default()
    };
    store.import(first).await.expect("imports");
    let second = ImportBatch {
        users: vec![user(5)],
        messages: vec![message(6, 5)],
        ..ImportBatch::default()
    };
    store.import(second).await.expect("imports lower ids");
    let new = minitwit_core::model::NewUser {
        username: minitwit_core::Username::parse("fresh").expect("valid"),
        email: minitwit_core::Email::parse("fresh@example.com").expect("valid"),
        pw_hash: "hash".into(),
    };
    let created = store.create_user(new).await.expect("creates");
    assert_eq!(created.id, UserId(101), "the next id follows the largest imported one");
    let text = minitwit_core::MessageText::parse("new").expect("valid");
    let posted = minitwit_core::model::NewMessage { author_id: created.id, text, pub_date: 1 };
    assert_eq!(store.add_message(posted).await.expect("posts"), MessageId(501));
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.users, counts.messages), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_an_import_ends_the_follows_its_users_have_since() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    let batch = ImportBatch {
        users: vec![user(1), user(2)],
        messages: vec![message(1, 1)],
        follows: vec![Follow { follower: UserId(2), followee: UserId(1) }],
    };
    store.import(batch.clone()).await.expect("imports");
    let reader = store.create_user(new_user("reader")).await.expect("creates").id;
    let home =
        store.timeline(Timeline::Home(reader), None, 10).await.expect("keeps a home timeline");
    assert!(home.is_empty());
    store.follow(reader, UserId(1)).await.expect("follows an imported user");
    store.follow(UserId(2), reader).await.expect("an imported user follows");
    let text = minitwit_core::MessageText::parse("since").expect("valid");
    let since = minitwit_core::model::NewMessage { author_id: UserId(1), text, pub_date: 2 };
    store.add_message(since).await.expect("an imported user posts");
    let home = store.timeline(Timeline::Home(reader), None, 10).await.expect("reads");
    assert_eq!(home.len(), 2, "the imported user's posts are in the reader's home timeline");

    store.remove_imported(batch).await.expect("removes");
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.users, counts.messages, counts.follows), (1, 0, 0));
    let home = store.timeline(Timeline::Home(reader), None, 10).await.expect("reads");
    assert!(home.is_empty(), "nothing of the import stays in a home timeline: {home:?}");
    let report = store.check_home_timelines().await.expect("checks");
    assert!(report.is_clean(), "the kept home timelines agree with the data: {report:?}");
}
