//! The home indexes against their definition: after any sequence of writes, each index
//! holds exactly what its owner's follows and the messages say (the integrity check
//! compares them), with bounds small enough that every sequence crosses them; and a
//! store written before home indexes gets them built when it is opened.

use minitwit_core::{
    Email, HomeIndex, MessageText, NewMessage, NewUser, Store, Timeline, Username,
};
use minitwit_store_sled::{SledOptions, SledStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Users the writes draw from.
const USERS: usize = 5;

#[derive(Debug, Clone)]
enum Write {
    Post { author: usize, pub_date: i64 },
    Follow(usize, usize),
    Unfollow(usize, usize),
    Flag { message: usize, flagged: bool },
    Delete(usize),
}

fn write() -> impl Strategy<Value = Write> {
    let user = 0..USERS;
    prop_oneof![
        5 => (user.clone(), 0..8i64).prop_map(|(author, pub_date)| Write::Post { author, pub_date }),
        4 => (user.clone(), user.clone()).prop_map(|(a, b)| Write::Follow(a, b)),
        2 => (user.clone(), user.clone()).prop_map(|(a, b)| Write::Unfollow(a, b)),
        2 => (0..40usize, any::<bool>()).prop_map(|(message, flagged)| Write::Flag { message, flagged }),
        1 => user.prop_map(Write::Delete),
    ]
}

fn options(kept: usize, fan_out_limit: u64) -> SledOptions {
    SledOptions { home: HomeIndex { kept, fan_out_limit }, ..SledOptions::default() }
}

async fn register(store: &SledStore, n: usize) -> i64 {
    let new = NewUser {
        username: Username::parse(&format!("user{n}")).expect("a valid name"),
        email: Email::parse(&format!("user{n}@example.com")).expect("a valid email"),
        pw_hash: "hash".into(),
    };
    store.create_user(new).await.expect("registering").id
}

/// Applies `writes` (those naming a deleted user or an unknown message do nothing).
async fn apply(store: &SledStore, users: &mut [Option<i64>], writes: &[Write]) {
    let mut messages = Vec::new();
    for write in writes {
        match *write {
            Write::Post { author, pub_date } => {
                let Some(author_id) = users[author] else { continue };
                let text = MessageText::parse("hi").expect("a valid text");
                let new = NewMessage { author_id, text, pub_date };
                messages.push(store.add_message(new).await.expect("posting"));
            }
            Write::Follow(a, b) => {
                let (Some(a), Some(b)) = (users[a], users[b]) else { continue };
                store.follow(a, b).await.expect("following");
            }
            Write::Unfollow(a, b) => {
                let (Some(a), Some(b)) = (users[a], users[b]) else { continue };
                store.unfollow(a, b).await.expect("unfollowing");
            }
            Write::Flag { message, flagged } => {
                let Some(&id) = messages.get(message) else { continue };
                store.set_flagged(id, flagged).await.expect("flagging");
            }
            Write::Delete(user) => {
                let Some(id) = users[user].take() else { continue };
                store.delete_user(id).await.expect("deleting");
            }
        }
    }
}

#[test]
fn every_home_index_holds_what_the_follows_and_messages_say() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let config = Config { cases: 128, failure_persistence: None, ..Config::default() };
    let strategy = (proptest::collection::vec(write(), 1..60), 0..4usize, 0..3u64);
    let outcome = TestRunner::new(config).run(&strategy, |(writes, kept, limit)| {
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = SledStore::open(dir.path(), options(kept, limit)).expect("opening");
            let mut users = Vec::new();
            for n in 0..USERS {
                users.push(Some(register(&store, n).await));
            }
            apply(&store, &mut users, &writes).await;
            let report = store.check_integrity().await.expect("checking");
            if report.is_consistent() {
                Ok(())
            } else {
                Err(TestCaseError::fail(format!("{:?}", report.problems)))
            }
        })
    });
    if let Err(failure) = outcome {
        panic!("a home index differs from its definition: {failure}");
    }
}

#[tokio::test]
async fn a_store_without_home_indexes_gets_them_built_on_opening() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (alice, bob) = {
        let store = SledStore::open(dir.path(), options(3, 10)).expect("opening");
        let (alice, bob) = (register(&store, 0).await, register(&store, 1).await);
        store.follow(alice, bob).await.expect("following");
        for pub_date in 0..5 {
            let text = MessageText::parse("hi").expect("a valid text");
            store
                .add_message(NewMessage { author_id: bob, text, pub_date })
                .await
                .expect("posting");
        }
        (alice, bob)
    };
    {
        let db = sled::open(dir.path()).expect("raw sled");
        for tree in ["home", "home_meta"] {
            db.drop_tree(tree).expect("dropping a tree");
        }
        let meta = db.open_tree("meta").expect("meta");
        meta.insert("format_version", &2_i64.to_be_bytes()[..]).expect("writing");
        db.flush().expect("flushing");
    }
    let store = SledStore::open(dir.path(), options(3, 10)).expect("reopening");
    let report = store.check_integrity().await.expect("checking");
    assert!(report.is_consistent(), "{:?}", report.problems);
    let home = store.timeline(Timeline::Home(alice), None, 10).await.expect("reading");
    assert_eq!(home.len(), 5, "three from the index, two merged below its floor");
    assert!(home.iter().all(|entry| entry.author_id == bob));
}
