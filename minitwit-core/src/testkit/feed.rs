//! The change feed's contract for backends (`crate::feed`): what a store's writes
//! deliver, to the same process or, through a second handle on the same data, to
//! another; and live timelines over it showing each reader only what its page shows.
//! A backend's test calls [`delivers_every_change`] and [`live_timelines_keep_the_rules`]
//! with a writer and a reader over one store (the same handle for a single-process store).

use crate::feed::{Change, Delivery, Event, LiveFeed, LiveLimits, LiveTimeline};
use crate::idempotency::{Receipt, ReceiptKey, Write};
use crate::model::{Follow, NewMessage, User};
use crate::{MessageId, MessageText, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a delivery may take on a busy machine before the test fails (a deadline for
/// failing, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

use super::records::registered as user;

fn message(author: &User, text: &str) -> NewMessage {
    NewMessage {
        author_id: author.id,
        text: MessageText::parse(text).expect("valid text"),
        pub_date: 1_700_000_000,
    }
}

/// The next change delivered, past any gap.
async fn next_change(deliveries: &mut broadcast::Receiver<Delivery>) -> Change {
    loop {
        let delivery = tokio::time::timeout(PATIENCE, deliveries.recv())
            .await
            .expect("a change is delivered in time")
            .expect("the feed stays open and keeps up");
        if let Delivery::Change(change) = delivery {
            return change;
        }
    }
}

/// Returns once `deliveries` receives `writer`'s changes. A cross-process delivery
/// starts listening a moment after it is asked, so a change made before then is never
/// delivered: probes are posted, one a second, until one arrives. Once one has, every
/// later probe is delivered too, so this waits for the last one posted: none is left to
/// arrive after it.
async fn listening(
    writer: &dyn Store,
    author: &User,
    deliveries: &mut broadcast::Receiver<Delivery>,
) {
    let next_posted = async || loop {
        if let Change::Posted { id, .. } = next_change(deliveries).await {
            return vec![id];
        }
    };
    probe_until_heard(writer, author, next_posted).await;
}

/// Posts probes by `author`, one a second, until `next_heard` (the ids of the next posts
/// delivered) yields one of them, then waits for the last probe posted and returns it.
async fn probe_until_heard<F>(writer: &dyn Store, author: &User, mut next_heard: F) -> MessageId
where
    F: AsyncFnMut() -> Vec<MessageId>,
{
    let (mut probes, mut heard) = (Vec::new(), Vec::new());
    let probing = async {
        loop {
            probes.push(writer.add_message(message(author, "probe")).await.expect("posts"));
            let until_one = async {
                while !probes.iter().any(|p| heard.contains(p)) {
                    heard.extend(next_heard().await);
                }
            };
            if tokio::time::timeout(Duration::from_secs(1), until_one).await.is_ok() {
                break;
            }
        }
        let last = *probes.last().expect("one probe posted");
        while !heard.contains(&last) {
            heard.extend(next_heard().await);
        }
        last
    };
    tokio::time::timeout(PATIENCE, probing).await.expect("the feed starts listening in time")
}

/// Every kind of change `writer` makes is delivered to `reader`'s feed, in order.
pub async fn delivers_every_change(writer: Arc<dyn Store>, reader: Arc<dyn Store>) {
    let feed = reader.change_feed().expect("the store delivers changes");
    let mut deliveries = feed.subscribe();
    let alice = user(writer.as_ref(), "alice").await;
    let bob = user(writer.as_ref(), "bob").await;
    listening(writer.as_ref(), &alice, &mut deliveries).await;

    let posted = writer.add_message(message(&alice, "hello")).await.expect("posts");
    let key = ReceiptKey { scope: "test".into(), key: "k1".into() };
    let receipt = Receipt { fingerprint: [7; 32], status: 204, body: Vec::new(), recorded_at: 1 };
    let keyed = Write::Post(message(&bob, "keyed"));
    assert_eq!(writer.apply_once(&key, &receipt, 0, keyed).await.expect("applies"), None);
    let newest = writer
        .list_messages(crate::MessageFilter { limit: 1, ..Default::default() })
        .await
        .expect("lists");
    let pair = Follow { follower: bob.id, followee: alice.id };
    writer.follow(bob.id, alice.id).await.expect("follows");
    writer.unfollow(bob.id, alice.id).await.expect("unfollows");
    assert!(writer.set_flagged_all(&[posted], true).await.expect("flags").is_empty());
    assert!(writer.set_flagged_all(&[posted], false).await.expect("unflags").is_empty());
    assert!(writer.set_disabled(alice.id, true).await.expect("disables"));
    assert!(writer.set_disabled(alice.id, false).await.expect("enables"));
    assert!(writer.bump_session_generation(bob.id).await.expect("signs out"));
    assert!(writer.delete_user(bob.id).await.expect("deletes"));

    assert_eq!(next_change(&mut deliveries).await, Change::Posted { id: posted, author: alice.id });
    let keyed_post = next_change(&mut deliveries).await;
    assert_eq!(keyed_post, Change::Posted { id: newest[0].id, author: bob.id });
    let expected = [
        Change::Followed(pair),
        Change::Unfollowed(pair),
        Change::Flagged(vec![posted]),
        Change::Unflagged(vec![posted]),
        Change::UserDisabled(alice.id),
        Change::UserEnabled(alice.id),
        Change::SessionsEnded(bob.id),
        Change::UserDeleted(bob.id),
    ];
    for change in expected {
        assert_eq!(next_change(&mut deliveries).await, change);
    }
}

/// The next events of a subscription, in time.
async fn next_events(subscription: &mut crate::feed::Subscription) -> Vec<Event> {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("an event arrives in time")
        .expect("the subscription goes on")
}

fn entry_ids(events: &[Event]) -> Vec<MessageId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Entry(entry) => Some(entry.id),
            _ => None,
        })
        .collect()
}

/// Live timelines over `reader` show `writer`'s posts by the pages' rules: a home
/// timeline its reader's and its followees' (not after an unfollow), a user's page that
/// user's, never a flagged message; a reader that says what it saw last catches up by
/// message id; a home reader signed out everywhere is stopped.
pub async fn live_timelines_keep_the_rules(writer: Arc<dyn Store>, reader: Arc<dyn Store>) {
    let live = LiveFeed::start(Arc::clone(&reader), LiveLimits::default())
        .expect("the store delivers changes");
    let (alice, bob, carol) = (
        user(writer.as_ref(), "alice").await,
        user(writer.as_ref(), "bob").await,
        user(writer.as_ref(), "carol").await,
    );
    writer.follow(bob.id, alice.id).await.expect("follows");
    let (mut public, missed) =
        live.subscribe(LiveTimeline::Public, None).await.expect("subscribes");
    assert!(missed.is_empty());
    let (mut home, _) = live.subscribe(LiveTimeline::Home(bob.id), None).await.expect("subscribes");
    let (mut page, _) =
        live.subscribe(LiveTimeline::User(carol.id), None).await.expect("subscribes");

    // A cross-process delivery listens once asked: wait until the public reader hears.
    let probe = probe_until_heard(writer.as_ref(), &carol, async || {
        entry_ids(&next_events(&mut public).await)
    })
    .await;
    // Carol's page shows carol's probes, up to the last.
    let mut on_page = Vec::new();
    while !on_page.contains(&probe) {
        on_page.extend(entry_ids(&next_events(&mut page).await));
    }

    let from_alice = writer.add_message(message(&alice, "from alice")).await.expect("posts");
    assert_eq!(entry_ids(&next_events(&mut home).await), [from_alice], "a followee's post");
    writer.unfollow(bob.id, alice.id).await.expect("unfollows");
    assert_eq!(next_events(&mut home).await, [Event::WithdrawAuthor(alice.id)]);
    let unfollowed = writer.add_message(message(&alice, "not for bob")).await.expect("posts");
    let own = writer.add_message(message(&bob, "bob's own")).await.expect("posts");
    assert_eq!(entry_ids(&next_events(&mut home).await), [own], "not {unfollowed}");
    let flagged = writer.add_message(message(&carol, "to be hidden")).await.expect("posts");
    assert_eq!(entry_ids(&next_events(&mut page).await), [flagged]);
    assert!(writer.set_flagged_all(&[flagged], true).await.expect("flags").is_empty());
    assert_eq!(next_events(&mut page).await, [Event::Withdraw(vec![flagged])]);

    // Caught up by id: what a reader missed since `probe`, flagged ones never.
    let (_, missed) = live.subscribe(LiveTimeline::Public, Some(probe)).await.expect("catches up");
    assert_eq!(entry_ids(&missed), [from_alice, unfollowed, own]);
    let (_, missed) =
        live.subscribe(LiveTimeline::Home(bob.id), Some(probe)).await.expect("catches up");
    assert_eq!(entry_ids(&missed), [own], "the rules hold when catching up too");
    let few = LiveLimits { max_missed: 1, ..LiveLimits::default() };
    let small = LiveFeed::start(Arc::clone(&reader), few).expect("delivers");
    let (_, missed) = small.subscribe(LiveTimeline::Public, Some(probe)).await.expect("subscribes");
    assert_eq!(missed, [Event::Reload], "too much missed: reload");

    assert!(writer.bump_session_generation(bob.id).await.expect("signs out"));
    loop {
        // Other events (the flag's withdrawal) may come first.
        match tokio::time::timeout(PATIENCE, home.next()).await.expect("in time") {
            Ok(events) => assert!(entry_ids(&events).is_empty(), "{events:?}"),
            Err(stop) => break assert_eq!(stop, crate::feed::Stop::SessionEnded),
        }
    }
}
