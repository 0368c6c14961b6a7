//! Kept home timelines as only sled shows them: after a long mixed sequence with a tiny
//! bound and fan-out limit, read warm all along, every home page equals the one a
//! reopened store builds cold from its trees; an import and its undo keep the fan-out
//! exact.

use minitwit_core::model::{Follow, ImportBatch, Message, NewMessage};
use minitwit_core::{MessageId, MessageText, Store, Timeline, User, UserId};
use minitwit_store_sled::{SledOptions, SledStore};

/// Home timelines of 3 entries; authors of more than 3 followers merged on read.
fn tiny() -> SledOptions {
    SledOptions { home_bound: 3, fanout_limit: 3, ..SledOptions::default() }
}

use minitwit_core::testkit::records::registered as user;

/// A whole home timeline, read in pages of 2: its texts.
async fn home(store: &dyn Store, owner: UserId) -> Vec<String> {
    let mut texts = Vec::new();
    let mut before = None;
    loop {
        let page = store.timeline(Timeline::Home(owner), before, 2).await.expect("reading");
        let Some(last) = page.last() else { return texts };
        before = Some(minitwit_core::Cursor::after(last));
        texts.extend(page.into_iter().map(|e| e.text));
    }
}

/// 400 posts, follows, unfollows, flags, unflags and home reads, and a deletion, among
/// 8 users, chosen by a fixed pseudo-random sequence: authors cross the fan-out limit both
/// ways and every kept timeline passes its bound many times over.
async fn churn(store: &dyn Store) -> Vec<User> {
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(user(store, &format!("u{i}")).await);
    }
    let mut posted: Vec<MessageId> = Vec::new();
    let mut seed = 0x2545_f491_u64;
    let mut next = |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).expect("31 bits fit") % n
    };
    for step in 0..400_i64 {
        let (a, b) = (users[next(7)].id, users[next(7)].id);
        match next(12) {
            10 | 11 => drop(home(store, a).await),
            0..=3 => {
                let text = MessageText::parse(&format!("m{step}")).expect("text");
                let pub_date = step - i64::try_from(next(5)).expect("small");
                let message = NewMessage { author_id: a, text, pub_date };
                posted.push(store.add_message(message).await.expect("post"));
            }
            4 | 5 => store.follow(a, b).await.expect("follow"),
            6 | 7 => store.unfollow(a, b).await.expect("unfollow"),
            _ if !posted.is_empty() => {
                let id = posted[next(posted.len())];
                store.set_flagged(id, next(2) == 0).await.expect("flag");
            }
            _ => {}
        }
    }
    assert!(store.delete_user(users[7].id).await.expect("delete"));
    users.truncate(7);
    users
}

#[tokio::test]
async fn kept_timelines_after_churn_equal_the_ones_built_cold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (users, pages) = {
        let store = SledStore::open(dir.path(), tiny()).expect("open");
        let users = churn(&store).await;
        // Every timeline kept, then each user posts twice into them.
        for u in &users {
            home(&store, u.id).await;
        }
        for (i, u) in users.iter().chain(&users).enumerate() {
            let text = MessageText::parse(&format!("last {i}")).expect("text");
            let pub_date = 1_000 + i64::try_from(i).expect("small");
            store.add_message(NewMessage { author_id: u.id, text, pub_date }).await.expect("post");
        }
        let mut pages = Vec::new();
        for u in &users {
            pages.push(home(&store, u.id).await);
        }
        (users, pages)
    };
    assert!(pages.iter().any(|page| page.len() > 3), "some timeline passed its bound");
    let store = SledStore::open(dir.path(), tiny()).expect("reopen");
    for (u, page) in users.iter().zip(&pages) {
        assert_eq!(&home(&store, u.id).await, page, "home of {}", u.username);
    }
}

/// A post by `author` with text `text` at `pub_date`.
async fn post(store: &dyn Store, author: UserId, text: &str, pub_date: i64) {
    let text = MessageText::parse(text).expect("text");
    store.add_message(NewMessage { author_id: author, text, pub_date }).await.expect("post");
}

#[tokio::test]
async fn an_import_and_its_undo_keep_the_fan_out_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SledStore::open(dir.path(), tiny()).expect("open");
    let (reader, author) = (user(&store, "reader").await, user(&store, "author").await);
    store.follow(reader.id, author.id).await.expect("follow");
    post(&store, author.id, "before", 1).await;
    assert_eq!(home(&store, reader.id).await, ["before"], "kept now");

    // An imported user whom the reader follows, with a message of their own.
    let imported = minitwit_core::testkit::numbered_user(100);
    let message = Message {
        id: MessageId(1_000),
        author_id: imported.id,
        text: "imported".into(),
        pub_date: 2,
        flagged: false,
    };
    let follows = vec![Follow { follower: reader.id, followee: imported.id }];
    let batch = ImportBatch { users: vec![imported.clone()], messages: vec![message], follows };
    store.import(batch.clone()).await.expect("import");
    assert_eq!(home(&store, reader.id).await, ["imported", "before"], "rebuilt, kept");
    post(&store, imported.id, "after import", 3).await;
    assert_eq!(
        home(&store, reader.id).await,
        ["after import", "imported", "before"],
        "an imported follow fans out"
    );

    store.remove_imported(batch).await.expect("undo");
    assert_eq!(home(&store, reader.id).await, ["before"], "the undone user is gone");
    post(&store, author.id, "after undo", 4).await;
    assert_eq!(home(&store, reader.id).await, ["after undo", "before"]);
}
