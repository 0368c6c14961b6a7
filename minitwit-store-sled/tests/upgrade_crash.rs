//! SIGKILL during the format upgrade that builds the home indexes: a store written
//! before them (format 2, no home trees) is opened by a child process, which is killed
//! at a random moment; every later opening must still open it, and the store that
//! finally opens has every home index as its definition says (the integrity check).
//!
//! The child is this test binary again, run with [`CHILD_DIR`] set.

use minitwit_core::testkit::numbered_user;
use minitwit_core::{Follow, ImportBatch, Message, Store};
use minitwit_store_sled::{Durability, SledOptions, SledStore};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// When set, this binary is the child: it opens the store in this directory.
const CHILD_DIR: &str = "MINITWIT_SLED_UPGRADE_CHILD_DIR";
/// Kill rounds.
const ROUNDS: u32 = 5;
const USERS: i64 = 2_000;
const FOLLOWS_EACH: i64 = 20;

#[test]
fn a_crash_during_the_upgrade_leaves_a_store_that_opens_and_upgrades() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        SledStore::open(dir, SledOptions::default()).expect("opening (and upgrading) the store");
        println!("OPENED");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    fill(dir.path());
    let mut killed_before_opening = 0;
    for _ in 0..ROUNDS {
        downgrade(dir.path());
        killed_before_opening += u32::from(open_in_child_and_kill(dir.path()));
    }
    eprintln!("{killed_before_opening} of {ROUNDS} children were killed before the store opened");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let store = SledStore::open(dir.path(), SledOptions::default()).expect("opening");
        let report = store.check_integrity().await.expect("checking");
        assert!(report.is_consistent(), "{:?}", report.problems);
        assert_eq!(report.users, USERS as u64);
        let home =
            store.timeline(minitwit_core::Timeline::Home(1), None, 30).await.expect("a page");
        assert_eq!(home.len(), 30, "user 1 follows people who posted");
    });
}

/// A store of `USERS` users, each following `FOLLOWS_EACH` others and posting 5 messages.
fn fill(dir: &Path) {
    let users = (1..=USERS).map(numbered_user).collect();
    let messages = (1..=USERS * 5)
        .map(|id| Message {
            id,
            author_id: 1 + id % USERS,
            text: format!("message {id}"),
            pub_date: id,
            flagged: false,
        })
        .collect();
    let follows = (1..=USERS)
        .flat_map(|follower| {
            (1..=FOLLOWS_EACH)
                .map(move |k| Follow { follower, followee: 1 + (follower + k) % USERS })
        })
        .collect();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let options = SledOptions { durability: Durability::Relaxed, ..SledOptions::default() };
        let store = SledStore::open(dir, options).expect("opening");
        store.import(ImportBatch { users, messages, follows }).await.expect("importing");
        store.end_import(None).await.expect("ending the import");
        store.flush().await.expect("flushing");
    });
}

/// Makes the store look written before home indexes: no home trees, format 2.
fn downgrade(dir: &Path) {
    let db = sled::open(dir).expect("raw sled");
    for tree in ["home", "home_meta"] {
        db.drop_tree(tree).expect("dropping a tree");
    }
    let meta = db.open_tree("meta").expect("meta");
    meta.insert("format_version", &2_i64.to_be_bytes()[..]).expect("writing");
    db.flush().expect("flushing");
}

/// Opens the store in a child killed at a random moment; whether it was killed before
/// it had opened the store.
fn open_in_child_and_kill(dir: &Path) -> bool {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["a_crash_during_the_upgrade_leaves_a_store_that_opens_and_upgrades", "--exact"])
        .arg("--nocapture")
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the child");
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line == "OPENED")
    });
    std::thread::sleep(Duration::from_millis(RandomState::new().hash_one(0u8) % 600));
    child.kill().expect("sending SIGKILL to the child");
    child.wait().expect("reaping the child");
    !reader.join().expect("the reader thread")
}
