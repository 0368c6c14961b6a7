//! Home timelines kept on write (fan-out on write), so that a signed-in home page is one
//! read of a kept list however many accounts its reader follows.
//!
//! A store only this process writes can keep them in memory, exact, beside the trees
//! they derive from; nothing here is the record of anything, so nothing here must be
//! durable. Written to sled, each copy of a post would cost a sled write: at a hundred
//! followers that made a post ten times dearer (BENCHMARKS.md has the measurement).
//! After a restart, each timeline is built again from the trees when first read.
//!
//! The rules:
//! - **Kept timelines.** A reader's timeline is built from the author index the first
//!   time their home page is read (today's merge): their newest N
//!   ([`HomeConfig::bound`]) entries and those of everyone they follow, except loud
//!   authors. It is then kept exact: a post goes into the kept timelines of its author
//!   and each follower when it is written. Entries below the oldest kept (the *floor*)
//!   are not held: pages there merge as before. When all together exceed
//!   [`HomeConfig::budget`] entries, the least recently read are dropped.
//! - **Loud authors.** Authors with more than F followers ([`HomeConfig::fanout_limit`])
//!   are not fanned out, so a post's cost has a ceiling: a page merges their part of the
//!   author index with the kept timeline, which holds the list of the loud authors its
//!   reader follows. An author who crosses F either way has their followers' timelines
//!   dropped, to be built again under the new rule.
//! - **Everything else drops.** A follow or unfollow drops the follower's timeline; a
//!   flag, unflag or deletion drops those of the author and their followers; an import
//!   (or its undo) drops all. Each is rare next to posts and reads, and the next read
//!   builds again.
//! - **Races.** Every change is applied here after its transaction commits, under the
//!   store's write lock, and bumps a generation. A timeline built by a reader is kept only
//!   if no change came since the reader started (as the author cache does), so a build
//!   from reads that missed a change is never kept.

use crate::keys::{Found, Position};
use minitwit_core::UserId;
use minitwit_core::model::Follow;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The numbers that shape the kept timelines (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HomeConfig {
    /// N: the entries kept per reader.
    pub(crate) bound: usize,
    /// F: the most followers an author may have for their posts to be fanned out.
    pub(crate) fanout_limit: usize,
    /// The most entries all kept timelines hold together.
    pub(crate) budget: usize,
}

impl HomeConfig {
    /// The configuration `options` ask for.
    pub(crate) fn of(options: &crate::SledOptions) -> Self {
        Self {
            bound: options.home_bound.max(1),
            fanout_limit: options.fanout_limit,
            budget: options.home_cache_entries,
        }
    }
}

/// One reader's kept timeline: the newest entries of the reader and the authors they
/// follow (loud ones aside), oldest first, exact from `floor` up; and the loud ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Kept {
    /// The entries, oldest first.
    entries: Vec<Found>,
    /// The oldest position held exactly; `None`: everything is held.
    floor: Option<Position>,
    /// The loud authors among the reader and whom they follow, whose messages every
    /// page merges. Exact while the timeline is kept: a follow or unfollow of the
    /// reader's, and an author turning loud or quiet, drop the timeline.
    loud: Vec<UserId>,
}

/// A page of a kept timeline, with what the page must merge into it.
#[derive(Debug)]
pub(crate) struct KeptPage {
    /// Up to the page's length of entries, newest first.
    pub(crate) entries: Vec<Found>,
    /// The timeline's floor: older entries are not held.
    pub(crate) floor: Option<Position>,
    /// The loud authors to merge above the floor.
    pub(crate) loud: Vec<UserId>,
}

impl Kept {
    /// A timeline of `newest` (newest first, as a merge yields them), holding `bound`
    /// of them (the floor is the oldest held when there were more), and `loud`.
    pub(crate) fn of(mut newest: Vec<Found>, bound: usize, loud: Vec<UserId>) -> Self {
        let floor = (newest.len() > bound).then(|| newest[bound - 1].0);
        newest.truncate(bound);
        newest.reverse();
        Self { entries: newest, floor, loud }
    }

    /// Up to `limit` entries older than `before`, newest first.
    pub(crate) fn page(&self, before: Option<Position>, limit: usize) -> KeptPage {
        let end = before.map_or(self.entries.len(), |b| self.entries.partition_point(|e| e.0 < b));
        KeptPage {
            entries: self.entries[..end].iter().rev().take(limit).cloned().collect(),
            floor: self.floor,
            loud: self.loud.clone(),
        }
    }

    /// Adds an entry in its place (nothing if there, or below the floor); trims the
    /// oldest when the timeline grows past `bound` by a quarter, raising the floor.
    fn add(&mut self, entry: Found, bound: usize) {
        if self.floor.is_some_and(|floor| entry.0 < floor) {
            return;
        }
        if self.entries.last().is_none_or(|last| last.0 < entry.0) {
            // The usual case, a post newer than all: no search through the timeline.
            self.entries.push(entry);
        } else {
            let at = self.entries.partition_point(|e| e.0 < entry.0);
            if self.entries.get(at).is_some_and(|e| e.0 == entry.0) {
                return;
            }
            self.entries.insert(at, entry);
        }
        if self.entries.len() > bound + bound / 4 {
            self.entries.drain(..self.entries.len() - bound);
            self.floor = self.entries.first().map(|e| e.0);
        }
    }
}

/// The kept timelines, each with when it was last read, and their entries in all.
#[derive(Default)]
struct Shelf {
    timelines: HashMap<UserId, (Kept, u64)>,
    entries: usize,
    /// Counts reads, to tell the least recently read.
    clock: u64,
}

impl Shelf {
    /// The reader's timeline, marked as read now.
    fn read(&mut self, reader: UserId) -> Option<&Kept> {
        self.clock += 1;
        let (kept, read_at) = self.timelines.get_mut(&reader)?;
        *read_at = self.clock;
        Some(kept)
    }

    /// Keeps `kept`; over `budget` entries in all, drops the least recently read
    /// timelines down to three quarters of it.
    fn insert(&mut self, reader: UserId, kept: Kept, budget: usize) {
        self.remove(reader);
        self.entries += kept.entries.len();
        self.timelines.insert(reader, (kept, self.clock));
        if self.entries > budget {
            let mut by_age: Vec<(u64, UserId)> =
                self.timelines.iter().map(|(&reader, &(_, at))| (at, reader)).collect();
            by_age.sort_unstable();
            for (_, reader) in by_age {
                if self.entries <= budget / 4 * 3 {
                    break;
                }
                self.remove(reader);
            }
        }
    }

    /// Adds `entry` to the reader's timeline, if one is kept.
    fn add(&mut self, reader: UserId, entry: &Found, bound: usize) {
        if let Some((kept, _)) = self.timelines.get_mut(&reader) {
            let before = kept.entries.len();
            kept.add(entry.clone(), bound);
            self.entries = self.entries + kept.entries.len() - before;
        }
    }

    fn remove(&mut self, reader: UserId) {
        if let Some((kept, _)) = self.timelines.remove(&reader) {
            self.entries -= kept.entries.len();
        }
    }
}

/// The kept timelines and what keeping them needs; see the module documentation.
pub(crate) struct Homes {
    config: HomeConfig,
    state: Mutex<State>,
}

struct State {
    /// Bumped by every change applied here.
    generation: u64,
    /// The kept timelines.
    kept: Shelf,
    /// Every author's followers (the `followers` tree, in memory, for the fan-out).
    followers: HashMap<UserId, HashSet<UserId>>,
    /// The authors with more than F followers.
    loud: HashSet<UserId>,
}

/// Taken before a reader builds a timeline; see [`Homes::keep`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generation(u64);

impl Homes {
    /// Nothing kept yet; the follow pairs `(follower, followee)` of the store.
    pub(crate) fn new(
        config: HomeConfig,
        follows: impl IntoIterator<Item = (UserId, UserId)>,
    ) -> Self {
        let mut followers: HashMap<UserId, HashSet<UserId>> = HashMap::new();
        for (follower, followee) in follows {
            followers.entry(followee).or_default().insert(follower);
        }
        let kept = Shelf::default();
        let loud = followers
            .iter()
            .filter(|(_, f)| f.len() > config.fanout_limit)
            .map(|(&author, _)| author)
            .collect();
        Self { config, state: Mutex::new(State { generation: 0, kept, followers, loud }) }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> HomeConfig {
        self.config
    }

    // A panic while holding the lock leaves at worst a timeline missing an entry that
    // the next change of its reader drops; nothing here is the record of anything.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reader's kept timeline's page of `limit` entries older than `before`; `None`
    /// when nothing is kept for the reader (then build it: take [`Homes::generation`]
    /// first, and [`Homes::keep`] the result).
    pub(crate) fn page(
        &self,
        reader: UserId,
        before: Option<Position>,
        limit: usize,
    ) -> Option<KeptPage> {
        let mut state = self.state();
        Some(state.kept.read(reader)?.page(before, limit))
    }

    /// The generation to hand to [`Homes::keep`].
    pub(crate) fn generation(&self) -> Generation {
        Generation(self.state().generation)
    }

    /// Keeps a timeline built by a reader, unless a change came since `seen`.
    pub(crate) fn keep(&self, reader: UserId, kept: Kept, seen: Generation) {
        let mut state = self.state();
        if state.generation == seen.0 {
            state.kept.insert(reader, kept, self.config.budget);
        }
    }

    /// Takes the loud authors (more than F followers) out of `authors`, and returns them.
    pub(crate) fn split_loud(&self, authors: &mut Vec<UserId>) -> Vec<UserId> {
        let state = self.state();
        let (loud, quiet) = authors.drain(..).partition(|author| state.loud.contains(author));
        *authors = quiet;
        loud
    }

    /// A post by `author` was written: into the kept timelines of the author and each
    /// follower, unless the author is loud.
    pub(crate) fn posted(&self, author: UserId, entry: Found) {
        let bound = self.config.bound;
        let mut state = self.state();
        state.generation += 1;
        let State { kept, followers, loud, .. } = &mut *state;
        if loud.contains(&author) {
            return;
        }
        kept.add(author, &entry, bound);
        for &reader in followers.get(&author).into_iter().flatten() {
            kept.add(reader, &entry, bound);
        }
    }

    /// `follower` now follows `followee` (`true`) or no longer does (`false`): drops the
    /// follower's timeline, and the followee's followers' if the followee crossed F.
    pub(crate) fn follow_changed(&self, follower: UserId, followee: UserId, follows: bool) {
        let mut state = self.state();
        state.generation += 1;
        state.kept.remove(follower);
        state.set_follow(follower, followee, follows, self.config.fanout_limit);
    }

    /// A message of `author` was flagged or unflagged: drops the timelines that show or
    /// would show it.
    pub(crate) fn message_changed(&self, author: UserId) {
        let mut state = self.state();
        state.generation += 1;
        state.drop_audience(author);
    }

    /// `user` was deleted, with their messages and follows (`followees`: whom they
    /// followed).
    pub(crate) fn user_deleted(&self, user: UserId, followees: &[UserId]) {
        let mut state = self.state();
        state.generation += 1;
        state.remove_user(user, followees, self.config.fanout_limit);
    }

    /// An import wrote `follows`, with users and messages: records the pairs and drops
    /// every kept timeline (the messages may belong in any), to be built when read.
    pub(crate) fn imported(&self, follows: &[Follow]) {
        let mut state = self.state();
        state.generation += 1;
        state.kept = Shelf::default();
        for follow in follows {
            state.set_follow(follow.follower, follow.followee, true, self.config.fanout_limit);
        }
    }

    /// The undo of an import removed `follows`, and `users` (each with whom they
    /// followed) with everything of theirs: forgets them and drops every kept timeline.
    pub(crate) fn import_undone<'a>(
        &self,
        follows: &[Follow],
        users: impl IntoIterator<Item = (UserId, &'a [UserId])>,
    ) {
        let limit = self.config.fanout_limit;
        let mut state = self.state();
        state.generation += 1;
        state.kept = Shelf::default();
        for follow in follows {
            state.set_follow(follow.follower, follow.followee, false, limit);
        }
        for (user, followees) in users {
            state.remove_user(user, followees, limit);
        }
    }
}

impl State {
    /// Records that `follower` follows `followee` or not; if that makes the followee
    /// cross `limit` either way, drops their audience's timelines (built under the other
    /// rule) and marks them loud or not.
    fn set_follow(&mut self, follower: UserId, followee: UserId, follows: bool, limit: usize) {
        let set = self.followers.entry(followee).or_default();
        if follows {
            set.insert(follower);
        } else {
            set.remove(&follower);
        }
        let loud = set.len() > limit;
        if loud != self.loud.contains(&followee) {
            self.drop_audience(followee);
            if loud {
                self.loud.insert(followee);
            } else {
                self.loud.remove(&followee);
            }
        }
    }

    /// Forgets `user` (who followed `followees`) and drops the timelines that showed them.
    fn remove_user(&mut self, user: UserId, followees: &[UserId], limit: usize) {
        self.drop_audience(user);
        self.followers.remove(&user);
        self.loud.remove(&user);
        for &followee in followees {
            self.set_follow(user, followee, false, limit);
        }
    }

    /// Drops the kept timelines of `author` and of their followers.
    fn drop_audience(&mut self, author: UserId) {
        let State { kept, followers, .. } = self;
        kept.remove(author);
        for &reader in followers.get(&author).into_iter().flatten() {
            kept.remove(reader);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::MessageId;

    fn entry(date: i64, id: i64) -> Found {
        ((date, MessageId(id)), sled::IVec::default())
    }

    fn positions(page: &KeptPage) -> Vec<i64> {
        page.entries.iter().map(|e| e.0.1.0).collect()
    }

    #[test]
    fn a_kept_timeline_pages_newest_first_and_trims_to_its_bound_raising_the_floor() {
        let mut kept = Kept::of(vec![entry(3, 3), entry(2, 2), entry(1, 1)], 4, vec![]);
        assert_eq!(kept.floor, None);
        kept.add(entry(5, 5), 4);
        kept.add(entry(4, 4), 4);
        kept.add(entry(4, 4), 4);
        assert_eq!(positions(&kept.page(None, 10)), [5, 4, 3, 2, 1], "in place, once");
        assert_eq!(positions(&kept.page(Some((4, MessageId(4))), 2)), [3, 2]);
        kept.add(entry(6, 6), 4);
        assert_eq!(positions(&kept.page(None, 10)), [6, 5, 4, 3], "trimmed past 4 + 1");
        assert_eq!(kept.floor, Some((3, MessageId(3))));
        kept.add(entry(2, 7), 4);
        assert_eq!(positions(&kept.page(None, 10)), [6, 5, 4, 3], "below the floor: not held");
    }

    #[test]
    fn a_timeline_built_while_a_change_came_is_not_kept() {
        let config = HomeConfig { bound: 10, fanout_limit: 10, budget: 100 };
        let homes = Homes::new(config, [(UserId(1), UserId(2))]);
        let seen = homes.generation();
        homes.posted(UserId(2), entry(1, 1));
        homes.keep(UserId(1), Kept::default(), seen);
        assert!(homes.page(UserId(1), None, 10).is_none());
        homes.keep(UserId(1), Kept::default(), homes.generation());
        homes.posted(UserId(2), entry(2, 2));
        let page = homes.page(UserId(1), None, 10).expect("kept");
        assert_eq!(positions(&page), [2], "a kept timeline gets its followees' posts");
    }
}
