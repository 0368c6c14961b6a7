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

use minitwit_core::idempotency::{FollowChange, IdempotencyKey, Keyed, Outcome};
use minitwit_core::store::ByName;
use minitwit_core::store::StoreError;
use minitwit_core::{Email, Username, model::NewUser};
use minitwit_core::{HashCost, MessageFilter, MessageId, MessageText, MiniTwit, PageSize};
use minitwit_core::{ServiceError, Store, User, UserId};
use minitwit_store_pg::testkit::TestDatabase;
use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Once};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The target of sqlx's event for every statement it runs.
const STATEMENT_TARGET: &str = "sqlx::query";

/// Whether an event's fields mention the feed's announcements.
#[derive(Default)]
struct Announces(bool);

impl Visit for Announces {
    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        self.0 |= format!("{value:?}").contains("pg_notify");
    }
}

thread_local! {
    /// How many statements this thread has run since [`statements`] last began counting.
    static STATEMENTS: Cell<usize> = const { Cell::new(0) };
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
        let mut announces = Announces::default();
        event.record(&mut announces);
        if event.metadata().target() == STATEMENT_TARGET && !announces.0 {
            STATEMENTS.with(|count| count.set(count.get() + 1));
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
    assert_eq!(n, 1, "32 posts by name waiting together");
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
    // Each author's posts stored once, each under the id it was answered with, in the
    // order they were sent: the newest is the one sent last.
    assert_eq!(messages_of(&store, bob.id).await, stored[0]);
    assert_eq!(messages_of(&store, alice.id).await, stored[1]);
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
    let texts: Vec<String> = ["one", "poison", "two"].map(String::from).to_vec();

    let (n, answers) = post_together(&store, &["bob"; 3], &texts).await;
    assert_eq!(n, 4, "the three together, then each alone");
    assert!(matches!(answers[1], Err(StoreError::Backend(_))), "{:?}", answers[1]);
    let stored: Vec<(String, MessageId)> = [(0, "one"), (2, "two")]
        .map(|(at, posted)| match answers[at] {
            Ok(ByName::Done(id)) => (posted.to_owned(), id),
            ref other => panic!("{posted}: {other:?}"),
        })
        .to_vec();
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
