//! The store contract as tests. A backend runs all of them with one line:
//!
//! ```ignore
//! minitwit_core::conformance_tests!(my_backend::fresh_store);
//! ```
//!
//! where `fresh_store()` is an async fn returning `(Arc<dyn Store>, guard)`: a new, empty
//! store and whatever must live as long as it (a temporary directory, a database).
//! Each function below is one rule; they panic with a message saying which rule broke.

// This module is a test suite: a store call that fails must fail the test.
#![allow(clippy::unwrap_used)]

use crate::idempotency::{
    FollowChange, IdempotencyKey, Keyed, Once, Outcome, Receipt, ReceiptKey, Write,
};
use crate::model::{
    Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, Timeline,
    TimelineEntry, User, UserId,
};
use crate::store::{ByName, StoreError};
use crate::{HashCost, MessageText, MiniTwit, PageSize, Registration, ServiceError, Store};
use std::sync::Arc;

/// Expands into one `#[tokio::test]` per conformance rule, each on a fresh store from
/// `$make` (an async fn returning `(Arc<dyn Store>, guard)`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            users_are_found_by_exact_name,
            duplicate_username_is_refused,
            concurrent_registrations_create_one_user,
            users_page_by_id,
            password_and_disabled_flag_change,
            session_generations_only_grow_and_go_with_the_user,
            a_user_is_read_with_their_session_generation,
            flagging_several_messages_is_all_or_nothing,
            message_text_is_kept_exactly,
            messages_need_an_existing_author,
            following_twice_leaves_one_pair,
            concurrent_follows_leave_one_pair,
            unfollowing_when_not_following_is_fine,
            follows_need_existing_users,
            followees_are_listed_in_order,
            follow_lists_are_read_by_name,
            posts_by_name_follow_the_authors_state,
            keyed_posts_by_name_apply_once,
            follows_by_names_change_as_by_ids,
            the_service_answers_by_path_segment_as_by_user,
            flagged_messages_are_hidden_everywhere,
            equal_times_are_ordered_by_id,
            pages_have_no_gap_or_duplicate,
            home_timeline_is_self_and_followees,
            unknown_users_have_empty_timelines,
            latest_is_kept,
            settings_are_initialised_once,
            counts_follow_changes,
            deleting_a_user_removes_their_traces,
            export_reads_everything_in_order,
            import_keeps_ids_and_is_all_or_nothing,
            an_import_can_be_removed_and_ended,
            admin_listing_filters_messages,
            service_registers_and_authenticates,
            a_keyed_write_applies_once_and_replays_its_answer,
            a_key_reused_for_another_request_is_refused,
            concurrent_requests_with_one_key_apply_once,
            keys_belong_to_their_caller,
            a_failed_keyed_write_keeps_no_receipt,
            receipts_expire_and_are_forgotten_in_bounded_steps,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make().await;
                $crate::testkit::conformance::$name(store).await;
            }
        )*
    };
}

use super::records::new_user;

async fn user(store: &Arc<dyn Store>, name: &str) -> User {
    super::records::registered(store.as_ref(), name).await
}

async fn post(store: &Arc<dyn Store>, author: &User, text: &str, pub_date: i64) -> MessageId {
    let text = MessageText::parse(text).expect("test texts are valid");
    store.add_message(NewMessage { author_id: author.id, text, pub_date }).await.expect("posting")
}

async fn texts(store: &Arc<dyn Store>, timeline: Timeline) -> Vec<String> {
    let entries = store.timeline(timeline, None, 1000).await.expect("reading a timeline");
    entries.into_iter().map(|e| e.text).collect()
}

/// Reads a whole timeline in pages of `size`, following cursors.
async fn all_pages(store: &Arc<dyn Store>, timeline: Timeline, size: usize) -> Vec<TimelineEntry> {
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.timeline(timeline, before, size).await.expect("reading a page");
        assert!(page.len() <= size, "a page holds at most `limit` entries");
        let Some(last) = page.last() else { return seen };
        before = Some(Cursor::after(last));
        seen.extend(page);
    }
}

/// Names are exact and case-sensitive; spaces and non-ASCII letters work.
pub async fn users_are_found_by_exact_name(store: Arc<dyn Store>) {
    let roger = user(&store, "Roger Histand").await;
    let ase = user(&store, "Åse Ødegård").await;
    let lower = user(&store, "roger histand").await;
    assert_ne!(roger.id, lower.id);
    assert_eq!(store.user_by_name("Roger Histand").await.unwrap(), Some(roger.clone()));
    assert_eq!(store.user_by_name("Åse Ødegård").await.unwrap(), Some(ase.clone()));
    assert_eq!(store.user_by_id(ase.id).await.unwrap(), Some(ase));
    assert_eq!(store.user_by_name("ROGER HISTAND").await.unwrap(), None);
    assert_eq!(store.user_by_name("Roger").await.unwrap(), None);
    assert_eq!(store.user_by_id(UserId(roger.id.0 + 1000)).await.unwrap(), None);
    assert_eq!(roger.email, "Roger.Histand@example.com");
    assert_eq!(roger.pw_hash, "hash-of-Roger Histand");
    assert!(!roger.disabled);
}

/// A second user with the same name is refused and changes nothing.
pub async fn duplicate_username_is_refused(store: Arc<dyn Store>) {
    user(&store, "alice").await;
    let again = store.create_user(new_user("alice")).await;
    assert_eq!(again, Err(StoreError::UsernameTaken));
    assert_eq!(store.counts().await.unwrap().users, 1);
}

/// Racing registrations of one name create exactly one user.
pub async fn concurrent_registrations_create_one_user(store: Arc<dyn Store>) {
    let attempts = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.create_user(new_user("racer")).await })
    });
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.expect("task ran") {
            Ok(_) => created += 1,
            Err(e) => assert_eq!(e, StoreError::UsernameTaken),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.counts().await.unwrap().users, 1);
}

/// `users_after` pages through users by id.
pub async fn users_page_by_id(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(user(&store, &format!("user{i}")).await.id);
    }
    let first = store.users_after(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|u| u.id).collect::<Vec<_>>(), ids[..2]);
    let rest = store.users_after(Some(ids[1]), 10).await.unwrap();
    assert_eq!(rest.iter().map(|u| u.id).collect::<Vec<_>>(), ids[2..]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
}

/// Password hashes and the disabled flag can change; unknown ids report `false`.
pub async fn password_and_disabled_flag_change(store: Arc<dyn Store>) {
    let u = user(&store, "bob").await;
    assert!(store.set_password_hash(u.id, "new-hash").await.unwrap());
    assert!(store.set_disabled(u.id, true).await.unwrap());
    let got = store.user_by_name("bob").await.unwrap().expect("bob exists");
    assert_eq!((got.pw_hash.as_str(), got.disabled), ("new-hash", true));
    assert!(store.set_disabled(u.id, false).await.unwrap());
    assert!(!store.user_by_id(u.id).await.unwrap().expect("bob").disabled);
    assert!(!store.set_password_hash(UserId(u.id.0 + 99), "x").await.unwrap());
    assert!(!store.set_disabled(UserId(u.id.0 + 99), true).await.unwrap());
}

/// Session generations start at 0, grow by one per bump, are per user, and go with a
/// deleted user; unknown ids report `false`.
pub async fn session_generations_only_grow_and_go_with_the_user(store: Arc<dyn Store>) {
    let (bob, eve) = (user(&store, "bob").await, user(&store, "eve").await);
    assert_eq!(store.session_generation(bob.id).await.unwrap(), 0);
    assert!(store.bump_session_generation(bob.id).await.unwrap());
    assert!(store.bump_session_generation(bob.id).await.unwrap());
    assert_eq!(store.session_generation(bob.id).await.unwrap(), 2);
    assert_eq!(store.session_generation(eve.id).await.unwrap(), 0);
    assert!(!store.bump_session_generation(UserId(bob.id.0 + 99)).await.unwrap());
    assert!(store.delete_user(bob.id).await.unwrap());
    assert_eq!(store.session_generation(bob.id).await.unwrap(), 0);
    assert!(!store.bump_session_generation(bob.id).await.unwrap());
}

/// A user and their generation read together equal the two reads one after the other,
/// after bumps, for a disabled user, and for an unknown or deleted one (`None`).
pub async fn a_user_is_read_with_their_session_generation(store: Arc<dyn Store>) {
    let (bob, eve) = (user(&store, "bob").await, user(&store, "Åse Ødegård").await);
    let two_reads = |id: UserId| {
        let store = Arc::clone(&store);
        async move {
            let user = store.user_by_id(id).await.unwrap()?;
            Some((user, store.session_generation(id).await.unwrap()))
        }
    };
    let together = |id: UserId| {
        let store = Arc::clone(&store);
        async move { store.user_with_generation(id).await.unwrap() }
    };
    assert_eq!(together(bob.id).await, Some((bob.clone(), 0)));
    assert_eq!(together(bob.id).await, two_reads(bob.id).await);
    assert!(store.bump_session_generation(bob.id).await.unwrap());
    assert!(store.bump_session_generation(bob.id).await.unwrap());
    assert_eq!(together(bob.id).await, Some((bob.clone(), 2)), "after two bumps");
    assert_eq!(together(bob.id).await, two_reads(bob.id).await);
    assert_eq!(together(eve.id).await, Some((eve.clone(), 0)), "per user");
    assert!(store.set_disabled(eve.id, true).await.unwrap());
    assert!(store.bump_session_generation(eve.id).await.unwrap());
    let disabled = together(eve.id).await.expect("a disabled user is still read");
    assert_eq!((disabled.0.disabled, disabled.1), (true, 1));
    assert_eq!(Some(disabled), two_reads(eve.id).await);
    let unknown = UserId(bob.id.0 + eve.id.0 + 99);
    assert_eq!(together(unknown).await, None, "an unknown user");
    assert!(store.delete_user(bob.id).await.unwrap());
    assert_eq!(together(bob.id).await, None, "a deleted user, generation and all");
    assert_eq!(two_reads(bob.id).await, None);
}

/// Flagging several ids changes all of them, or none when one is unknown.
pub async fn flagging_several_messages_is_all_or_nothing(store: Arc<dyn Store>) {
    let u = user(&store, "flagger").await;
    let (a, b) = (post(&store, &u, "a", 1).await, post(&store, &u, "b", 2).await);
    let missing = MessageId(a.0 + b.0 + 100);
    assert_eq!(store.set_flagged_all(&[a, missing, b], true).await.unwrap(), [missing]);
    assert!(!store.message_by_id(a).await.unwrap().expect("a").flagged, "nothing changed");
    assert_eq!(store.counts().await.unwrap().flagged, 0);
    assert!(store.set_flagged_all(&[a, b, a], true).await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap().flagged, 2);
    assert!(store.set_flagged_all(&[b], false).await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap().flagged, 1);
}

/// Text with markup characters, quotes and emoji comes back byte for byte.
pub async fn message_text_is_kept_exactly(store: Arc<dyn Store>) {
    let u = user(&store, "writer").await;
    let raw = "<test message 2> & \"double\" 'single' 🦀 naïve 漢字";
    let id = post(&store, &u, raw, 10).await;
    assert_eq!(store.message_by_id(id).await.unwrap().expect("stored").text, raw);
    assert_eq!(texts(&store, Timeline::Public).await, [raw]);
    let entry = &store.timeline(Timeline::User(u.id), None, 1).await.unwrap()[0];
    assert_eq!((entry.author.as_str(), entry.email.as_str()), ("writer", "writer@example.com"));
    assert_eq!((entry.pub_date, entry.id, entry.author_id), (10, id, u.id));
}

/// A message by a user who does not exist is refused.
pub async fn messages_need_an_existing_author(store: Arc<dyn Store>) {
    let text = MessageText::parse("orphan").unwrap();
    let refused =
        store.add_message(NewMessage { author_id: UserId(4242), text, pub_date: 1 }).await;
    assert_eq!(refused, Err(StoreError::UnknownUser(UserId(4242))));
    assert_eq!(store.counts().await.unwrap().messages, 0);
}

/// Following twice is not an error and leaves one pair.
pub async fn following_twice_leaves_one_pair(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    store.follow(a.id, b.id).await.unwrap();
    store.follow(a.id, b.id).await.unwrap();
    assert!(store.is_following(a.id, b.id).await.unwrap());
    assert!(!store.is_following(b.id, a.id).await.unwrap());
    assert_eq!(store.followees(a.id, 10).await.unwrap(), ["b"]);
    assert_eq!(store.counts().await.unwrap().follows, 1);
}

/// Racing follows of one pair leave one pair.
pub async fn concurrent_follows_leave_one_pair(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.follow(a.id, b.id).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task ran").expect("follow succeeds");
    }
    assert_eq!(store.counts().await.unwrap().follows, 1);
    assert_eq!(store.follows_after(None, 10).await.unwrap().len(), 1);
}

/// Unfollowing someone not followed is not an error.
pub async fn unfollowing_when_not_following_is_fine(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    store.unfollow(a.id, b.id).await.unwrap();
    store.follow(a.id, b.id).await.unwrap();
    store.unfollow(a.id, b.id).await.unwrap();
    store.unfollow(a.id, b.id).await.unwrap();
    assert!(!store.is_following(a.id, b.id).await.unwrap());
    assert_eq!(store.counts().await.unwrap().follows, 0);
}

/// Follows naming a missing user are refused.
pub async fn follows_need_existing_users(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    assert_eq!(store.follow(a.id, UserId(999)).await, Err(StoreError::UnknownUser(UserId(999))));
    assert_eq!(store.follow(UserId(999), a.id).await, Err(StoreError::UnknownUser(UserId(999))));
    assert_eq!(store.counts().await.unwrap().follows, 0);
}

/// Followees come by followee id, limited.
pub async fn followees_are_listed_in_order(store: Arc<dyn Store>) {
    let me = user(&store, "me").await;
    let others = [user(&store, "x").await, user(&store, "Zoë Q").await, user(&store, "b").await];
    for other in others.iter().rev() {
        store.follow(me.id, other.id).await.unwrap();
    }
    assert_eq!(store.followees(me.id, 10).await.unwrap(), ["x", "Zoë Q", "b"]);
    assert_eq!(store.followees(me.id, 2).await.unwrap(), ["x", "Zoë Q"]);
    assert!(store.followees(others[0].id, 10).await.unwrap().is_empty());
}

/// A follow list read by the follower's name equals the look-up and the list by id;
/// `None` for a name nobody has (names are exact), or has any longer.
pub async fn follow_lists_are_read_by_name(store: Arc<dyn Store>) {
    let me = user(&store, "Roger Histand").await;
    let others = [user(&store, "x").await, user(&store, "Zoë Q").await, user(&store, "b").await];
    for other in others.iter().rev() {
        store.follow(me.id, other.id).await.unwrap();
    }
    let by_name = |name: &'static str, limit: usize| {
        let store = Arc::clone(&store);
        async move { store.followees_by_name(name, limit).await.unwrap() }
    };
    let two_reads = |name: &'static str, limit: usize| {
        let store = Arc::clone(&store);
        async move {
            let user = store.user_by_name(name).await.unwrap()?;
            Some(store.followees(user.id, limit).await.unwrap())
        }
    };
    let listed = by_name("Roger Histand", 10).await;
    assert_eq!(listed, Some(vec!["x".into(), "Zoë Q".into(), "b".into()]));
    assert_eq!(listed, two_reads("Roger Histand", 10).await);
    assert_eq!(by_name("Roger Histand", 2).await, two_reads("Roger Histand", 2).await);
    assert_eq!(by_name("Roger Histand", 2).await.unwrap().len(), 2, "limited");
    assert_eq!(by_name("x", 10).await, Some(vec![]), "a user who follows nobody");
    assert_eq!(by_name("roger histand", 10).await, None, "names are exact");
    assert_eq!(by_name("nobody", 10).await, None);
    assert!(store.set_disabled(me.id, true).await.unwrap());
    assert!(store.set_disabled(others[1].id, true).await.unwrap());
    assert_eq!(by_name("Roger Histand", 10).await, two_reads("Roger Histand", 10).await);
    assert_eq!(by_name("Roger Histand", 10).await.unwrap().len(), 3, "disabled users too");
    assert!(store.delete_user(others[0].id).await.unwrap());
    assert_eq!(by_name("Roger Histand", 10).await, Some(vec!["Zoë Q".into(), "b".into()]));
    assert!(store.delete_user(me.id).await.unwrap());
    assert_eq!(by_name("Roger Histand", 10).await, None, "a deleted user");
}

/// A post by the author's name stores what a post by their id would, and nothing for a
/// name nobody has or a disabled author (saying which).
pub async fn posts_by_name_follow_the_authors_state(store: Arc<dyn Store>) {
    let roger = user(&store, "Roger Histand").await;
    let text = |t: &str| MessageText::parse(t).unwrap();
    let posted = store.add_message_by_name("Roger Histand", text("<hi> 🦀"), 7).await.unwrap();
    let ByName::Done(id) = posted else { panic!("an enabled author posts: {posted:?}") };
    let by_id = post(&store, &roger, "<hi> 🦀", 7).await;
    let (stored, twin) = (store.message_by_id(id).await.unwrap(), store.message_by_id(by_id));
    let twin = twin.await.unwrap().expect("posted by id");
    assert_eq!(stored, Some(Message { id, ..twin }), "the same message as by id");
    let entry = &store.timeline(Timeline::User(roger.id), None, 2).await.unwrap()[1];
    assert_eq!((entry.id, entry.author.as_str(), entry.pub_date), (id, "Roger Histand", 7));
    let before = store.counts().await.unwrap().messages;
    let unknown = store.add_message_by_name("roger histand", text("x"), 8).await;
    assert_eq!(unknown, Ok(ByName::UnknownUser), "names are exact");
    assert!(store.set_disabled(roger.id, true).await.unwrap());
    let disabled = store.add_message_by_name("Roger Histand", text("x"), 8).await;
    assert_eq!(disabled, Ok(ByName::Disabled));
    assert_eq!(store.counts().await.unwrap().messages, before, "neither stored anything");
    assert!(store.set_disabled(roger.id, false).await.unwrap());
    let again = store.add_message_by_name("Roger Histand", text("back"), 9).await.unwrap();
    assert!(matches!(again, ByName::Done(_)), "enabled again: {again:?}");
    assert!(store.delete_user(roger.id).await.unwrap());
    let deleted = store.add_message_by_name("Roger Histand", text("x"), 10).await;
    assert_eq!(deleted, Ok(ByName::UnknownUser), "a deleted author");
    assert_eq!(store.counts().await.unwrap().messages, 0);
}

/// A keyed post by name applies once and answers as `apply_once` does; a name nobody
/// has and a disabled author keep no receipt and store nothing.
pub async fn keyed_posts_by_name_apply_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let text = |t: &str| MessageText::parse(t).unwrap();
    let sent = keyed("api:sim", "p1", "post hello", "");
    let by_name = |sent: &Keyed, name: &'static str, since: i64| {
        let (store, sent) = (Arc::clone(&store), sent.clone());
        async move {
            let (key, receipt) = (&sent.key, &sent.receipt);
            store.apply_once_by_name(key, receipt, since, name, text("hello"), 3).await.unwrap()
        }
    };
    assert_eq!(by_name(&sent, "alice", 0).await, ByName::Done(None), "applied");
    assert_eq!(by_name(&sent, "alice", 0).await, ByName::Done(Some(sent.receipt.clone())));
    assert_eq!(texts(&store, Timeline::User(alice.id)).await, ["hello"], "once");
    let other = keyed("api:sim", "p1", "post other", "");
    let kept = by_name(&other, "alice", 0).await;
    assert_eq!(kept, ByName::Done(Some(sent.receipt.clone())), "the kept receipt answers");
    // Later, once `sent`'s receipt has expired, the key applies anew.
    let since = sent.receipt.recorded_at + 1;
    let expired = keyed("api:sim", "p1", "post anew", "");
    let expired = Keyed { receipt: Receipt { recorded_at: since, ..expired.receipt }, ..expired };
    assert_eq!(by_name(&expired, "alice", since).await, ByName::Done(None), "an expired key");
    assert_eq!(store.receipt(&sent.key, 0).await.unwrap(), Some(expired.receipt.clone()));
    assert_eq!(texts(&store, Timeline::User(alice.id)).await, ["hello", "hello"]);
    let unknown = keyed("api:sim", "p2", "post to nobody", "");
    assert_eq!(by_name(&unknown, "nobody", 0).await, ByName::UnknownUser);
    assert_eq!(store.receipt(&unknown.key, 0).await.unwrap(), None, "no receipt kept");
    assert!(store.set_disabled(alice.id, true).await.unwrap());
    let disabled = keyed("api:sim", "p3", "post disabled", "");
    assert_eq!(by_name(&disabled, "alice", 0).await, ByName::Disabled);
    assert_eq!(store.receipt(&disabled.key, 0).await.unwrap(), None, "no receipt kept");
    assert_eq!(by_name(&sent, "alice", 0).await, ByName::Disabled, "the store does not replay");
    assert_eq!(store.counts().await.unwrap().messages, 2, "nothing else was stored");
    // The two calls it stands for answer the same.
    assert!(store.set_disabled(alice.id, false).await.unwrap());
    let post = Write::Post(NewMessage { author_id: alice.id, text: text("hello"), pub_date: 3 });
    let two_calls = store.apply_once(&expired.key, &expired.receipt, since, post).await.unwrap();
    assert_eq!(ByName::Done(two_calls), by_name(&expired, "alice", since).await);
}

/// A follow or an unfollow by both users' names changes what the calls by id would,
/// keyed (applied once, replayed after) or not; if either name is nobody's (names are
/// exact) nothing is written and no receipt kept; following has no rule for disabled
/// users.
pub async fn follows_by_names_change_as_by_ids(store: Arc<dyn Store>) {
    let (roger, zoe) = (user(&store, "Roger Histand").await, user(&store, "Zoë Q").await);
    let by_names =
        |follower: &'static str, followee: &'static str, change, sent: Option<&Keyed>| {
            let (store, sent) = (Arc::clone(&store), sent.cloned());
            async move {
                let once =
                    sent.as_ref().map(|s| Once { key: &s.key, receipt: &s.receipt, since: 0 });
                store.change_follow_by_names(follower, followee, change, once).await.unwrap()
            }
        };
    let following = || store.is_following(roger.id, zoe.id);
    let (follow, unfollow) = (FollowChange::Follow, FollowChange::Unfollow);
    let followees = || store.followees(roger.id, 10);
    assert!(followees().await.unwrap().is_empty());
    assert_eq!(by_names("Roger Histand", "Zoë Q", follow, None).await, ByName::Done(None));
    assert!(following().await.unwrap(), "followed");
    assert_eq!(followees().await.unwrap(), ["Zoë Q"], "the follow list moves with it");
    assert_eq!(by_names("Roger Histand", "Zoë Q", follow, None).await, ByName::Done(None));
    assert_eq!(store.counts().await.unwrap().follows, 1, "following twice leaves one pair");
    assert_eq!(by_names("Roger Histand", "Zoë Q", unfollow, None).await, ByName::Done(None));
    assert!(!following().await.unwrap(), "unfollowed");
    assert_eq!(by_names("Roger Histand", "Zoë Q", unfollow, None).await, ByName::Done(None));

    let sent = keyed("api:sim", "f1", "follow Zoë Q", "");
    assert_eq!(by_names("Roger Histand", "Zoë Q", follow, Some(&sent)).await, ByName::Done(None));
    assert!(following().await.unwrap(), "followed under a key");
    assert_eq!(store.receipt(&sent.key, 0).await.unwrap(), Some(sent.receipt.clone()));
    store.unfollow(roger.id, zoe.id).await.unwrap();
    let replayed = by_names("Roger Histand", "Zoë Q", follow, Some(&sent)).await;
    assert_eq!(replayed, ByName::Done(Some(sent.receipt.clone())), "the receipt answers");
    assert!(!following().await.unwrap(), "a replay writes nothing");
    let sent = keyed("api:sim", "f2", "unfollow Zoë Q", "");
    store.follow(roger.id, zoe.id).await.unwrap();
    let unfollowed = by_names("Roger Histand", "Zoë Q", unfollow, Some(&sent)).await;
    assert_eq!(unfollowed, ByName::Done(None));
    assert!(!following().await.unwrap(), "unfollowed under a key");
    assert!(followees().await.unwrap().is_empty(), "the follow list moves with it");

    for (follower, followee) in [("roger histand", "Zoë Q"), ("Roger Histand", "nobody")] {
        for change in [follow, unfollow] {
            let unknown = keyed("api:sim", "f3", "follow nobody", "");
            let answer = by_names(follower, followee, change, Some(&unknown)).await;
            assert_eq!(answer, ByName::UnknownUser, "{follower} -> {followee}");
            assert_eq!(store.receipt(&unknown.key, 0).await.unwrap(), None, "no receipt kept");
            assert_eq!(by_names(follower, followee, change, None).await, ByName::UnknownUser);
        }
    }
    assert_eq!(store.counts().await.unwrap().follows, 0, "nothing was written");
    assert!(store.set_disabled(zoe.id, true).await.unwrap());
    assert_eq!(by_names("Roger Histand", "Zoë Q", follow, None).await, ByName::Done(None));
    assert!(following().await.unwrap(), "a disabled user may be followed");
    assert!(store.delete_user(zoe.id).await.unwrap());
    assert_eq!(by_names("Roger Histand", "Zoë Q", follow, None).await, ByName::UnknownUser);
}

/// The service's calls by path segment (`POST /msgs/{username}`, `GET
/// /fllws/{username}`, a session's user) answer as the look-up and the call by user do,
/// with every rule: unknown and undecodable names, disabled authors, keys.
pub async fn the_service_answers_by_path_segment_as_by_user(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
    let (roger, bob) = (user(&store, "Roger Histand").await, user(&store, "bob").await);
    twit.follow(roger.id, bob.id).await.unwrap();
    let size = PageSize::new(10);
    let follows = twit.followees_at("Roger%20Histand", size).await.unwrap();
    assert_eq!(follows, twit.followees(roger.id, size).await.unwrap());
    assert_eq!(follows, ["bob"]);
    for nobody in ["nobody", "%FF", "bob%00", "Roger%20Histand%0A"] {
        let unknown = twit.followees_at(nobody, size).await;
        assert_eq!(unknown, Err(ServiceError::UnknownUser), "{nobody}");
        let text = MessageText::parse("hi").unwrap();
        let unknown = twit.post_once_at(nobody, text, Some(keyed("s", "k0", "p", ""))).await;
        assert_eq!(unknown, Err(ServiceError::UnknownUser), "{nobody}");
    }
    let text = |t: &str| MessageText::parse(t).unwrap();
    assert_eq!(twit.post_once_at("Roger%20Histand", text("one"), None).await, Ok(Outcome::Applied));
    let first = keyed("s", "k1", "post two", "");
    let posted = twit.post_once_at("Roger Histand", text("two"), Some(first.clone())).await;
    assert_eq!(posted, Ok(Outcome::Applied));
    let replay = twit.post_once_at("Roger Histand", text("two"), Some(first.clone())).await;
    assert_eq!(replay, Ok(Outcome::Replayed(first.receipt.clone())));
    let reused = twit.post_once_at("Roger Histand", text("3"), Some(keyed("s", "k1", "3", "")));
    assert_eq!(reused.await, Err(ServiceError::KeyReused));
    assert_eq!(texts(&store, Timeline::User(roger.id)).await, ["two", "one"]);
    twit.set_disabled("Roger Histand", true).await.unwrap();
    let refused = twit.post_once_at("Roger Histand", text("x"), None).await;
    assert_eq!(refused, Err(ServiceError::AccountDisabled));
    let refused = twit.post_once_at("Roger Histand", text("x"), Some(keyed("s", "k2", "x", "")));
    assert_eq!(refused.await, Err(ServiceError::AccountDisabled), "no receipt: refused");
    let retry = twit.post_once_at("Roger Histand", text("two"), Some(first.clone())).await;
    assert_eq!(retry, Ok(Outcome::Replayed(first.receipt)), "a post made before disabling");
    assert_eq!(texts(&store, Timeline::User(roger.id)).await, ["two", "one"], "nothing more");
    let found = twit.user_with_generation(roger.id).await.unwrap().expect("roger");
    assert_eq!((found.0.disabled, found.1), (true, 1), "disabling ended the sessions");
    assert_eq!(twit.user_with_generation(UserId(roger.id.0 + bob.id.0 + 9)).await, Ok(None));
}

/// Flagged messages vanish from all three timelines, stay stored, and come back unflagged.
pub async fn flagged_messages_are_hidden_everywhere(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    store.follow(b.id, a.id).await.unwrap();
    let keep = post(&store, &a, "keep", 1).await;
    let hide = post(&store, &a, "hide", 2).await;
    assert!(store.set_flagged(hide, true).await.unwrap());
    for timeline in
        [Timeline::Public, Timeline::User(a.id), Timeline::Home(a.id), Timeline::Home(b.id)]
    {
        assert_eq!(texts(&store, timeline).await, ["keep"], "{timeline:?}");
    }
    assert!(store.message_by_id(hide).await.unwrap().expect("kept").flagged);
    assert_eq!(store.counts().await.unwrap().flagged, 1);
    assert!(store.set_flagged(hide, false).await.unwrap());
    assert_eq!(texts(&store, Timeline::Home(b.id)).await, ["hide", "keep"]);
    assert!(!store.set_flagged(MessageId(keep.0 + hide.0 + 100), true).await.unwrap());
    assert_eq!(store.counts().await.unwrap().flagged, 0);
}

/// Among equal publication times the higher id comes first.
pub async fn equal_times_are_ordered_by_id(store: Arc<dyn Store>) {
    let u = user(&store, "u").await;
    post(&store, &u, "old", 5).await;
    post(&store, &u, "first at 7", 7).await;
    post(&store, &u, "second at 7", 7).await;
    post(&store, &u, "earlier but posted later", 6).await;
    let expected = ["second at 7", "first at 7", "earlier but posted later", "old"];
    assert_eq!(texts(&store, Timeline::Public).await, expected);
    assert_eq!(texts(&store, Timeline::User(u.id)).await, expected);
    assert_eq!(texts(&store, Timeline::Home(u.id)).await, expected);
}

/// Reading page after page with cursors yields each entry once, in order, with many ties.
pub async fn pages_have_no_gap_or_duplicate(store: Arc<dyn Store>) {
    let (a, b, c) = (user(&store, "a").await, user(&store, "b").await, user(&store, "c").await);
    store.follow(a.id, b.id).await.unwrap();
    for i in 0..90_i64 {
        let author = [&a, &b, &c][(i % 3) as usize];
        post(&store, author, &format!("m{i}"), i / 4).await;
    }
    for (timeline, expected) in
        [(Timeline::Public, 90), (Timeline::User(b.id), 30), (Timeline::Home(a.id), 60)]
    {
        let whole = store.timeline(timeline, None, 1000).await.unwrap();
        assert_eq!(whole.len(), expected, "{timeline:?}");
        assert!(whole.windows(2).all(|w| (w[0].pub_date, w[0].id) > (w[1].pub_date, w[1].id)));
        for size in [1, 7, 30] {
            assert_eq!(
                all_pages(&store, timeline, size).await,
                whole,
                "{timeline:?} pages of {size}"
            );
        }
    }
}

/// The home timeline holds the user's own messages and their followees', no one else's.
pub async fn home_timeline_is_self_and_followees(store: Arc<dyn Store>) {
    let (me, friend, stranger) =
        (user(&store, "me").await, user(&store, "friend").await, user(&store, "stranger").await);
    store.follow(me.id, friend.id).await.unwrap();
    store.follow(stranger.id, me.id).await.unwrap();
    post(&store, &me, "mine", 1).await;
    post(&store, &friend, "friend's", 2).await;
    post(&store, &stranger, "stranger's", 3).await;
    assert_eq!(texts(&store, Timeline::Home(me.id)).await, ["friend's", "mine"]);
    assert_eq!(texts(&store, Timeline::Home(stranger.id)).await, ["stranger's", "mine"]);
    assert_eq!(texts(&store, Timeline::Home(friend.id)).await, ["friend's"]);
    store.unfollow(me.id, friend.id).await.unwrap();
    assert_eq!(texts(&store, Timeline::Home(me.id)).await, ["mine"]);
}

/// Timelines of ids nobody has are empty, not errors.
pub async fn unknown_users_have_empty_timelines(store: Arc<dyn Store>) {
    assert!(texts(&store, Timeline::User(UserId(77))).await.is_empty());
    assert!(texts(&store, Timeline::Home(UserId(77))).await.is_empty());
    assert!(texts(&store, Timeline::Public).await.is_empty());
    assert!(store.followees(UserId(77), 10).await.unwrap().is_empty());
}

/// `latest` starts unset and keeps the last value written.
pub async fn latest_is_kept(store: Arc<dyn Store>) {
    assert_eq!(store.latest().await.unwrap(), None);
    store.set_latest(3).await.unwrap();
    store.set_latest(25_921).await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(25_921));
    store.set_latest(-5).await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(-5));
    // Begun, it is read back before its durability is awaited.
    let durable = store.begin_set_latest(9).await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(9));
    durable.await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(9));
}

/// A setting is created once; racing initialisations all see the winner's value.
pub async fn settings_are_initialised_once(store: Arc<dyn Store>) {
    assert_eq!(store.setting("k").await.unwrap(), None);
    let tasks: Vec<_> = (0..6u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.init_setting("k", &[i; 16]).await })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.expect("task ran").expect("init works"));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "every racer sees one value");
    assert_eq!(store.setting("k").await.unwrap(), Some(seen[0].clone()));
    assert_eq!(store.init_setting("k", b"other").await.unwrap(), seen[0]);
}

/// Counts track users, messages, follows and flags.
pub async fn counts_follow_changes(store: Arc<dyn Store>) {
    assert_eq!(store.counts().await.unwrap(), Default::default());
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    let m = post(&store, &a, "one", 1).await;
    post(&store, &b, "two", 2).await;
    store.follow(a.id, b.id).await.unwrap();
    store.set_flagged(m, true).await.unwrap();
    store.set_flagged(m, true).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.users, counts.messages, counts.follows, counts.flagged), (2, 2, 1, 1));
}

/// Deleting a user removes them, their messages and their follows both ways.
pub async fn deleting_a_user_removes_their_traces(store: Arc<dyn Store>) {
    let (a, b, c) = (user(&store, "a").await, user(&store, "b").await, user(&store, "c").await);
    store.follow(a.id, b.id).await.unwrap();
    store.follow(b.id, c.id).await.unwrap();
    store.follow(c.id, b.id).await.unwrap();
    let gone = post(&store, &b, "b's", 1).await;
    post(&store, &c, "c's", 2).await;
    assert!(store.delete_user(b.id).await.unwrap());
    assert!(!store.delete_user(b.id).await.unwrap());
    assert_eq!(store.user_by_name("b").await.unwrap(), None);
    assert_eq!(store.message_by_id(gone).await.unwrap(), None);
    assert_eq!(texts(&store, Timeline::Public).await, ["c's"]);
    assert!(store.followees(a.id, 10).await.unwrap().is_empty());
    assert!(store.followees(c.id, 10).await.unwrap().is_empty());
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.users, counts.messages, counts.follows), (2, 1, 0));
    // The name is free again.
    user(&store, "b").await;
}

/// The export reads return every record, flagged included, in key order.
pub async fn export_reads_everything_in_order(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    let m1 = post(&store, &a, "one", 9).await;
    let m2 = post(&store, &b, "two", 1).await;
    let m3 = post(&store, &a, "three", 5).await;
    store.set_flagged(m2, true).await.unwrap();
    store.follow(b.id, a.id).await.unwrap();
    store.follow(a.id, b.id).await.unwrap();
    let ids = |ms: Vec<Message>| ms.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.messages_after(None, 10).await.unwrap()), [m1, m2, m3]);
    assert_eq!(ids(store.messages_after(Some(m1), 1).await.unwrap()), [m2]);
    assert!(store.messages_after(None, 10).await.unwrap()[1].flagged);
    let follows = store.follows_after(None, 10).await.unwrap();
    assert_eq!(
        follows,
        [Follow { follower: a.id, followee: b.id }, Follow { follower: b.id, followee: a.id }]
    );
    assert_eq!(store.follows_after(Some(follows[0]), 10).await.unwrap(), follows[1..]);
}

/// Import keeps ids, hashes, dates and flags; later ids continue above them; a batch
/// that collides with existing data changes nothing.
pub async fn import_keeps_ids_and_is_all_or_nothing(store: Arc<dyn Store>) {
    let alice = User {
        id: UserId(10),
        username: "alice".into(),
        email: "a@x".into(),
        pw_hash: "$argon2id$h".into(),
        disabled: true,
    };
    let bob = User {
        id: UserId(20),
        username: "bob".into(),
        email: "b@x".into(),
        pw_hash: "h2".into(),
        disabled: false,
    };
    let msg = |id: i64, author_id: i64, flagged| Message {
        id: MessageId(id),
        author_id: UserId(author_id),
        text: format!("m{id}"),
        pub_date: id * 10,
        flagged,
    };
    let batch = ImportBatch {
        users: vec![alice.clone(), bob.clone()],
        messages: vec![msg(5, 10, false), msg(7, 20, true)],
        follows: vec![Follow { follower: UserId(20), followee: UserId(10) }],
    };
    store.import(batch).await.expect("import into an empty store");
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(alice));
    assert_eq!(store.message_by_id(MessageId(7)).await.unwrap(), Some(msg(7, 20, true)));
    assert!(store.is_following(UserId(20), UserId(10)).await.unwrap());
    assert_eq!(texts(&store, Timeline::Home(UserId(20))).await, ["m5"]);
    let carol = user(&store, "carol").await;
    assert!(carol.id > UserId(20), "new ids continue above imported ones");
    assert!(post(&store, &carol, "new", 1).await > MessageId(7));

    let before = store.counts().await.unwrap();
    let clash = ImportBatch {
        users: vec![User { id: UserId(30), username: "dave".into(), ..bob.clone() }, bob],
        messages: vec![],
        follows: vec![],
    };
    assert!(matches!(
        store.import(clash).await,
        Err(StoreError::Conflict(_) | StoreError::UsernameTaken)
    ));
    assert_eq!(store.counts().await.unwrap(), before, "a failed import changes nothing");
    assert_eq!(store.user_by_name("dave").await.unwrap(), None);
}

/// `remove_imported` takes an imported batch out again (with what hangs on its users),
/// leaving older data as it was; `end_import` records `latest` and clears the mark.
pub async fn an_import_can_be_removed_and_ended(store: Arc<dyn Store>) {
    let own = user(&store, "own").await;
    let own_post = post(&store, &own, "own post", 1).await;
    store.set_latest(7).await.unwrap();
    let before = (store.counts().await.unwrap(), store.list_messages(all_messages()).await);
    let imported = |id: i64, name: &str| User {
        id: UserId(id + 1000),
        username: name.into(),
        email: format!("{name}@x"),
        pw_hash: "h".into(),
        disabled: false,
    };
    let (a, b) = (imported(1, "ia"), imported(2, "ib"));
    let message = Message {
        id: MessageId(5000),
        author_id: a.id,
        text: "m".into(),
        pub_date: 2,
        flagged: true,
    };
    let batch = ImportBatch {
        users: vec![a.clone(), b.clone()],
        messages: vec![message],
        follows: vec![Follow { follower: a.id, followee: b.id }],
    };
    store.init_setting(crate::store::IMPORT_MARK, b"test import").await.unwrap();
    store.import(batch.clone()).await.unwrap();
    // The other user follows an imported one: removed with them.
    store.follow(own.id, b.id).await.unwrap();
    store.remove_imported(batch.clone()).await.unwrap();
    store.remove_imported(batch).await.expect("removing again skips what is gone");
    store.end_import(None).await.unwrap();
    assert_eq!((store.counts().await.unwrap(), store.list_messages(all_messages()).await), before);
    assert_eq!(store.user_by_name("ia").await.unwrap(), None);
    assert!(store.message_by_id(own_post).await.unwrap().is_some());
    assert_eq!(store.latest().await.unwrap(), Some(7));
    assert_eq!(store.setting(crate::store::IMPORT_MARK).await.unwrap(), None);

    store.init_setting(crate::store::IMPORT_MARK, b"again").await.unwrap();
    store.end_import(Some(9)).await.unwrap();
    assert_eq!(store.latest().await.unwrap(), Some(9));
    assert_eq!(store.setting(crate::store::IMPORT_MARK).await.unwrap(), None);
}

fn all_messages() -> MessageFilter {
    MessageFilter { limit: 100, ..MessageFilter::default() }
}

/// The admin listing filters by author and flag, newest id first, with keyset paging.
pub async fn admin_listing_filters_messages(store: Arc<dyn Store>) {
    let (a, b) = (user(&store, "a").await, user(&store, "b").await);
    let ids = [
        post(&store, &a, "1", 1).await,
        post(&store, &b, "2", 2).await,
        post(&store, &a, "3", 3).await,
    ];
    store.set_flagged(ids[2], true).await.unwrap();
    let list = |filter| {
        let store = Arc::clone(&store);
        async move {
            store.list_messages(filter).await.unwrap().into_iter().map(|m| m.id).collect::<Vec<_>>()
        }
    };
    let all = MessageFilter { limit: 10, ..Default::default() };
    assert_eq!(list(all).await, [ids[2], ids[1], ids[0]]);
    assert_eq!(list(MessageFilter { author: Some(a.id), ..all }).await, [ids[2], ids[0]]);
    assert_eq!(list(MessageFilter { flagged: Some(true), ..all }).await, [ids[2]]);
    assert_eq!(
        list(MessageFilter { flagged: Some(false), author: Some(a.id), ..all }).await,
        [ids[0]]
    );
    assert_eq!(list(MessageFilter { before: Some(ids[2]), limit: 1, ..all }).await, [ids[1]]);
}

/// The service over this store: register, refuse a taken name, log in, post, read.
pub async fn service_registers_and_authenticates(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(store, HashCost::Insecure);
    let reg =
        || Registration::parse("Roger Histand", "Roger+Histand@hotmail.com", "]=)[X{Km{z", None);
    let roger = twit.register(reg().unwrap()).await.expect("registers");
    assert_eq!(twit.register(reg().unwrap()).await.unwrap_err(), ServiceError::UsernameTaken);
    assert_eq!(ServiceError::UsernameTaken.to_string(), "The username is already taken");
    assert!(!roger.pw_hash.contains("]=)[X{Km{z"), "only the hash is stored");
    assert_eq!(twit.authenticate("Roger Histand", "]=)[X{Km{z").await.unwrap().id, roger.id);
    assert_eq!(
        twit.authenticate("Roger Histand", "nope").await.unwrap_err(),
        ServiceError::InvalidPassword
    );
    assert_eq!(twit.authenticate("nobody", "x").await.unwrap_err(), ServiceError::InvalidUsername);
    twit.post(&roger, MessageText::parse("<hi> & 👋").unwrap()).await.unwrap();
    let page = twit.timeline(Timeline::Public, None, PageSize::new(30)).await.unwrap();
    assert_eq!((page.entries[0].text.as_str(), page.next), ("<hi> & 👋", None));
    assert_eq!(twit.latest().await.unwrap(), -1);
    let key = twit.session_key().await.unwrap();
    assert_eq!(key.len(), 64);
    assert_eq!(twit.session_key().await.unwrap(), key, "the key is generated once");
    twit.set_disabled("Roger Histand", true).await.unwrap();
    assert_eq!(
        twit.authenticate("Roger Histand", "]=)[X{Km{z").await.unwrap_err(),
        ServiceError::AccountDisabled
    );
}

/// A request keyed `key` by `scope`, made of `request`, answered 204 with `answer`.
fn keyed(scope: &str, key: &str, request: &str, answer: &str) -> Keyed {
    let key = IdempotencyKey::parse(key).unwrap();
    Keyed::new(scope, key, &[request.as_bytes()], 204, answer.as_bytes().to_vec())
}

/// A receipt recorded at `recorded_at`.
fn receipt_at(request: &str, recorded_at: i64) -> Receipt {
    Receipt { recorded_at, ..keyed("s", "k", request, "").receipt }
}

/// Each keyed write, sent twice with one key, applies once; the retry is answered with
/// the receipt the first recorded, changing nothing.
pub async fn a_keyed_write_applies_once_and_replays_its_answer(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
    let reg = || Registration::parse("Roger Histand", "r@example.com", "pw", None).unwrap();
    let sent = keyed("api:sim", "reg-1", "register Roger", "registered");
    assert_eq!(twit.register_once(reg(), Some(sent.clone())).await.unwrap(), Outcome::Applied);
    let again = twit.register_once(reg(), Some(sent.clone())).await.unwrap();
    assert_eq!(again, Outcome::Replayed(sent.receipt.clone()), "the first answer, not a 400");
    let roger = twit.user("Roger Histand").await.unwrap();
    let bob = twit.register(Registration::parse("bob", "b@example.com", "pw", None).unwrap());
    let bob = bob.await.unwrap();
    for _ in 0..2 {
        let post = keyed("api:sim", "post-1", "post hello", "");
        let text = MessageText::parse("hello").unwrap();
        twit.post_once(&roger, text, Some(post)).await.unwrap();
        let follow = keyed("api:sim", "follow-1", "follow bob", "");
        twit.follow_once(roger.id, bob.id, Some(follow)).await.unwrap();
    }
    assert_eq!(texts(&store, Timeline::Public).await, ["hello"], "one message");
    assert_eq!(store.counts().await.unwrap().users, 2, "one user per registration");
    let unfollow = keyed("api:sim", "unfollow-1", "unfollow bob", "");
    let first = twit.unfollow_once(roger.id, bob.id, Some(unfollow.clone())).await.unwrap();
    assert_eq!(first, Outcome::Applied);
    twit.follow(roger.id, bob.id).await.unwrap();
    let retried = twit.unfollow_once(roger.id, bob.id, Some(unfollow.clone())).await.unwrap();
    assert_eq!(retried, Outcome::Replayed(unfollow.receipt));
    assert!(store.is_following(roger.id, bob.id).await.unwrap(), "the retry changed nothing");
}

/// A key recorded for one request and sent with another is refused, and the second
/// request changes nothing.
pub async fn a_key_reused_for_another_request_is_refused(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
    let alice = user(&store, "alice").await;
    let first = keyed("api:sim", "k", "post one", "");
    twit.post_once(&alice, MessageText::parse("one").unwrap(), Some(first)).await.unwrap();
    let other = keyed("api:sim", "k", "post two", "");
    let refused = twit.post_once(&alice, MessageText::parse("two").unwrap(), Some(other)).await;
    assert_eq!(refused, Err(ServiceError::KeyReused));
    assert_eq!(ServiceError::KeyReused.status(), 422);
    assert_eq!(texts(&store, Timeline::Public).await, ["one"]);
}

/// Requests with one key arriving together (a proxy's retry racing its first attempt)
/// apply once: one is applied, every other is answered from its receipt.
pub async fn concurrent_requests_with_one_key_apply_once(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
    let alice = user(&store, "alice").await;
    let sends = (0..8).map(|_| {
        let (twit, alice) = (twit.clone(), alice.clone());
        let request = keyed("api:sim", "race", "post racing", "");
        tokio::spawn(async move {
            twit.post_once(&alice, MessageText::parse("racing").unwrap(), Some(request)).await
        })
    });
    let outcomes = futures::future::join_all(sends).await;
    let applied = outcomes.into_iter().filter(|o| *o.as_ref().unwrap() == Ok(Outcome::Applied));
    assert_eq!(applied.count(), 1, "exactly one of the racing requests applies");
    assert_eq!(texts(&store, Timeline::Public).await, ["racing"]);
}

/// The same key from two callers names two requests: neither is answered from the
/// other's receipt.
pub async fn keys_belong_to_their_caller(store: Arc<dyn Store>) {
    let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
    let alice = user(&store, "alice").await;
    for (scope, text) in [("web:user:1", "mine"), ("web:user:2", "theirs")] {
        let request = keyed(scope, "same-key", "post", text);
        let outcome = twit.post_once(&alice, MessageText::parse(text).unwrap(), Some(request));
        assert_eq!(outcome.await.unwrap(), Outcome::Applied, "{scope}");
    }
    assert_eq!(texts(&store, Timeline::Public).await.len(), 2);
    let theirs = ReceiptKey { scope: "web:user:2".into(), key: "same-key".into() };
    let kept = store.receipt(&theirs, 0).await.unwrap().unwrap();
    assert_eq!(kept.body, b"theirs");
}

/// A keyed write that fails keeps no receipt: the key stays free for the retry.
pub async fn a_failed_keyed_write_keeps_no_receipt(store: Arc<dyn Store>) {
    user(&store, "taken").await;
    let sent = keyed("api:sim", "k", "register taken", "");
    let refused = store.apply_once(&sent.key, &sent.receipt, 0, Write::Register(new_user("taken")));
    assert_eq!(refused.await, Err(StoreError::UsernameTaken));
    assert_eq!(store.receipt(&sent.key, 0).await.unwrap(), None);
    let ghost = Write::Follow { follower: UserId(999), followee: UserId(998) };
    assert!(matches!(
        store.apply_once(&sent.key, &sent.receipt, 0, ghost).await,
        Err(StoreError::UnknownUser(_))
    ));
    assert_eq!(store.receipt(&sent.key, 0).await.unwrap(), None);
    let fresh = store.apply_once(&sent.key, &sent.receipt, 0, Write::Register(new_user("fresh")));
    assert_eq!(fresh.await, Ok(None));
}

/// A receipt recorded before the window is ignored (its key applies anew and replaces
/// it), and the sweep removes expired receipts oldest first, at most `limit` a step.
pub async fn receipts_expire_and_are_forgotten_in_bounded_steps(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let post = |text: &str| {
        let text = MessageText::parse(text).unwrap();
        Write::Post(NewMessage { author_id: alice.id, text, pub_date: 1 })
    };
    let key = |k: usize| ReceiptKey { scope: "api:sim".into(), key: format!("k{k}") };
    for k in 0..5 {
        let recorded_at = 100 + i64::try_from(k).unwrap();
        let kept = store.apply_once(&key(k), &receipt_at("p", recorded_at), 0, post("old")).await;
        assert_eq!(kept, Ok(None));
    }
    assert!(store.receipt(&key(0), 100).await.unwrap().is_some(), "within the window");
    assert_eq!(store.receipt(&key(0), 101).await.unwrap(), None, "expired");
    let renewed = store.apply_once(&key(0), &receipt_at("p", 200), 101, post("anew")).await;
    assert_eq!(renewed, Ok(None), "an expired key applies anew");
    assert_eq!(store.receipt(&key(0), 150).await.unwrap().unwrap().recorded_at, 200);
    assert_eq!(store.forget_receipts(104, 2).await.unwrap(), 2, "k1, k2: bounded");
    assert_eq!(store.forget_receipts(104, 2).await.unwrap(), 1, "k3");
    assert_eq!(store.forget_receipts(104, 2).await.unwrap(), 0);
    for (k, kept) in [(0, true), (1, false), (2, false), (3, false), (4, true)] {
        assert_eq!(store.receipt(&key(k), 0).await.unwrap().is_some(), kept, "k{k}");
    }
    assert_eq!(texts(&store, Timeline::Public).await.len(), 6, "forgetting keeps the writes");
}
