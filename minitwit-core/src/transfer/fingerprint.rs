//! [`Fingerprint`]s: counts and a SHA-256 checksum over a canonical encoding of every
//! record in export order, so two stores (or a store and a file) can be compared without
//! holding either in memory.

use super::record::Record;
use crate::model::{Counts, Follow, Message, User};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What a store holds, summarised: equal fingerprints mean equal contents (users with
/// hashes and flags, messages with dates and flags, follows, latest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many records of each kind.
    pub counts: Counts,
    /// The id of the last simulator action, if any.
    pub latest: Option<i64>,
    /// Lower-case hex SHA-256 over the canonical encoding of every record.
    pub checksum: String,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let latest = self.latest.map_or_else(|| "none".to_owned(), |l| l.to_string());
        write!(
            f,
            "{} users, {} messages ({} flagged), {} follows, latest {latest}, sha256 {}",
            c.users, c.messages, c.flagged, c.follows, self.checksum
        )
    }
}

/// Builds a [`Fingerprint`] from records fed in export order: users by id, then messages
/// by id, then follows by pair, then latest. The encoding is length-prefixed, so no two
/// different record sequences encode alike.
#[derive(Default)]
pub struct FingerprintBuilder {
    hash: Sha256,
    counts: Counts,
    latest: Option<i64>,
}

impl FingerprintBuilder {
    /// A builder that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds any record.
    pub fn record(&mut self, record: &Record) {
        match record {
            Record::User(u) => self.user(u),
            Record::Message(m) => self.message(m),
            Record::Follow(f) => self.follow(f),
            Record::Latest { latest } => self.latest(*latest),
        }
    }

    /// Adds a user.
    pub fn user(&mut self, user: &User) {
        self.counts.users += 1;
        self.tag(b'u');
        self.int(user.id.0);
        self.text(&user.username);
        self.text(&user.email);
        self.text(&user.pw_hash);
        self.flag(user.disabled);
    }

    /// Adds a message.
    pub fn message(&mut self, message: &Message) {
        self.counts.messages += 1;
        self.counts.flagged += u64::from(message.flagged);
        self.tag(b'm');
        self.int(message.id.0);
        self.int(message.author_id.0);
        self.text(&message.text);
        self.int(message.pub_date);
        self.flag(message.flagged);
    }

    /// Adds a follow pair.
    pub fn follow(&mut self, follow: &Follow) {
        self.counts.follows += 1;
        self.tag(b'f');
        self.int(follow.follower.0);
        self.int(follow.followee.0);
    }

    /// Records latest (the last thing fed).
    pub fn latest(&mut self, latest: i64) {
        self.latest = Some(latest);
        self.tag(b'l');
        self.int(latest);
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The fingerprint of everything fed.
    pub fn finish(self) -> Fingerprint {
        Fingerprint {
            counts: self.counts,
            latest: self.latest,
            checksum: hex::encode(self.hash.finalize()),
        }
    }

    fn tag(&mut self, tag: u8) {
        self.hash.update([tag]);
    }

    fn int(&mut self, value: i64) {
        self.hash.update(value.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        self.hash.update((value.len() as u64).to_be_bytes());
        self.hash.update(value.as_bytes());
    }

    fn flag(&mut self, value: bool) {
        self.hash.update([u8::from(value)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;

    fn user(name: &str) -> User {
        User {
            id: UserId(1),
            username: name.into(),
            email: "e@x".into(),
            pw_hash: "h".into(),
            disabled: false,
        }
    }

    #[test]
    fn any_field_changes_the_checksum() {
        let of = |u: &User| {
            let mut b = FingerprintBuilder::new();
            b.user(u);
            b.finish()
        };
        let base = user("ab");
        let disabled = User { disabled: true, ..base.clone() };
        let shifted = User { username: "a".into(), email: "be@x".into(), ..base.clone() };
        assert_ne!(of(&base), of(&disabled));
        assert_ne!(of(&base).checksum, of(&shifted).checksum, "length prefixes separate fields");
        assert_eq!(of(&base), of(&user("ab")));
    }
}
