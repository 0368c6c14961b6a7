//! Writes applied exactly once, whatever retries them: a client (or the proxy in front of
//! it) names a write with an idempotency key; the store records the write's answer, a
//! [`Receipt`], under that key in the same durable step as the write; and a request
//! carrying a key already recorded gets the recorded answer and changes nothing
//! (CONTRACT.md §4.5).
//!
//! - A key belongs to its caller ([`ReceiptKey::scope`]): one caller can never be
//!   answered from another's receipts.
//! - A receipt remembers its request's [`Receipt::fingerprint`], so a key reused for a
//!   different request is refused ([`ServiceError::KeyReused`](crate::ServiceError)),
//!   never answered with the other request's answer.
//! - Receipts are kept for a window ([`DEFAULT_RECEIPT_WINDOW`] unless configured), then
//!   ignored and swept ([`MiniTwit::forget_expired_receipts`](crate::MiniTwit)).

use crate::domain::ValidationError;
use crate::model::{NewMessage, NewUser, UserId};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// The request header that carries a key (IETF httpapi draft "The Idempotency-Key HTTP
/// Header Field"), in the lower case HTTP/2 requires.
pub const KEY_HEADER: &str = "idempotency-key";
/// The response header that marks an answer replayed from a receipt (`true`).
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a receipt answers retries unless configured otherwise: a day, as the
/// payment APIs that made these keys common keep theirs.
pub const DEFAULT_RECEIPT_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// An idempotency key as a client sent it (the `Idempotency-Key` header): 1 to
/// [`IdempotencyKey::MAX_LEN`] visible ASCII characters, such as a UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The longest key accepted, in bytes.
    pub const MAX_LEN: usize = 255;

    /// The key `raw`, or [`ValidationError::IdempotencyKeyInvalid`].
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let visible = |b: &u8| b.is_ascii_graphic();
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !raw.as_bytes().iter().all(visible) {
            return Err(ValidationError::IdempotencyKeyInvalid);
        }
        Ok(Self(raw.to_owned()))
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Where a receipt is kept: the caller's identity and the caller's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptKey {
    /// Who sent the request, as the front end knows them (`api:simulator`,
    /// `web:user:42`); never holds a NUL.
    pub scope: String,
    /// The caller's key.
    pub key: String,
}

/// The recorded answer of a write that carried a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// SHA-256 of the request as sent (see [`Keyed::new`]): a retry has the same.
    pub fingerprint: [u8; 32],
    /// The answer's status.
    pub status: u16,
    /// The answer's body, in the front end's own encoding.
    pub body: Vec<u8>,
    /// When it was recorded, in seconds since the Unix epoch.
    pub recorded_at: i64,
}

/// A write request that carries a key, as a front end hands it to the service: the key,
/// and the receipt to record if the write applies (the answer it then gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// Where the receipt is kept.
    pub key: ReceiptKey,
    /// What is recorded when the write applies.
    pub receipt: Receipt,
}

impl Keyed {
    /// The request made of `parts` (method, target, body: whatever tells two requests
    /// apart), sent by `scope` with `key`; answered with `status` and `body` when applied.
    pub fn new(
        scope: impl Into<String>,
        key: IdempotencyKey,
        parts: &[&[u8]],
        status: u16,
        body: Vec<u8>,
    ) -> Self {
        let scope = scope.into().replace('\0', "");
        let receipt = Receipt {
            fingerprint: fingerprint(parts),
            status,
            body,
            recorded_at: crate::model::unix_now(),
        };
        Self { key: ReceiptKey { scope, key: key.0 }, receipt }
    }
}

/// SHA-256 over `parts`, each prefixed with its length so that no two lists of parts
/// hash alike by moving a boundary.
fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// A write that can be applied once under a key ([`Store::apply_once`](crate::Store)).
#[derive(Debug, Clone)]
pub enum Write {
    /// [`Store::create_user`](crate::Store::create_user).
    Register(NewUser),
    /// [`Store::add_message`](crate::Store::add_message).
    Post(NewMessage),
    /// [`Store::follow`](crate::Store::follow).
    Follow {
        /// Who follows.
        follower: UserId,
        /// Whom.
        followee: UserId,
    },
    /// [`Store::unfollow`](crate::Store::unfollow).
    Unfollow {
        /// Who stops following.
        follower: UserId,
        /// Whom.
        followee: UserId,
    },
}

/// Which way a follow changes: `POST /fllws/{username}` asks for either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowChange {
    /// Start following.
    Follow,
    /// Stop following.
    Unfollow,
}

impl FollowChange {
    /// This change of whether `follower` follows `followee`, as a write.
    pub fn write(self, follower: UserId, followee: UserId) -> Write {
        match self {
            Self::Follow => Write::Follow { follower, followee },
            Self::Unfollow => Write::Unfollow { follower, followee },
        }
    }
}

/// A write's key and receipt, and the oldest recording time of a receipt still in force:
/// what [`Store::apply_once`](crate::Store::apply_once) takes besides the write.
#[derive(Debug, Clone, Copy)]
pub struct Once<'a> {
    /// The key the write is applied once under.
    pub key: &'a ReceiptKey,
    /// The answer to keep under it.
    pub receipt: &'a Receipt,
    /// A receipt recorded before this is expired.
    pub since: i64,
}

/// What a write request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The write was applied now (and its receipt recorded, if it carried a key).
    Applied,
    /// The key was recorded already: nothing was written; answer as recorded.
    Replayed(Receipt),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        for good in ["a", "8e03978e-40d5-43e8-bc93-6894a57f9324", &"k".repeat(255)] {
            assert!(IdempotencyKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "a b", "ключ", "a\0b", &"k".repeat(256)] {
            assert_eq!(IdempotencyKey::parse(bad), Err(ValidationError::IdempotencyKeyInvalid));
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart_by_every_part() {
        let of = |parts: &[&[u8]]| fingerprint(parts);
        assert_eq!(of(&[b"POST", b"/msgs/a", b"{}"]), of(&[b"POST", b"/msgs/a", b"{}"]));
        assert_ne!(of(&[b"POST", b"/msgs/a", b"{}"]), of(&[b"POST", b"/msgs/b", b"{}"]));
        assert_ne!(of(&[b"ab", b"c"]), of(&[b"a", b"bc"]));
    }
}
