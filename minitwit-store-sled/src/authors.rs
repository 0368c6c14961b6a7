//! An in-process cache of each author's name and email by user id, for timeline pages
//! and follow listings (a page of 100 entries needed up to 100 user look-ups).
//!
//! Correct because of what never changes: a user's id, name and email are fixed from
//! creation to deletion (a store has no rename), and ids of deleted users come back
//! only through an import. So the one change to watch is deletion: it removes the user
//! and bumps a generation after its transaction commits, and a reader caches what it
//! read only if no deletion happened since it started reading (the generation is the
//! same), so a record read just before a deletion is never cached after it.

use minitwit_core::UserId;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// At most this many authors are kept; when full, the cache starts over.
const CAPACITY: usize = 1 << 16;

/// What a timeline entry shows of its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Author {
    /// The user's name.
    pub(crate) username: String,
    /// The user's email, for the Gravatar picture.
    pub(crate) email: String,
}

/// The cache; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Authors {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every deletion.
    generation: u64,
    known: HashMap<UserId, Author>,
}

/// Taken before reading a user record; lets [`Authors::insert`] tell whether a deletion
/// came in between.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generation(u64);

impl Authors {
    // The lock guards a map and a counter that no panic leaves half-updated.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached author, or the generation to pass to [`Authors::insert`] after
    /// reading the record.
    pub(crate) fn get(&self, id: UserId) -> Result<Author, Generation> {
        let state = self.read();
        state.known.get(&id).cloned().ok_or(Generation(state.generation))
    }

    /// Caches an author read from the store, unless a deletion happened since `seen`.
    pub(crate) fn insert(&self, id: UserId, author: Author, seen: Generation) {
        let mut state = self.write();
        if state.generation != seen.0 {
            return;
        }
        if state.known.len() >= CAPACITY {
            state.known.clear();
        }
        state.known.insert(id, author);
    }

    /// Forgets a deleted user; call after the deletion is applied.
    pub(crate) fn forget(&self, id: UserId) {
        let mut state = self.write();
        state.generation += 1;
        state.known.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(name: &str) -> Author {
        Author { username: name.to_owned(), email: format!("{name}@example.com") }
    }

    #[test]
    fn a_read_that_raced_a_deletion_is_not_cached() {
        let authors = Authors::default();
        let Err(seen) = authors.get(UserId(1)) else { panic!("empty cache") };
        authors.forget(UserId(1));
        authors.insert(UserId(1), author("gone"), seen);
        assert!(authors.get(UserId(1)).is_err(), "the record read before the deletion is dropped");
        let Err(seen) = authors.get(UserId(1)) else { panic!("still empty") };
        authors.insert(UserId(1), author("new"), seen);
        assert_eq!(authors.get(UserId(1)).ok(), Some(author("new")));
        authors.forget(UserId(1));
        assert!(authors.get(UserId(1)).is_err(), "a deletion forgets the author");
    }
}
