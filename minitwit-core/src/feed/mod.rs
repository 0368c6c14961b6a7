//! The change feed: what changed in the store, told to every process serving it, so that
//! open timelines can show new messages as they are posted (CONTRACT.md §13).
//!
//! - [`Change`]: one change a write made (a message posted, flagged or unflagged, a user
//!   disabled, enabled or deleted, a user's sessions ended, a follow added or removed),
//!   with a compact text form ([`Change::encode`]) for deliveries that cross processes.
//! - [`ChangeFeed`]: a store's delivery of changes to this process
//!   ([`Store::change_feed`](crate::Store::change_feed)). Each backend provides its own:
//!   an in-process [`Hub`] on the embedded store, LISTEN/NOTIFY on PostgreSQL. A
//!   delivery is at most once: a change may be lost (a process restarting, a database
//!   connection dropped), and a delivery that knows it may have lost some says so with
//!   [`Delivery::Gap`]; readers then catch up from the store itself.
//! - `live`: who may see what. [`LiveFeed`] turns this process's deliveries into
//!   timeline entries, once per process, and [`Subscription`]s hand each reader the
//!   events of its timeline only, by the timelines' own rules (CONTRACT.md §1.4).
//! - `wake`: readers woken a batch at a time, so that a burst of stream writes never
//!   queues ahead of the requests a process serves.

mod live;
mod wake;

pub use live::{Event, LiveFeed, LiveLimits, LiveTimeline, Stop, Subscription};

use crate::idempotency::Write;
use crate::model::{Follow, MessageId, UserId};
use tokio::sync::broadcast;

/// One change a write made, as the feed tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was posted.
    Posted {
        /// The new message.
        id: MessageId,
        /// Its author.
        author: UserId,
    },
    /// These messages were flagged (hidden).
    Flagged(Vec<MessageId>),
    /// These messages were unflagged (shown again).
    Unflagged(Vec<MessageId>),
    /// The user was disabled.
    UserDisabled(UserId),
    /// The user was enabled again.
    UserEnabled(UserId),
    /// The user was deleted, with their messages and follows.
    UserDeleted(UserId),
    /// Every session of the user ended (signed out everywhere, password changed).
    SessionsEnded(UserId),
    /// A follow pair was added (or was there already).
    Followed(Follow),
    /// A follow pair was removed (or was not there).
    Unfollowed(Follow),
}

/// Ids per encoded flag or unflag change: PostgreSQL's NOTIFY takes under 8000 bytes.
const IDS_PER_TEXT: usize = 300;

impl Change {
    /// The change `write` made once applied (`posted`: a post's new id; a post without
    /// one made none that is told); a registration makes none.
    pub fn of_write(write: &Write, posted: Option<MessageId>) -> Option<Self> {
        match *write {
            Write::Register(_) => None,
            Write::Post(ref message) => {
                posted.map(|id| Self::Posted { id, author: message.author_id })
            }
            Write::Follow { follower, followee } => {
                Some(Self::Followed(Follow { follower, followee }))
            }
            Write::Unfollow { follower, followee } => {
                Some(Self::Unfollowed(Follow { follower, followee }))
            }
        }
    }

    /// The change in text, in as many pieces as it needs (flagging many messages takes
    /// several), each at most a few kilobytes: `p ID AUTHOR`, `f ID…`, `u ID…`, `d USER`,
    /// `e USER`, `x USER`, `s USER`, `F FOLLOWER FOLLOWEE`, `U FOLLOWER FOLLOWEE`.
    pub fn encode(&self) -> Vec<String> {
        let one = |text: String| vec![text];
        match self {
            Self::Posted { id, author } => one(format!("p {id} {author}")),
            Self::Flagged(ids) => encode_ids('f', ids),
            Self::Unflagged(ids) => encode_ids('u', ids),
            Self::UserDisabled(user) => one(format!("d {user}")),
            Self::UserEnabled(user) => one(format!("e {user}")),
            Self::UserDeleted(user) => one(format!("x {user}")),
            Self::SessionsEnded(user) => one(format!("s {user}")),
            Self::Followed(pair) => one(format!("F {} {}", pair.follower, pair.followee)),
            Self::Unfollowed(pair) => one(format!("U {} {}", pair.follower, pair.followee)),
        }
    }

    /// Reads one piece of [`Change::encode`]'s form; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let mut words = text.split(' ');
        let kind = words.next()?;
        let numbers: Vec<i64> = words.map(str::parse).collect::<Result<_, _>>().ok()?;
        let ids = |ids: &[i64]| ids.iter().copied().map(MessageId).collect();
        let pair =
            |follower, followee| Follow { follower: UserId(follower), followee: UserId(followee) };
        let change = match (kind, numbers.as_slice()) {
            ("p", &[id, author]) => Self::Posted { id: MessageId(id), author: UserId(author) },
            ("f", some) if !some.is_empty() => Self::Flagged(ids(some)),
            ("u", some) if !some.is_empty() => Self::Unflagged(ids(some)),
            ("d", &[user]) => Self::UserDisabled(UserId(user)),
            ("e", &[user]) => Self::UserEnabled(UserId(user)),
            ("x", &[user]) => Self::UserDeleted(UserId(user)),
            ("s", &[user]) => Self::SessionsEnded(UserId(user)),
            ("F", &[follower, followee]) => Self::Followed(pair(follower, followee)),
            ("U", &[follower, followee]) => Self::Unfollowed(pair(follower, followee)),
            _ => return None,
        };
        Some(change)
    }
}

/// `KIND ID ID …`, in pieces of at most [`IDS_PER_TEXT`] ids.
fn encode_ids(kind: char, ids: &[MessageId]) -> Vec<String> {
    ids.chunks(IDS_PER_TEXT)
        .map(|chunk| {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            format!("{kind} {}", ids.join(" "))
        })
        .collect()
}

/// What a feed delivers to this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A change, in the order the writes were made visible.
    Change(Change),
    /// Changes may have been lost here (the delivery's connection dropped and came back):
    /// readers catch up from the store.
    Gap,
}

/// A store's delivery of changes to this process: every change any process made
/// through that store, from the moment of subscribing, at most once each.
pub trait ChangeFeed: Send + Sync + 'static {
    /// A receiver of the deliveries from now on. A receiver that falls more than the
    /// channel's capacity behind loses the oldest ones (and is told so by `recv`).
    fn subscribe(&self) -> broadcast::Receiver<Delivery>;
}

/// Deliveries kept for a subscriber that is behind, per process.
pub const HUB_CAPACITY: usize = 1024;

/// An in-process fan-out of deliveries: what the embedded store publishes to directly,
/// and what a cross-process delivery hands on to this process's subscribers.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Delivery>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(HUB_CAPACITY)
    }
}

impl Hub {
    /// A hub keeping up to `capacity` deliveries for a subscriber that is behind.
    pub fn new(capacity: usize) -> Self {
        Self { sender: broadcast::channel(capacity.max(1)).0 }
    }

    /// Tells every subscriber of this process about `change`.
    pub fn publish(&self, change: Change) {
        // No subscriber is fine: nobody is reading a timeline.
        let _ = self.sender.send(Delivery::Change(change));
    }

    /// Tells every subscriber of this process that changes may have been lost.
    pub fn gap(&self) {
        let _ = self.sender.send(Delivery::Gap);
    }
}

impl ChangeFeed for Hub {
    fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_their_text() {
        let pair = Follow { follower: UserId(3), followee: UserId(4) };
        let changes = [
            Change::Posted { id: MessageId(12), author: UserId(3) },
            Change::Flagged(vec![MessageId(1), MessageId(2), MessageId(3)]),
            Change::Unflagged(vec![MessageId(9)]),
            Change::UserDisabled(UserId(5)),
            Change::UserEnabled(UserId(5)),
            Change::UserDeleted(UserId(6)),
            Change::SessionsEnded(UserId(7)),
            Change::Followed(pair),
            Change::Unfollowed(pair),
        ];
        for change in changes {
            let texts = change.encode();
            assert_eq!(texts.len(), 1);
            assert_eq!(Change::decode(&texts[0]), Some(change));
        }
        for junk in ["", "p", "p 1", "p 1 x", "f", "q 1", "d 1 2", "p 1 2 3"] {
            assert_eq!(Change::decode(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn many_flags_are_cut_into_pieces_a_notification_can_carry() {
        let ids: Vec<MessageId> = (1_000_000_000_000..1_000_000_001_000).map(MessageId).collect();
        let texts = Change::Flagged(ids.clone()).encode();
        assert!(texts.len() > 1);
        assert!(texts.iter().all(|t| t.len() < 7_900), "NOTIFY's payload limit");
        let back: Vec<MessageId> = texts
            .iter()
            .flat_map(|t| match Change::decode(t) {
                Some(Change::Flagged(ids)) => ids,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, ids);
    }
}
