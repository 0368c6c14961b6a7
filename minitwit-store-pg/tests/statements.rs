//! One statement per request (issue 22): the calls that combine a look-up with what
//! follows it cost PostgreSQL one statement each, where the calls they stand for cost
//! two. Statements are counted from sqlx's own record of each one it runs (a
//! `sqlx::query` event), on this test's thread: the runtime has one thread, so every
//! statement of the calls below, spawned writes included, runs on it. Announcements on
//! the change feed are left out: they are no request's, but a batch of changes at a time
//! from a task of the store's own (`pg_notify`; see the crate's `feed`).
//!
//! The counter is the process's one global subscriber, counting per thread. A
//! subscriber set per test (`set_default`) missed statements: tracing caches whether a
//! call site is wanted when the site is first reached, and while one test's subscriber
//! was the only one, a site first reached by the other test's thread, which had none
//! yet, was cached as unwanted for both, until the next subscriber was set.

// A test: a call that fails must fail it, helpers included.
#![allow(clippy::unwrap_used)]

use minitwit_core::idempotency::{self, FollowChange, IdempotencyKey, Keyed, Outcome, Receipt};
use minitwit_core::store::ByName;
use minitwit_core::store::StoreError;
use minitwit_core::{Email, Username, model::NewUser};
use minitwit_core::{HashCost, MessageFilter, MessageId, MessageText, MiniTwit, PageSize};
use minitwit_core::{ServiceError, Store, User, UserId};
use minitwit_store_pg::testkit::{KEYED_WRITES_IN_FLIGHT, POSTS_IN_FLIGHT, TestDatabase};
use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Once};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The target of sqlx's event for every statement it runs.
const STATEMENT_TARGET: &str = "sqlx::query";

/// Whether an event's fields mention the feed's announcements, or a batch's arrays.
#[derive(Default)]
struct Seen {
    announces: bool,
    batch: bool,
}

impl Visit for Seen {
    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}");
        self.announces |= value.contains("pg_notify");
        self.batch |= value.contains("unnest(");
    }
}

thread_local! {
    /// How many statements this thread has run since [`statements`] last began counting.
    static STATEMENTS: Cell<usize> = const { Cell::new(0) };
    /// How many of them stored a batch of writes.
    static BATCHES: Cell<usize> = const { Cell::new(0) };
}

/// Counts sqlx's statement events, but announcements, on the thread that runs them;
/// sees nothing else.
struct StatementCounter;

impl Subscriber for StatementCounter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == STATEMENT_TARGET
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut seen = Seen::default();
        event.record(&mut seen);
        if event.metadata().target() == STATEMENT_TARGET && !seen.announces {
            STATEMENTS.with(|count| count.set(count.get() + 1));
            BATCHES.with(|count| count.set(count.get() + usize::from(seen.batch)));
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Makes [`StatementCounter`] the process's subscriber, once.
fn count_statements() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(StatementCounter)
            .expect("no other subscriber in this test binary");
    });
}

/// How many statements `call` ran on this thread, and its answer.
async fn statements<T>(call: impl Future<Output = T>) -> (usize, T) {
    STATEMENTS.with(|count| count.set(0));
    BATCHES.with(|count| count.set(0));
    let answer = call.await;
    (STATEMENTS.with(Cell::get), answer)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse("someone@example.com").unwrap(),
        pw_hash: "hash".into(),
    }
}

fn keyed(key: &str) -> Keyed {
    Keyed::new("api:sim", IdempotencyKey::parse(key).unwrap(), &[key.as_bytes()], 204, vec![])
}

fn text(text: &str) -> MessageText {
    MessageText::parse(text).unwrap()
}

/// A fresh store holding alice and bob, and the service over it.
struct AliceAndBob {
    store: Arc<dyn Store>,
    twit: MiniTwit,
    alice: User,
    bob: User,
    _db: TestDatabase,
}

impl AliceAndBob {
    async fn new() -> Self {
        let (store, _db) = minitwit_store_pg::testkit::fresh_store().await;
        let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
        let alice = store.create_user(new_user("alice")).await.unwrap();
        let bob = store.create_user(new_user("bob")).await.unwrap();
        Self { store, twit, alice, bob, _db }
    }
}

#[tokio::test]
async fn a_session_check_a_follow_list_and_a_post_by_name_are_one_statement_each() {
    let AliceAndBob { store, twit, alice, bob, _db } = AliceAndBob::new().await;
    store.follow(alice.id, bob.id).await.unwrap();
    store.bump_session_generation(alice.id).await.unwrap();
    count_statements();
    let size = PageSize::new(10);
    // Each statement once first: its first run on a connection may ask more (preparing).
    store.user_with_generation(alice.id).await.unwrap();
    store.followees_by_name("alice", 10).await.unwrap();
    store.add_message_by_name("bob", text("warm"), 1).await.unwrap();
    let warm = keyed("warm");
    store.apply_once_by_name(&warm.key, &warm.receipt, 0, "bob", text("warm"), 1).await.unwrap();
    store.user_by_id(alice.id).await.unwrap();
    store.session_generation(alice.id).await.unwrap();
    store.user_by_name("alice").await.unwrap();
    store.followees(alice.id, 10).await.unwrap();

    // The counter counts: the two calls a session check used to make are two.
    let (two, _) = statements(async {
        store.user_by_id(alice.id).await.unwrap();
        store.session_generation(alice.id).await.unwrap()
    })
    .await;
    assert_eq!(two, 2, "the counter sees each statement");

    let (n, found) = statements(twit.user_with_generation(alice.id)).await;
    assert_eq!((n, found.unwrap()), (1, Some((alice.clone(), 1))), "a session check");

    let (n, follows) = statements(twit.followees_at("alice", size)).await;
    assert_eq!((n, follows.unwrap()), (1, vec!["bob".to_owned()]), "GET /fllws/alice");
    let (n, unknown) = statements(store.followees_by_name("nobody", 10)).await;
    assert_eq!((n, unknown), (1, Ok(None)), "an unknown user's list");

    let (n, posted) = statements(twit.post_once_at("bob", text("hi"), None)).await;
    assert_eq!((n, posted.unwrap()), (1, Outcome::Applied), "POST /msgs/bob");
    let sent = keyed("k1");
    let (n, posted) = statements(twit.post_once_at("bob", text("hi"), Some(sent))).await;
    assert_eq!((n, posted.unwrap()), (1, Outcome::Applied), "POST /msgs/bob, keyed");
    let (n, unknown) = statements(store.add_message_by_name("nobody", text("x"), 1)).await;
    assert_eq!((n, unknown), (1, Ok(ByName::UnknownUser)), "a post by nobody");
    store.set_disabled(bob.id, true).await.unwrap();
    let (n, disabled) = statements(store.add_message_by_name("bob", text("x"), 1)).await;
    assert_eq!((n, disabled), (1, Ok(ByName::Disabled)), "a post by a disabled user");
}

#[tokio::test]
async fn a_follow_or_unfollow_by_names_is_one_statement_keyed_or_not() {
    let AliceAndBob { store, twit, alice, bob, _db } = AliceAndBob::new().await;
    count_statements();
    // Each statement once first: its first run on a connection may ask more (preparing).
    for (change, key) in [(FollowChange::Follow, "warm1"), (FollowChange::Unfollow, "warm2")] {
        twit.change_follow_at("alice", "bob", change, None).await.unwrap();
        twit.change_follow_at("alice", "bob", change, Some(keyed(key))).await.unwrap();
    }

    for (change, following) in [(FollowChange::Follow, true), (FollowChange::Unfollow, false)] {
        let call = twit.change_follow_at("alice", "bob", change, None);
        let (n, changed) = statements(call).await;
        assert_eq!((n, changed.unwrap()), (1, Outcome::Applied), "{change:?}");
        assert_eq!(store.is_following(alice.id, bob.id).await.unwrap(), following);
        let sent = keyed(&format!("{change:?}"));
        let call = twit.change_follow_at("alice", "bob", change, Some(sent.clone()));
        let (n, changed) = statements(call).await;
        assert_eq!((n, changed.unwrap()), (1, Outcome::Applied), "{change:?}, keyed");
        let call = twit.change_follow_at("alice", "nobody", change, Some(sent));
        let (n, unknown) = statements(call).await;
        assert_eq!((n, unknown), (1, Err(ServiceError::UnknownUser)), "{change:?} of nobody");
    }
}

/// Posts `texts` by the users `names` (the same length) at once, each in a task of its
/// own queued in order before any runs; how many statements they ran, and each answer.
async fn post_together(
    store: &Arc<dyn Store>,
    names: &[&'static str],
    texts: &[String],
) -> (usize, Vec<Result<ByName<MessageId>, StoreError>>) {
    statements(async {
        let mut posting = tokio::task::JoinSet::new();
        for (at, (&name, posted)) in names.iter().zip(texts).enumerate() {
            let (store, posted) = (Arc::clone(store), text(posted));
            posting.spawn(async move { (at, store.add_message_by_name(name, posted, 1).await) });
        }
        let mut answers = posting.join_all().await;
        answers.sort_by_key(|(at, _)| *at);
        answers.into_iter().map(|(_, answer)| answer).collect()
    })
    .await
}

/// The messages of `author`, oldest first, as (text, id).
async fn messages_of(store: &Arc<dyn Store>, author: UserId) -> Vec<(String, MessageId)> {
    let filter = MessageFilter { author: Some(author), flagged: None, before: None, limit: 100 };
    let mut all = store.list_messages(filter).await.unwrap();
    all.reverse();
    all.into_iter().map(|message| (message.text, message.id)).collect()
}

#[tokio::test]
async fn posts_by_name_waiting_together_are_one_statement_each_with_its_own_answer() {
    let AliceAndBob { store, alice, bob, _db, .. } = AliceAndBob::new().await;
    let carol = store.create_user(new_user("carol")).await.unwrap();
    store.set_disabled(carol.id, true).await.unwrap();
    count_statements();
    let names: Vec<&str> =
        ["bob", "alice", "nobody", "carol"].into_iter().cycle().take(32).collect();
    let texts: Vec<String> = (0..32).map(|at| format!("post {at}")).collect();

    let (n, answers) = post_together(&store, &names, &texts).await;
    let batches = BATCHES.with(Cell::get);
    // The first go alone; the rest wait, and are stored by one statement. (How many
    // statements the first took depends on the connections they found: a statement's
    // first run on a connection may ask more.)
    assert_eq!(batches, 1, "32 posts by name waiting together");
    assert!(n < 32, "{n} statements");
    let mut stored = [Vec::new(), Vec::new()];
    for ((name, posted), answer) in names.iter().zip(&texts).zip(answers) {
        match *name {
            "nobody" => assert_eq!(answer, Ok(ByName::UnknownUser), "{posted}"),
            "carol" => assert_eq!(answer, Ok(ByName::Disabled), "{posted}"),
            author => match answer {
                Ok(ByName::Done(id)) => {
                    stored[usize::from(author == "alice")].push((posted.clone(), id))
                }
                other => panic!("{posted} by {author}: {other:?}"),
            },
        }
    }
    // Each author's posts stored once, each under the id it was answered with.
    let [bobs, alices] = stored;
    for (author, mut answered) in [(bob.id, bobs), (alice.id, alices)] {
        answered.sort_by_key(|(_, id)| *id);
        assert_eq!(messages_of(&store, author).await, answered);
    }
    assert!(messages_of(&store, carol.id).await.is_empty());
}

#[tokio::test]
async fn a_post_the_database_refuses_fails_alone_and_the_others_of_its_batch_are_stored_once() {
    let (url, _db) = minitwit_store_pg::testkit::fresh_database_url().await;
    let store: Arc<dyn Store> = Arc::new(minitwit_store_pg::testkit::connect(&url).await);
    let bob = store.create_user(new_user("bob")).await.unwrap();
    minitwit_store_pg::testkit::execute(
        &url,
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.text = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
             FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    )
    .await;
    count_statements();
    // The first posts go alone, and the three after them wait together.
    let alone = (0..POSTS_IN_FLIGHT).map(|at| format!("alone {at}"));
    let texts: Vec<String> = alone.chain(["one", "poison", "two"].map(String::from)).collect();
    let poison = POSTS_IN_FLIGHT + 1;
    let (_, answers) = post_together(&store, &vec!["bob"; texts.len()], &texts).await;
    // They waited together; the database refused them together, and each was sent again.
    assert_eq!(BATCHES.with(Cell::get), 1, "the three waited together");
    assert!(matches!(answers[poison], Err(StoreError::Backend(_))), "{:?}", answers[poison]);
    let mut stored: Vec<(String, MessageId)> = texts
        .iter()
        .zip(&answers)
        .filter(|(posted, _)| *posted != "poison")
        .map(|(posted, answer)| match answer {
            Ok(ByName::Done(id)) => (posted.clone(), *id),
            other => panic!("{posted}: {other:?}"),
        })
        .collect();
    stored.sort_by_key(|(_, id)| *id);
    assert_eq!(messages_of(&store, bob.id).await, stored, "stored once each");
}

/// The counter's own guard: another thread, counting nothing, reaches sqlx's record of a
/// statement first (on its own, this test is the binary's first to count). Counted by a
/// subscriber set for this thread alone, the statement after it was not seen.
#[test]
fn a_statement_is_counted_when_another_thread_ran_one_first() {
    let (counting_tx, counting_rx) = std::sync::mpsc::channel();
    let (ran_tx, ran_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        runtime().block_on(async {
            let AliceAndBob { store, alice, _db, .. } = AliceAndBob::new().await;
            counting_rx.recv().expect("the counting thread is waiting");
            store.user_by_id(alice.id).await.unwrap();
            ran_tx.send(()).expect("the counting thread is waiting");
        });
    });
    runtime().block_on(async {
        let AliceAndBob { store, alice, _db, .. } = AliceAndBob::new().await;
        count_statements();
        counting_tx.send(()).expect("the other thread is waiting");
        ran_rx.recv().expect("the other thread ran its statement");
        let (n, _) = statements(store.user_by_id(alice.id)).await;
        assert_eq!(n, 1, "the statement after the other thread's");
    });
    other.join().expect("the other thread ran");
}

/// A runtime of one thread, as `#[tokio::test]` gives.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A keyed post by `name` of `posted`, under `key`, as the simulator's front end sends it.
async fn post_once(store: &Arc<dyn Store>, name: &str, posted: &str, key: &str) -> Answer {
    let sent = keyed(key);
    store.apply_once_by_name(&sent.key, &sent.receipt, 0, name, text(posted), 1).await
}

/// A follow change by names, under `key` if given.
async fn change_once(
    store: &Arc<dyn Store>,
    (follower, followee, change): (&str, &str, FollowChange),
    key: Option<&str>,
) -> Answer {
    let sent = key.map(keyed);
    let once = sent.as_ref().map(|sent| idempotency::Once {
        key: &sent.key,
        receipt: &sent.receipt,
        since: 0,
    });
    store.change_follow_by_names(follower, followee, change, once).await
}

/// What a keyed write by name comes to: applied (`Done(None)`), or answered by the
/// receipt its key holds.
type Answer = Result<ByName<Option<Receipt>>, StoreError>;

/// Keyed posts by bob and keyed follows of bob by carol, one of each kind for every
/// statement a store runs at once: sent first, they take every statement, so that the
/// writes sent after them wait together.
fn fillers() -> impl Iterator<Item = (String, String)> {
    (0..KEYED_WRITES_IN_FLIGHT)
        .map(|at| (format!("filler-post-{at}"), format!("filler-follow-{at}")))
}

/// The answers of spawned writes, in the order they were spawned.
async fn in_order(tasks: tokio::task::JoinSet<(usize, Answer)>) -> Vec<Answer> {
    let mut answers = tasks.join_all().await;
    answers.sort_by_key(|(at, _)| *at);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

#[tokio::test]
async fn keyed_posts_and_follow_changes_waiting_together_are_one_statement_a_kind() {
    let AliceAndBob { store, alice, bob, _db, .. } = AliceAndBob::new().await;
    let carol = store.create_user(new_user("carol")).await.unwrap();
    let dave = store.create_user(new_user("dave")).await.unwrap();
    store.set_disabled(carol.id, true).await.unwrap();
    store.follow(dave.id, bob.id).await.unwrap();
    // Two keys held already: their receipts answer the writes sent under them again.
    assert_eq!(post_once(&store, "bob", "first", "held-post").await, Ok(ByName::Done(None)));
    let unfollow = ("alice", "dave", FollowChange::Unfollow);
    assert_eq!(change_once(&store, unfollow, Some("held-follow")).await, Ok(ByName::Done(None)));
    count_statements();
    let posts = [
        ("bob", "p1"),
        ("alice", "p2"),
        ("bob", "held-post"),
        ("nobody", "p3"),
        ("carol", "p4"),
        ("bob", "p5"),
    ];
    let follows = [
        (("alice", "bob", FollowChange::Follow), Some("f1")),
        (("dave", "bob", FollowChange::Unfollow), Some("f2")),
        (("alice", "dave", FollowChange::Follow), Some("held-follow")),
        (("nobody", "bob", FollowChange::Follow), Some("f3")),
        (("bob", "alice", FollowChange::Follow), None),
    ];
    let (_, (filled, posts, follows)) = statements(async {
        let mut filling = tokio::task::JoinSet::new();
        for (at, (post_key, follow_key)) in fillers().enumerate() {
            let (posting, changing) = (Arc::clone(&store), Arc::clone(&store));
            let change = ("carol", "bob", FollowChange::Follow);
            filling
                .spawn(async move { (at, post_once(&posting, "bob", "filler", &post_key).await) });
            filling.spawn(
                async move { (at, change_once(&changing, change, Some(&follow_key)).await) },
            );
        }
        let mut posting = tokio::task::JoinSet::new();
        for (at, (name, key)) in posts.into_iter().enumerate() {
            let store = Arc::clone(&store);
            posting.spawn(async move { (at, post_once(&store, name, "again", key).await) });
        }
        let mut following = tokio::task::JoinSet::new();
        for (at, (change, key)) in follows.into_iter().enumerate() {
            let store = Arc::clone(&store);
            following.spawn(async move { (at, change_once(&store, change, key).await) });
        }
        (in_order(filling).await, in_order(posting).await, in_order(following).await)
    })
    .await;
    // The writes sent after the fillers waited, and each kind's were stored by one
    // statement. (How many statements the fillers took depends on the connections they
    // found: a statement's first run on a connection may ask more.)
    assert_eq!(BATCHES.with(Cell::get), 2, "each kind's writes waiting together");
    let applied = Ok(ByName::Done(None));
    assert!(filled.iter().all(|answer| *answer == applied), "{filled:?}");
    let replayed = |answer: &Answer| match answer {
        Ok(ByName::Done(Some(receipt))) => receipt.fingerprint,
        other => panic!("{other:?}"),
    };
    let held = |key: &str| keyed(key).receipt.fingerprint;
    assert_eq!([&posts[0], &posts[1], &posts[5]], [&applied; 3], "{posts:?}");
    assert_eq!(replayed(&posts[2]), held("held-post"));
    assert_eq!(posts[3], Ok(ByName::UnknownUser));
    assert_eq!(posts[4], Ok(ByName::Disabled));
    assert_eq!([&follows[0], &follows[1], &follows[4]], [&applied; 3], "{follows:?}");
    assert_eq!(replayed(&follows[2]), held("held-follow"));
    assert_eq!(follows[3], Ok(ByName::UnknownUser));
    // Stored once each, and nothing for the writes a receipt answered.
    // (The fillers and the batch ran at once: their posts' order is any.)
    let texts = |all: Vec<(String, MessageId)>| {
        let mut texts: Vec<String> = all.into_iter().map(|(text, _)| text).collect();
        texts.sort();
        texts
    };
    let mut bobs = vec!["again", "again", "first"];
    bobs.extend(fillers().map(|_| "filler"));
    bobs.sort();
    assert_eq!(texts(messages_of(&store, bob.id).await), bobs);
    assert_eq!(texts(messages_of(&store, alice.id).await), ["again"]);
    assert!(messages_of(&store, carol.id).await.is_empty());
    assert!(store.is_following(alice.id, bob.id).await.unwrap());
    assert!(!store.is_following(dave.id, bob.id).await.unwrap());
    assert!(!store.is_following(alice.id, dave.id).await.unwrap(), "the receipt answered");
    assert!(store.is_following(bob.id, alice.id).await.unwrap());
    assert!(store.is_following(carol.id, bob.id).await.unwrap());
}

#[tokio::test]
async fn a_retry_waiting_beside_its_first_attempt_is_applied_once() {
    let AliceAndBob { store, alice, bob, _db, .. } = AliceAndBob::new().await;
    // Fillers first take every statement, so that both attempts wait in one batch.
    let (posts, follows) = tokio::join!(
        async {
            let store = &store;
            let filled = fillers()
                .map(|(key, _)| async move { post_once(store, "alice", "filler", &key).await });
            let both = [0, 1].map(|_| post_once(store, "bob", "once", "retried-post"));
            let (_, both) =
                tokio::join!(futures::future::join_all(filled), futures::future::join_all(both));
            both
        },
        async {
            let store = &store;
            let filled = fillers().map(|(_, key)| async move {
                change_once(store, ("bob", "alice", FollowChange::Follow), Some(&key)).await
            });
            let change = ("alice", "bob", FollowChange::Follow);
            let both = [0, 1].map(|_| change_once(store, change, Some("retried-follow")));
            let (_, both) =
                tokio::join!(futures::future::join_all(filled), futures::future::join_all(both));
            both
        },
    );
    for (answers, key) in [(posts, "retried-post"), (follows, "retried-follow")] {
        let fingerprint = keyed(key).receipt.fingerprint;
        let mut came_to: Vec<Option<[u8; 32]>> = answers
            .into_iter()
            .map(|answer| match answer {
                Ok(ByName::Done(receipt)) => receipt.map(|receipt| receipt.fingerprint),
                other => panic!("{key}: {other:?}"),
            })
            .collect();
        came_to.sort();
        assert_eq!(came_to, [None, Some(fingerprint)], "{key}: applied once, then its receipt");
    }
    assert_eq!(messages_of(&store, bob.id).await.len(), 1, "the post stored once");
    assert!(store.is_following(alice.id, bob.id).await.unwrap());
}
