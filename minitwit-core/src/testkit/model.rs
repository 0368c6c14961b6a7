//! The model test: random sequences of operations run against a backend and against
//! [`MemoryStore`] side by side; every observable answer must be the same.
//!
//! Ids are compared only through what they order: a backend may skip ids (a PostgreSQL
//! sequence does after a failed insert), so users are named and messages are matched by
//! the order in which they were posted.

use super::MemoryStore;
use crate::model::{Cursor, MessageId, NewMessage, NewUser, Timeline, TimelineEntry, UserId};
use crate::store::{ByName, StoreError};
use crate::{Email, MessageText, Store, Username};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::future::Future;
use std::sync::Arc;

/// Names the generated operations draw from: spaces, case and non-ASCII included.
const NAMES: &[&str] = &["alice", "Alice", "Roger Histand", "Åse Ødegård", "李小龍", "bob"];
/// Texts the generated posts draw from.
const TEXTS: &[&str] = &["hello", "<b>&amp;</b>", "\"quoted\" 'too'", "🦀🚀", "tab\tnew\nline"];

/// Which timeline an operation reads.
#[derive(Debug, Clone, Copy)]
enum Which {
    Public,
    User(usize),
    Home(usize),
}

/// One generated operation. User and message operands index into [`NAMES`] and into
/// the list of messages posted so far.
#[derive(Debug, Clone)]
enum Op {
    Register(usize),
    Post { user: usize, text: usize, pub_date: i64 },
    Follow(usize, usize),
    Unfollow(usize, usize),
    Flag { message: usize, flagged: bool },
    Delete(usize),
    Read { which: Which, page: usize },
    Followees { user: usize, limit: usize },
    FolloweesByName { user: usize, limit: usize },
    PostByName { user: usize, text: usize, pub_date: i64 },
    UserWithGeneration(usize),
    IsFollowing(usize, usize),
    Counts,
    SetLatest(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..NAMES.len();
    let which = prop_oneof![
        Just(Which::Public),
        user.clone().prop_map(Which::User),
        user.clone().prop_map(Which::Home),
    ];
    prop_oneof![
        2 => user.clone().prop_map(Op::Register),
        4 => (user.clone(), 0..TEXTS.len(), 0..6i64)
            .prop_map(|(user, text, pub_date)| Op::Post { user, text, pub_date }),
        3 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Follow(a, b)),
        2 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        1 => (0..64usize, any::<bool>()).prop_map(|(message, flagged)| Op::Flag { message, flagged }),
        1 => user.clone().prop_map(Op::Delete),
        3 => (which, 1..6usize).prop_map(|(which, page)| Op::Read { which, page }),
        1 => (user.clone(), 0..4usize).prop_map(|(user, limit)| Op::Followees { user, limit }),
        1 => (user.clone(), 0..4usize)
            .prop_map(|(user, limit)| Op::FolloweesByName { user, limit }),
        2 => (user.clone(), 0..TEXTS.len(), 0..6i64)
            .prop_map(|(user, text, pub_date)| Op::PostByName { user, text, pub_date }),
        1 => user.clone().prop_map(Op::UserWithGeneration),
        1 => (user.clone(), user).prop_map(|(a, b)| Op::IsFollowing(a, b)),
        1 => Just(Op::Counts),
        1 => any::<i64>().prop_map(Op::SetLatest),
    ]
}

/// Operations that build up home timelines: mostly posts, follows and home reads, with
/// unfollows, flags and deletions among them, so that a short sequence fills small kept
/// home timelines past their bound and makes authors cross a small fan-out limit.
fn timeline_op() -> impl Strategy<Value = Op> {
    let user = 0..NAMES.len();
    let which = prop_oneof![
        4 => user.clone().prop_map(Which::Home),
        1 => user.clone().prop_map(Which::User),
    ];
    prop_oneof![
        1 => user.clone().prop_map(Op::Register),
        6 => (user.clone(), 0..TEXTS.len(), 0..6i64)
            .prop_map(|(user, text, pub_date)| Op::Post { user, text, pub_date }),
        4 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Follow(a, b)),
        2 => (user.clone(), user.clone()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        2 => (0..64usize, any::<bool>()).prop_map(|(message, flagged)| Op::Flag { message, flagged }),
        1 => user.clone().prop_map(Op::Delete),
        4 => (which, 1..6usize).prop_map(|(which, page)| Op::Read { which, page }),
    ]
}

/// One side of the comparison: a store and the ids it gave out.
struct Side {
    store: Arc<dyn Store>,
    users: Vec<Option<UserId>>,
    messages: Vec<MessageId>,
}

/// A timeline read page by page: (author, text, pub_date) per entry.
type Pages = Vec<Vec<(String, String, i64)>>;

/// An observable answer, with ids replaced by what they mean.
#[derive(Debug, PartialEq)]
enum Answer {
    Unit(Result<(), StoreError>),
    Bool(Result<bool, StoreError>),
    Names(Result<Vec<String>, StoreError>),
    NamesByName(Result<Option<Vec<String>>, StoreError>),
    PostedByName(Result<ByName<()>, StoreError>),
    /// A user's name and disabled flag, and their session generation.
    UserWithGeneration(Result<Option<(String, bool, i64)>, StoreError>),
    Pages(Result<Pages, StoreError>),
    Counts(Result<crate::Counts, StoreError>),
    Latest(Result<Option<i64>, StoreError>),
}

impl Side {
    fn new(store: Arc<dyn Store>) -> Self {
        Self { store, users: vec![None; NAMES.len()], messages: Vec::new() }
    }

    /// Runs `op`; `None` when the operation does not apply (a user not registered yet).
    async fn apply(&mut self, op: &Op) -> Option<Answer> {
        let s = Arc::clone(&self.store);
        Some(match *op {
            Op::Register(u) => {
                let user = NewUser {
                    username: Username::parse(NAMES[u]).ok()?,
                    email: Email::parse(&format!("{u}@example.com")).ok()?,
                    pw_hash: format!("hash{u}"),
                };
                let created = s.create_user(user).await;
                if let Ok(user) = &created {
                    self.users[u] = Some(user.id);
                }
                Answer::Unit(created.map(|_| ()))
            }
            Op::Post { user, text, pub_date } => {
                let author_id = self.users[user]?;
                let text = MessageText::parse(TEXTS[text]).ok()?;
                let posted = s.add_message(NewMessage { author_id, text, pub_date }).await;
                if let Ok(id) = posted {
                    self.messages.push(id);
                }
                Answer::Unit(posted.map(|_| ()))
            }
            Op::Follow(a, b) => Answer::Unit(s.follow(self.users[a]?, self.users[b]?).await),
            Op::Unfollow(a, b) => Answer::Unit(s.unfollow(self.users[a]?, self.users[b]?).await),
            Op::Flag { message, flagged } => {
                let id = *self.messages.get(message)?;
                Answer::Bool(s.set_flagged(id, flagged).await)
            }
            Op::Delete(u) => {
                let deleted = s.delete_user(self.users[u]?).await;
                if deleted.is_ok() {
                    self.users[u] = None;
                }
                Answer::Bool(deleted)
            }
            Op::Read { which, page } => {
                let timeline = match which {
                    Which::Public => Timeline::Public,
                    Which::User(u) => Timeline::User(self.users[u]?),
                    Which::Home(u) => Timeline::Home(self.users[u]?),
                };
                Answer::Pages(read_pages(&s, timeline, page).await)
            }
            Op::Followees { user, limit } => {
                Answer::Names(s.followees(self.users[user]?, limit).await)
            }
            Op::FolloweesByName { user, limit } => {
                Answer::NamesByName(s.followees_by_name(NAMES[user], limit).await)
            }
            Op::PostByName { user, text, pub_date } => {
                let text = MessageText::parse(TEXTS[text]).ok()?;
                let posted = s.add_message_by_name(NAMES[user], text, pub_date).await;
                if let Ok(ByName::Done(id)) = posted {
                    self.messages.push(id);
                }
                Answer::PostedByName(posted.map(|by_name| match by_name {
                    ByName::UnknownUser => ByName::UnknownUser,
                    ByName::Disabled => ByName::Disabled,
                    ByName::Done(_) => ByName::Done(()),
                }))
            }
            Op::UserWithGeneration(u) => {
                let read = s.user_with_generation(self.users[u]?).await;
                Answer::UserWithGeneration(read.map(|found| {
                    found.map(|(user, generation)| (user.username, user.disabled, generation))
                }))
            }
            Op::IsFollowing(a, b) => {
                Answer::Bool(s.is_following(self.users[a]?, self.users[b]?).await)
            }
            Op::Counts => Answer::Counts(s.counts().await),
            Op::SetLatest(n) => {
                let set = s.set_latest(n).await;
                Answer::Latest(set.and(s.latest().await))
            }
        })
    }
}

/// Reads a whole timeline in pages of `size`, as (author, text, date) per entry.
async fn read_pages(
    store: &Arc<dyn Store>,
    timeline: Timeline,
    size: usize,
) -> Result<Pages, StoreError> {
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page: Vec<TimelineEntry> = store.timeline(timeline, before, size).await?;
        let Some(last) = page.last() else { return Ok(pages) };
        before = Some(Cursor::after(last));
        pages.push(page.into_iter().map(|e| (e.author, e.text, e.pub_date)).collect());
    }
}

/// Runs `cases` random operation sequences (up to 40 operations each) against a fresh
/// store from `make` and the reference model, and panics with the shrunk sequence at
/// the first difference. Call it from a plain `#[test]`: it runs its own runtime.
pub fn check_against_model<F, Fut, G>(cases: u32, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, G)>,
{
    run_against_model(cases, proptest::collection::vec(op(), 1..40), make);
}

/// [`check_against_model`] with sequences (up to 80 operations) that register every
/// name first and then mostly post, follow and read home timelines: a backend's kept
/// home timelines must answer as the model's merge does, across their bound and the
/// fan-out limit.
pub fn check_timelines_against_model<F, Fut, G>(cases: u32, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, G)>,
{
    let registrations: Vec<Op> = (0..NAMES.len()).map(Op::Register).collect();
    let ops = proptest::collection::vec(timeline_op(), 1..80)
        .prop_map(move |ops| registrations.iter().cloned().chain(ops).collect::<Vec<_>>());
    run_against_model(cases, ops, make);
}

/// Runs `cases` sequences from `ops` against fresh stores from `make` and the model.
fn run_against_model<S, F, Fut, G>(cases: u32, ops: S, make: F)
where
    S: Strategy<Value = Vec<Op>>,
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, G)>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the model test");
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&ops, |ops| {
        runtime.block_on(async {
            let (store, _guard) = make().await;
            let mut backend = Side::new(store);
            let mut model = Side::new(Arc::new(MemoryStore::new()));
            for (step, op) in ops.iter().enumerate() {
                let expected = model.apply(op).await;
                let actual = backend.apply(op).await;
                if actual != expected {
                    return Err(TestCaseError::fail(format!(
                        "step {step} {op:?}: backend answered {actual:?}, model {expected:?}, \
                         after {:?}",
                        &ops[..step]
                    )));
                }
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("the backend differs from the model: {failure}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_agrees_with_itself() {
        check_against_model(32, || async { (Arc::new(MemoryStore::new()) as Arc<dyn Store>, ()) });
    }
}
