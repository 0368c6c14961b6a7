//! sled-specific edges the core's conformance suite cannot see: persistence across
//! reopening, the directory lock, the format version, the integrity check, key order
//! across signs, relaxed durability, and timelines on a larger data set compared with
//! the reference model.

use minitwit_core::model::{Follow, ImportBatch, NewMessage};
use minitwit_core::testkit::MemoryStore;
use minitwit_core::{
    Cursor, Message, MessageFilter, MessageId, MessageText, Store, Timeline, TimelineEntry, User,
};
use minitwit_store_sled::{Durability, OpenError, SledOptions, SledStore};
use std::path::Path;
use std::sync::Arc;

/// sled itself on `dir`, once the store closed just before has let go of its files
/// (sled's background threads release its lock a moment after the last handle drops).
fn raw_sled(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Err(err)
                if std::time::Instant::now() < deadline && err.to_string().contains("lock") =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened.expect("raw sled"),
        }
    }
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, SledOptions::default()).expect("opening the store")
}

use minitwit_core::testkit::records::registered as user;

async fn post(store: &dyn Store, author: &User, text: &str, pub_date: i64) -> MessageId {
    let text = MessageText::parse(text).expect("valid text");
    store.add_message(NewMessage { author_id: author.id, text, pub_date }).await.expect("posting")
}

async fn texts(store: &dyn Store, timeline: Timeline) -> Vec<String> {
    let page = store.timeline(timeline, None, 1000).await.expect("reading");
    page.into_iter().map(|e| e.text).collect()
}

#[tokio::test]
async fn data_survives_reopening_and_ids_continue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (alice, bob, hidden) = {
        let store = open(dir.path());
        let (alice, bob) = (user(&store, "alice").await, user(&store, "Bøb Å").await);
        store.follow(bob.id, alice.id).await.expect("follow");
        post(&store, &alice, "kept <&> 🦀", 5).await;
        let hidden = post(&store, &alice, "hidden", 6).await;
        store.set_flagged(hidden, true).await.expect("flag");
        store.set_latest(77).await.expect("latest");
        store.init_setting("key", b"secret").await.expect("setting");
        (alice, bob, hidden)
    };
    let store = open(dir.path());
    assert_eq!(store.user_by_name("Bøb Å").await.expect("read"), Some(bob.clone()));
    assert_eq!(texts(&store, Timeline::Home(bob.id)).await, ["kept <&> 🦀"]);
    assert!(store.message_by_id(hidden).await.expect("read").expect("kept").flagged);
    assert_eq!(store.latest().await.expect("read"), Some(77));
    assert_eq!(store.setting("key").await.expect("read"), Some(b"secret".to_vec()));
    let counts = store.counts().await.expect("counts");
    assert_eq!((counts.users, counts.messages, counts.follows, counts.flagged), (2, 2, 1, 1));
    assert!(user(&store, "carol").await.id > bob.id, "user ids continue after reopening");
    assert!(post(&store, &alice, "later", 7).await > hidden, "message ids continue");
}

#[tokio::test]
async fn a_store_in_use_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = open(dir.path());
    let Err(err) = SledStore::open(dir.path(), SledOptions::default()) else {
        panic!("a second open of a store in use must fail");
    };
    assert!(matches!(err, OpenError::Locked { .. }), "{err:?}");
    let expected = format!(
        "the sled store at {} is in use (by this or another process)",
        dir.path().display()
    );
    assert_eq!(err.to_string(), expected);
    drop(first);
    open(dir.path());
}

#[tokio::test]
async fn another_format_version_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(dir.path()));
    {
        label_format(&raw_sled(dir.path()), 5);
    }
    let Err(err) = SledStore::open(dir.path(), SledOptions::default()) else {
        panic!("a store of format version 5 must be refused");
    };
    assert!(matches!(err, OpenError::UnsupportedFormat { found: 5, supported: 4, .. }), "{err:?}");
    assert!(err.to_string().contains("has format version 5; this build reads version 4"));
}

/// A record key as the store writes it: the id big-endian with the sign bit flipped.
fn id_key(id: i64) -> [u8; 8] {
    ((id as u64) ^ (1 << 63)).to_be_bytes()
}

/// A pair key as the store writes it.
fn pair_key(first: i64, second: i64) -> Vec<u8> {
    [id_key(first), id_key(second)].concat()
}

/// Lists every message in `author_msgs`, as formats before 4 did.
fn list_every_message_in_author_msgs(db: &sled::Db, messages: &[Message]) {
    let author_msgs = db.open_tree("author_msgs").expect("author_msgs");
    for m in messages {
        author_msgs.insert(pair_key(m.author_id.0, m.id.0), &[][..]).expect("write");
    }
}

/// Labels a closed store with format `version`, durably.
fn label_format(db: &sled::Db, version: i64) {
    let meta = db.open_tree("meta").expect("meta tree");
    meta.insert("format_version", &version.to_be_bytes()[..]).expect("write");
    db.flush().expect("flush");
}

/// How many entries `author_msgs` holds in a closed store.
fn author_msgs_entries(db: &sled::Db) -> usize {
    db.open_tree("author_msgs").expect("author_msgs").len()
}

/// The format version recorded in a closed store.
fn recorded_version(db: &sled::Db) -> i64 {
    let bytes = db.open_tree("meta").expect("meta").get("format_version").expect("read");
    i64::from_be_bytes(bytes.expect("a version").as_ref().try_into().expect("8 bytes"))
}

#[tokio::test]
async fn a_format_1_store_with_json_records_is_read_written_and_upgraded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (users, messages, pages) = {
        let store = open(dir.path());
        let (a, b) = (user(&store, "alice").await, user(&store, "Bøb Å {").await);
        store.set_disabled(b.id, true).await.expect("disable");
        store.follow(a.id, b.id).await.expect("follow");
        let mut ids = Vec::new();
        for (n, author) in [&a, &b, &a, &b].into_iter().enumerate() {
            ids.push(post(&store, author, &format!("m{n} <&> 🦀 {{\"x\"}}"), n as i64).await);
        }
        store.set_flagged(ids[1], true).await.expect("flag");
        let mut users = Vec::new();
        for id in [a.id, b.id] {
            users.push(store.user_by_id(id).await.expect("read").expect("a user"));
        }
        let mut messages = Vec::new();
        for &id in &ids {
            messages.push(store.message_by_id(id).await.expect("read").expect("a message"));
        }
        let mut pages = Vec::new();
        for timeline in [Timeline::Public, Timeline::User(b.id), Timeline::Home(a.id)] {
            pages.push(store.timeline(timeline, None, 10).await.expect("read"));
        }
        (users, messages, pages)
    };
    // Rewrite every record as the JSON of format 1, empty the timeline index values as
    // format 1 had them, and record format 1.
    {
        let db = raw_sled(dir.path());
        let users_tree = db.open_tree("users").expect("users");
        for u in &users {
            let json = serde_json::to_vec(u).expect("json");
            let old = users_tree.insert(id_key(u.id.0), json).expect("write").expect("present");
            assert_ne!(old.first(), Some(&b'{'), "this build writes binary records");
        }
        let messages_tree = db.open_tree("messages").expect("messages");
        for m in &messages {
            let json = serde_json::to_vec(m).expect("json");
            messages_tree.insert(id_key(m.id.0), json).expect("write").expect("present");
        }
        for index in ["public_idx", "author_idx"] {
            let tree = db.open_tree(index).expect("index");
            let keys: Vec<_> = tree.iter().keys().map(|k| k.expect("key")).collect();
            assert!(!keys.is_empty());
            for key in keys {
                tree.insert(key, &[][..]).expect("write");
            }
        }
        list_every_message_in_author_msgs(&db, &messages);
        assert_eq!(recorded_version(&db), i64::from(minitwit_store_sled::FORMAT_VERSION));
        label_format(&db, 1);
    }
    {
        let store = open(dir.path());
        for u in &users {
            assert_eq!(store.user_by_id(u.id).await.expect("read").as_ref(), Some(u));
            assert_eq!(store.user_by_name(&u.username).await.expect("read").as_ref(), Some(u));
        }
        for m in &messages {
            assert_eq!(store.message_by_id(m.id).await.expect("read").as_ref(), Some(m));
        }
        let (a, b) = (&users[0], &users[1]);
        for (timeline, page) in
            [Timeline::Public, Timeline::User(b.id), Timeline::Home(a.id)].into_iter().zip(&pages)
        {
            assert_eq!(&store.timeline(timeline, None, 10).await.expect("read"), page);
        }
        assert_eq!(store.followees(a.id, 10).await.expect("read"), [b.username.as_str()]);
        let report = store.check_integrity().await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
        // Writes over JSON records: unflag, change a user, delete a user with messages.
        store.set_flagged(messages[1].id, false).await.expect("unflag");
        store.set_disabled(b.id, false).await.expect("enable");
        assert!(!store.user_by_id(b.id).await.expect("read").expect("b").disabled);
        assert_eq!(store.timeline(Timeline::Public, None, 10).await.expect("read").len(), 4);
        assert!(store.delete_user(a.id).await.expect("delete"));
        assert_eq!(texts(&store, Timeline::Public).await.len(), 2);
        let report = store.check_integrity().await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
    }
    let db = raw_sled(dir.path());
    assert_eq!(
        recorded_version(&db),
        i64::from(minitwit_store_sled::FORMAT_VERSION),
        "opening upgrades the recorded version"
    );
    assert_eq!(author_msgs_entries(&db), 0, "no message is flagged any more");
}

#[tokio::test]
async fn a_format_3_store_lists_only_flagged_messages_in_author_msgs_once_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (alice, ids, messages) = {
        let store = open(dir.path());
        let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
        let mut ids = Vec::new();
        for (n, author) in [&alice, &alice, &bob, &alice].into_iter().enumerate() {
            ids.push(post(&store, author, &format!("m{n}"), 10 - n as i64).await);
        }
        store.set_flagged(ids[1], true).await.expect("flag");
        let mut messages = Vec::new();
        for &id in &ids {
            messages.push(store.message_by_id(id).await.expect("read").expect("a message"));
        }
        (alice, ids, messages)
    };
    {
        let db = raw_sled(dir.path());
        assert_eq!(author_msgs_entries(&db), 1, "format 4 lists the flagged message alone");
        list_every_message_in_author_msgs(&db, &messages);
        label_format(&db, 3);
    }
    {
        let store = open(dir.path());
        let report = store.check_integrity().await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
        let listed = |before| {
            let filter = MessageFilter { author: Some(alice.id), flagged: None, before, limit: 10 };
            let store = &store;
            async move {
                let found = store.list_messages(filter).await.expect("list");
                found.into_iter().map(|m| m.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(listed(None).await, [ids[3], ids[1], ids[0]], "newest id first, flagged too");
        assert_eq!(listed(Some(ids[3])).await, [ids[1], ids[0]]);
        assert!(store.delete_user(alice.id).await.expect("delete"));
        for id in [ids[0], ids[1], ids[3]] {
            assert_eq!(store.message_by_id(id).await.expect("read"), None, "{id} deleted");
        }
        let report = store.check_integrity().await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
    }
    let db = raw_sled(dir.path());
    assert_eq!(recorded_version(&db), i64::from(minitwit_store_sled::FORMAT_VERSION));
    assert_eq!(author_msgs_entries(&db), 0);
}

#[tokio::test]
async fn the_integrity_check_passes_after_every_kind_of_change_and_finds_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let store = open(dir.path());
        let (a, b, c) = (user(&store, "a").await, user(&store, "b").await, user(&store, "c").await);
        store.follow(a.id, b.id).await.expect("follow");
        store.follow(c.id, b.id).await.expect("follow");
        store.follow(b.id, c.id).await.expect("follow");
        let m = post(&store, &b, "b1", 1).await;
        post(&store, &c, "c1", 2).await;
        post(&store, &a, "a1", 3).await;
        store.set_flagged(m, true).await.expect("flag");
        store.delete_user(c.id).await.expect("delete");
        store.unfollow(a.id, b.id).await.expect("unfollow");
        let report = store.check_integrity().await.expect("check");
        assert!(report.is_consistent(), "{:?}", report.problems);
        assert_eq!((report.users, report.messages, report.follows, report.flagged), (2, 2, 0, 1));
    }
    {
        let db = raw_sled(dir.path());
        let public = db.open_tree("public_idx").expect("public index");
        let (key, _) = public.pop_max().expect("read").expect("one public entry");
        db.open_tree("follows").expect("follows").insert(&key[..], &[][..]).expect("write");
        db.flush().expect("flush");
    }
    let report = open(dir.path()).check_integrity().await.expect("check");
    assert!(!report.is_consistent());
    let problems = report.problems.join("\n");
    assert!(problems.contains("indexed as public false"), "{problems}");
    assert!(problems.contains("missing from followers"), "{problems}");
    assert!(problems.contains("counters"), "{problems}");
}

#[tokio::test]
async fn dates_before_1970_and_far_ahead_keep_their_order() {
    let (store, _dir) = minitwit_store_sled::testkit::fresh_store().await;
    let u = user(&*store, "u").await;
    for (text, date) in
        [("zero", 0), ("far", i64::MAX), ("past", -5), ("ancient", i64::MIN), ("3", 3)]
    {
        post(&*store, &u, text, date).await;
    }
    let expected = ["far", "3", "zero", "past", "ancient"];
    assert_eq!(texts(&*store, Timeline::Public).await, expected);
    assert_eq!(texts(&*store, Timeline::User(u.id)).await, expected);
    let after_zero = Cursor { pub_date: 0, id: MessageId(i64::MAX) };
    let older = store.timeline(Timeline::Home(u.id), Some(after_zero), 10).await.expect("read");
    let older: Vec<_> = older.into_iter().map(|e| e.text).collect();
    assert_eq!(older, ["zero", "past", "ancient"]);
}

#[tokio::test]
async fn relaxed_writes_are_kept_after_an_explicit_flush() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let options = SledOptions { durability: Durability::Relaxed, ..SledOptions::default() };
        let store = SledStore::open(dir.path(), options).expect("opening relaxed");
        assert_eq!(store.durability(), Durability::Relaxed);
        let a = user(&store, "a").await;
        post(&store, &a, "quick", 1).await;
        store.flush().await.expect("flush");
    }
    assert_eq!(texts(&open(dir.path()), Timeline::Public).await, ["quick"]);
}

#[tokio::test]
async fn a_relaxed_store_keeps_no_redo_log_but_applies_a_durable_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let relaxed = SledOptions { durability: Durability::Relaxed, ..SledOptions::default() };
    let log = dir.path().join("redo.log");
    {
        let store = SledStore::open(dir.path(), relaxed).expect("opening relaxed");
        let a = user(&store, "a").await;
        post(&store, &a, "relaxed", 1).await;
        store.flush().await.expect("flush");
    }
    assert!(!log.exists(), "a relaxed store writes to sled directly, with no redo log");
    {
        let store = open(dir.path());
        let a = store.user_by_name("a").await.expect("reads").expect("a is there");
        post(&store, &a, "durable", 2).await;
    }
    assert!(log.exists(), "a durable store keeps one");
    let store = SledStore::open(dir.path(), relaxed).expect("opening relaxed again");
    assert_eq!(texts(&store, Timeline::Public).await, ["durable", "relaxed"]);
}

#[tokio::test]
async fn following_oneself_does_not_repeat_home_entries() {
    let (store, _dir) = minitwit_store_sled::testkit::fresh_store().await;
    let u = user(&*store, "narcissus").await;
    store.follow(u.id, u.id).await.expect("a store accepts any pair of existing users");
    post(&*store, &u, "me", 1).await;
    assert_eq!(texts(&*store, Timeline::Home(u.id)).await, ["me"]);
}

/// Reads a whole timeline in pages of `size`.
async fn all_pages(store: &dyn Store, timeline: Timeline, size: usize) -> Vec<TimelineEntry> {
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.timeline(timeline, before, size).await.expect("reading a page");
        let Some(last) = page.last() else { return seen };
        before = Some(Cursor::after(last));
        seen.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelines_match_the_model_on_a_larger_data_set() {
    let (sled, _dir) = minitwit_store_sled::testkit::fresh_store().await;
    let model: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let stores = [&sled, &model];
    let mut users = Vec::new();
    for i in 0..12 {
        let mut created = Vec::new();
        for store in stores {
            created.push(user(&**store, &format!("user{i}")).await);
        }
        users.push(created.swap_remove(0));
    }
    for (i, follower) in users.iter().enumerate() {
        for followee in users.iter().skip(i % 3).step_by(i % 4 + 2) {
            for store in stores {
                store.follow(follower.id, followee.id).await.expect("follow");
            }
        }
    }
    for n in 0..300_i64 {
        let author = &users[(n * 7 % 12) as usize];
        let date = n / 5 + (n % 3) * 10;
        for store in stores {
            let id = post(&**store, author, &format!("m{n}"), date).await;
            if n % 11 == 0 {
                store.set_flagged(id, true).await.expect("flag");
            }
        }
    }
    let mut timelines = vec![Timeline::Public];
    timelines.extend(users.iter().flat_map(|u| [Timeline::User(u.id), Timeline::Home(u.id)]));
    for timeline in timelines {
        for size in [1, 13, 30] {
            let got = all_pages(&*sled, timeline, size).await;
            let expected = all_pages(&*model, timeline, size).await;
            assert_eq!(got, expected, "{timeline:?} in pages of {size}");
        }
    }
}

#[tokio::test]
async fn deleting_a_user_forgets_their_cached_name_and_email() {
    let (store, _dir) = minitwit_store_sled::testkit::fresh_store().await;
    let (old, reader) = (user(&*store, "old").await, user(&*store, "reader").await);
    store.follow(reader.id, old.id).await.expect("follow");
    post(&*store, &old, "before", 1).await;
    // Timelines and follow listings fill the author cache.
    let page = store.timeline(Timeline::Public, None, 10).await.expect("read");
    assert_eq!((page[0].author.as_str(), page[0].email.as_str()), ("old", "old@example.com"));
    assert_eq!(store.followees(reader.id, 10).await.expect("read"), ["old"]);
    assert!(store.delete_user(old.id).await.expect("delete"));
    // The only way an id comes back: an import of a different user under it.
    let new = User {
        id: old.id,
        username: "new".to_owned(),
        email: "new@example.com".to_owned(),
        pw_hash: "hash".to_owned(),
        disabled: false,
    };
    let message = Message {
        id: MessageId(1000),
        author_id: old.id,
        text: "after".to_owned(),
        pub_date: 2,
        flagged: false,
    };
    let follow = Follow { follower: reader.id, followee: old.id };
    let batch = ImportBatch { users: vec![new], messages: vec![message], follows: vec![follow] };
    store.import(batch).await.expect("import");
    let page = store.timeline(Timeline::Home(reader.id), None, 10).await.expect("read");
    let shown: Vec<_> =
        page.iter().map(|e| (e.author.as_str(), e.email.as_str(), e.text.as_str())).collect();
    assert_eq!(shown, [("new", "new@example.com", "after")]);
    assert_eq!(store.followees(reader.id, 10).await.expect("read"), ["new"]);
}
