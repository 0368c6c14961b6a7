//! [`ReadToken`]: read-your-writes across stores that read from copies (replicas);
//! [`Snapshot`]: what a store's reads see, named, so that what is derived from them can
//! be served again while nothing changed.
//!
//! A store that serves some reads from copies of its data that may lag behind (such as
//! PostgreSQL streaming replicas) numbers its write history with positions (PostgreSQL:
//! the WAL position). A reader carries a [`ReadToken`]: the position of its own latest
//! write. The store serves that reader from a copy only once the copy has caught up to
//! the token, and advances the token after each of the reader's writes. So a reader
//! always sees its own writes; writes of others may reach it a little later.
//!
//! Front ends keep the token with the client (the web site in its session cookie) and
//! bind it per request with [`crate::MiniTwit::for_reader`]. Positions are opaque to
//! everyone but the store that made them; stores that always read their latest state
//! (sled, the in-memory model) ignore tokens entirely.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The position of a reader's latest write; shared by clones, so a write made on a
/// task of its own still advances the reader's token.
#[derive(Debug, Clone, Default)]
pub struct ReadToken(Arc<AtomicU64>);

impl ReadToken {
    /// A write whose position could not be learned: until a later write's position is
    /// known, the reader is served only from the store's primary copy.
    pub const UNKNOWN: u64 = u64::MAX;

    /// A token that requires nothing (a reader that has not written).
    pub fn new() -> Self {
        Self::default()
    }

    /// A token requiring `position`, as a client brought it back (0: nothing).
    pub fn at(position: u64) -> Self {
        Self(Arc::new(AtomicU64::new(position)))
    }

    /// The position a copy must have reached to serve this reader.
    pub fn position(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records a write at `position`: the token only moves forward, except that a known
    /// position replaces [`ReadToken::UNKNOWN`] (a later write lies beyond the unknown one).
    pub fn advance(&self, position: u64) {
        let update = |current: u64| {
            let next = if current == Self::UNKNOWN { position } else { current.max(position) };
            (next != current).then_some(next)
        };
        // `Err` only means there was nothing to change.
        let _ = self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, update);
    }
}

/// The writes a store's reads see at one moment, named by the store
/// ([`Store::snapshot`](crate::Store::snapshot)), for a store that other processes write
/// too (PostgreSQL: the server's start time and the transaction snapshot).
///
/// Two promises make it safe to serve again what was derived from reads:
/// - what the store's reads see only grows, and two equal snapshots mean that no write
///   became visible between the moments they were taken;
/// - a read that starts after a snapshot was taken sees at least what it names.
///
/// So a value derived from reads made after taking snapshot `s` reflects every write
/// visible at `s`, and while the store's snapshot is still `s` nothing newer exists: the
/// value is as fresh as a read made now ([`PageMemo`](crate::cache::PageMemo)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(Arc<str>);

impl Snapshot {
    /// A snapshot named `name`, which the store makes unique to the writes its reads
    /// see (equal names only for equal sets of visible writes).
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }
}

#[cfg(test)]
mod tests {
    use super::ReadToken;

    #[test]
    fn tokens_move_forward_and_clones_share_them() {
        let token = ReadToken::new();
        let clone = token.clone();
        clone.advance(10);
        token.advance(5);
        assert_eq!(token.position(), 10);
        clone.advance(ReadToken::UNKNOWN);
        assert_eq!(token.position(), ReadToken::UNKNOWN);
        token.advance(12);
        assert_eq!(clone.position(), 12);
        assert_eq!(ReadToken::at(7).position(), 7);
    }
}
