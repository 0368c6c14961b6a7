//! The index check: on a loaded database (200,000 messages; users following 50 and 500
//! active people, and one following 50 people who posted long ago), the plan of every
//! timeline query, first page and a keyset page, reads messages through the intended
//! index and never scans the messages table; and the pages are the reference model's.
//! The public and user timelines are read in index order at every page size: no sort,
//! no bitmap scan that would read all of an author's messages.

use minitwit_core::model::{Follow, ImportBatch};
use minitwit_core::testkit::{MemoryStore, numbered_user};
use minitwit_core::{Cursor, Message, MessageId, Store, Timeline, UserId};
use minitwit_store_pg::testkit;

const USERS: i64 = 1_000;
const MESSAGES: i64 = 200_000;
/// Users who posted only long ago, and the one who follows them all.
const QUIET: std::ops::RangeInclusive<i64> = 1_002..=1_051;
const QUIET_FOLLOWER: UserId = UserId(1_001);

/// Users 1..=1000; messages by author in turn, about one per 7 seconds with ties, one
/// in 50 flagged; user 1 follows 50 people, user 2 follows 500; user 1001 follows the
/// 50 quiet users 1002..=1051, who posted 2,000 messages before everyone else.
fn batch() -> ImportBatch {
    let users = (1..=*QUIET.end()).map(numbered_user).collect();
    let messages = (1..=MESSAGES)
        .map(|id| Message {
            id: MessageId(id),
            author_id: UserId(1 + id % USERS),
            text: format!("message {id}"),
            pub_date: 1_600_000_000 + id * 7 / 10,
            flagged: id % 50 == 0,
        })
        .chain((1..=2_000).map(|i| Message {
            id: MessageId(MESSAGES + i),
            author_id: UserId(QUIET.start() + i % 50),
            text: format!("old message {i}"),
            pub_date: 1_500_000_000 + i,
            flagged: false,
        }))
        .collect();
    let follows = (3..53)
        .map(|followee| Follow { follower: UserId(1), followee: UserId(followee) })
        .chain((3..503).map(|followee| Follow { follower: UserId(2), followee: UserId(followee) }))
        .chain(
            QUIET.map(|followee| Follow { follower: QUIET_FOLLOWER, followee: UserId(followee) }),
        )
        .collect();
    ImportBatch { users, messages, follows }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timeline_page_is_read_through_an_index() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    store.import(batch()).await.expect("imports the data set");
    let model = MemoryStore::new();
    model.import(batch()).await.expect("the model imports the data set");
    store.vacuum_analyze().await.expect("analyzes");

    let cases = [
        (Timeline::Public, &["messages_public_idx"][..]),
        (Timeline::User(UserId(7)), &["messages_author_timeline_idx"]),
        (Timeline::Home(UserId(1)), BOTH),
        (Timeline::Home(UserId(2)), BOTH),
        (Timeline::Home(QUIET_FOLLOWER), BOTH),
    ];
    // The kept timeline, then the merge below its floor.
    const BOTH: &[&str] =
        &["home_entries_pkey", "messages_public_idx", "messages_author_timeline_idx"];
    for (timeline, indexes) in cases {
        let first = store.timeline(timeline, None, 30).await.expect("reads a page");
        assert_eq!(first.len(), 30, "{timeline:?} has a full first page");
        let keyset = Some(Cursor::after(&first[29]));
        for before in [None, keyset] {
            assert_eq!(
                store.timeline(timeline, before, 30).await.expect("reads a page"),
                model.timeline(timeline, before, 30).await.expect("the model reads a page"),
                "{timeline:?} before {before:?} is the model's page"
            );
            let plans = store.explain_timeline(timeline, before, 30).await.expect("explains");
            for (kind, plan) in [("custom", plans.custom), ("generic", plans.generic)] {
                let plan = plan.join("\n");
                println!("{timeline:?} before {before:?}, {kind} plan:\n{plan}\n");
                for index in indexes {
                    assert!(
                        plan.contains(index),
                        "{timeline:?} {before:?} {kind} uses {index}:\n{plan}"
                    );
                }
                for table in ["messages", "users", "home_entries"] {
                    assert!(
                        !plan.contains(&format!("Seq Scan on {table}")),
                        "{timeline:?} {before:?} {kind} scans {table}:\n{plan}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_and_user_pages_are_read_in_index_order_at_every_page_size() {
    let (url, _db) = testkit::fresh_database_url().await;
    let store = testkit::connect(&url).await;
    store.import(batch()).await.expect("imports the data set");
    store.vacuum_analyze().await.expect("analyzes");
    // 101: the API's page of 100 and the entry that tells whether another follows. An
    // author has some 200 messages here, of which a plan for any cursor expects a
    // third: for a larger page the planner, left alone, prefers a bitmap scan that
    // reads all of the author's messages and sorts them.
    for limit in [31, 101, 1001] {
        for timeline in [Timeline::Public, Timeline::User(UserId(7))] {
            let plans = store.explain_timeline(timeline, None, limit).await.expect("explains");
            for (kind, plan) in [("custom", plans.custom), ("generic", plans.generic)] {
                let plan = plan.join("\n");
                for node in ["Sort", "Bitmap"] {
                    assert!(
                        !plan.contains(node),
                        "{timeline:?} limit {limit}, {kind} plan has a {node} node:\n{plan}"
                    );
                }
            }
        }
    }
}
