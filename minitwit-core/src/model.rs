//! The records the stores keep and return: users, messages, follows, timeline entries,
//! keyset cursors and counts.

use crate::domain::{Email, MessageText, Username};
use serde::{Deserialize, Serialize};

/// Declares an id type: the store's `i64`, in a type of its own so that one kind of id
/// cannot be passed where another is meant. The number is public (`id.0`) for stores and
/// for ids read from outside; it prints and parses as the bare number, and serializes as
/// one.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// A user's id: assigned by the store, increasing, never reused.
    UserId
);
id_type!(
    /// A message's id: assigned by the store, increasing, never reused.
    MessageId
);

/// Seconds since the Unix epoch, now: the unit of every time a record holds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A registered user as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The store's id.
    pub id: UserId,
    /// The exact name registered (case-sensitive).
    pub username: String,
    /// The address used for the Gravatar picture.
    pub email: String,
    /// The Argon2id hash in PHC string form; never shown, logged or sent.
    pub pw_hash: String,
    /// A disabled user cannot log in or post; their messages stay visible.
    pub disabled: bool,
}

/// A user about to be created; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The chosen name.
    pub username: Username,
    /// The Gravatar address.
    pub email: Email,
    /// The password hash (PHC string).
    pub pw_hash: String,
}

/// A message as the store keeps it, flagged or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The store's id.
    pub id: MessageId,
    /// Who wrote it.
    pub author_id: UserId,
    /// The text as written.
    pub text: String,
    /// Publication time, Unix seconds.
    pub pub_date: i64,
    /// Flagged messages are hidden from every timeline and listing, but kept.
    pub flagged: bool,
}

/// A message about to be posted; the store assigns the id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Who writes it; must exist.
    pub author_id: UserId,
    /// The text.
    pub text: MessageText,
    /// Publication time, Unix seconds.
    pub pub_date: i64,
}

/// `follower` follows `followee`. A pair exists at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Follow {
    /// Who follows.
    pub follower: UserId,
    /// Whom they follow.
    pub followee: UserId,
}

/// Which timeline to read.
///
/// Ids have types of their own, so a message's id cannot name a user's timeline:
///
/// ```compile_fail
/// use minitwit_core::{MessageId, Timeline};
/// let _ = Timeline::Home(MessageId(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeline {
    /// Every unflagged message.
    Public,
    /// One author's unflagged messages.
    User(UserId),
    /// The unflagged messages of the user and of everyone the user follows.
    Home(UserId),
}

/// A position in a timeline: the `(pub_date, id)` of the last entry a reader saw. The
/// next page holds the entries strictly older, that is with a smaller `(pub_date, id)`.
/// Timelines are ordered newest first by exactly this pair, so keyset pages never skip
/// or repeat an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// Publication time of the last entry seen.
    pub pub_date: i64,
    /// Id of the last entry seen.
    pub id: MessageId,
}

impl Cursor {
    /// The cursor just past `entry`.
    pub fn after(entry: &TimelineEntry) -> Self {
        Self { pub_date: entry.pub_date, id: entry.id }
    }

    /// A compact form for URLs: `PUBDATE.ID`.
    pub fn to_token(self) -> String {
        format!("{}.{}", self.pub_date, self.id)
    }

    /// Reads [`Cursor::to_token`]'s form; `None` for anything else.
    pub fn from_token(token: &str) -> Option<Self> {
        let (date, id) = token.split_once('.')?;
        Some(Self { pub_date: date.parse().ok()?, id: id.parse().ok()? })
    }

    /// Whether `entry` lies strictly after this cursor in timeline order (is older).
    pub fn is_before(self, pub_date: i64, id: MessageId) -> bool {
        (pub_date, id) < (self.pub_date, self.id)
    }
}

/// One line of a timeline: the message and what a page needs of its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    /// The message id.
    pub id: MessageId,
    /// The author's id.
    pub author_id: UserId,
    /// The author's name.
    pub author: String,
    /// The author's email, for the Gravatar picture.
    pub email: String,
    /// The text as written.
    pub text: String,
    /// Publication time, Unix seconds.
    pub pub_date: i64,
}

impl TimelineEntry {
    /// The author's Gravatar picture at `size` pixels.
    pub fn gravatar_url(&self, size: u32) -> String {
        crate::gravatar::url(&self.email, size)
    }
}

/// One page of a timeline and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries, newest first.
    pub entries: Vec<TimelineEntry>,
    /// The cursor for the next (older) page, if there is one.
    pub next: Option<Cursor>,
}

/// What an admin listing of messages selects. Results are newest id first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageFilter {
    /// Only this author's messages.
    pub author: Option<UserId>,
    /// Only flagged (`Some(true)`) or unflagged (`Some(false)`) messages.
    pub flagged: Option<bool>,
    /// Only messages with a smaller id (keyset paging).
    pub before: Option<MessageId>,
    /// At most this many.
    pub limit: usize,
}

/// Totals, cheap to read: for `stats`, `/metrics` and copy verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Registered users (disabled included).
    pub users: u64,
    /// All messages (flagged included).
    pub messages: u64,
    /// Follow pairs.
    pub follows: u64,
    /// Flagged messages.
    pub flagged: u64,
}

/// Records written as they are, ids and all: what `import` and `copy` write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportBatch {
    /// Users, with their ids and password hashes.
    pub users: Vec<User>,
    /// Messages, with their ids, dates and flags; their authors must exist.
    pub messages: Vec<Message>,
    /// Follow pairs between existing users.
    pub follows: Vec<Follow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_tokens_round_trip() {
        let c = Cursor { pub_date: 1_582_246_860, id: MessageId(42) };
        assert_eq!(Cursor::from_token(&c.to_token()), Some(c));
        assert_eq!(Cursor::from_token("nonsense"), None);
        assert_eq!(Cursor::from_token("1.x"), None);
        assert!(c.is_before(1_582_246_860, MessageId(41)));
        assert!(!c.is_before(1_582_246_860, MessageId(42)));
        assert!(c.is_before(1_582_246_859, MessageId(99)));
    }
}
