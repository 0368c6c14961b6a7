//! Timelines: newest first by `(pub_date, id)`, read backwards from the cursor.
//!
//! - public: one reverse range scan of `public_idx` — O(log n + page);
//! - user: one reverse range scan of that author's part of `author_idx` — O(log n + page);
//! - home: one reverse range scan of the user's home index (see `home`), merged with the
//!   wide authors they follow — O(log n + page), whatever the number of accounts
//!   followed. Below the index's floor, a k-way merge of the reverse scans of the user's
//!   and each followee's part of `author_idx`, through a binary heap —
//!   O(k log n + page log k).
//!
//! Nothing scans all messages; flagged messages are not in these indexes at all. The
//! public and author index entries carry the message record itself, so their pages cost
//! their scans plus one author look-up per author not yet in the author cache; home
//! index entries point at the message, read by id.

use crate::home::Position;
use crate::keys;
use crate::records::decode;
use crate::trees::{Trees, backend, corrupt};
use minitwit_core::{Cursor, Message, StoreResult, Timeline, TimelineEntry, UserId};
use sled::IVec;
use std::collections::BinaryHeap;
use std::ops::Bound;

/// A position with the message record, when the index entry carries it (`None`: read the
/// message by id, for home index entries and the empty values of stores written before
/// format 2).
type Found = (Position, Option<IVec>);

/// One newest-first stream of index entries: a reverse index scan.
struct Source {
    iter: std::iter::Rev<sled::Iter>,
    /// Index of the `pub_date` field in the keys; the id follows it.
    offset: usize,
    /// Whether the entries' values are message records.
    records: bool,
}

impl Source {
    fn next(&mut self) -> StoreResult<Option<Found>> {
        let Some(item) = self.iter.next() else { return Ok(None) };
        let (key, value) = item.map_err(backend)?;
        let field = |i| keys::field(&key, i).ok_or_else(|| corrupt("a timeline index key"));
        let record = (self.records && !value.is_empty()).then_some(value);
        Ok(Some(((field(self.offset)?, field(self.offset + 1)?), record)))
    }
}

impl Trees {
    /// Up to `limit` unflagged entries of `timeline` older than `before`.
    pub(crate) fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        match timeline {
            Timeline::Public => self.page(vec![self.public_source(before)], limit),
            Timeline::User(user) => self.page(vec![self.author_source(user, before, None)], limit),
            Timeline::Home(user) => self.home_page(user, before, limit),
        }
    }

    /// A home page: the index above its floor (with the wide authors followed merged
    /// in), then, if the page is not full, the merge below it.
    fn home_page(
        &self,
        user: UserId,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        if self.is_stale(user)? {
            return self.merged_home_page(user, before, limit);
        }
        let floor = self.extent(user)?.floor;
        let above_floor = match (before, floor) {
            (Some(c), Some(floor)) => (c.pub_date, c.id) > floor,
            _ => true,
        };
        let mut entries = Vec::new();
        if above_floor {
            let mut sources = vec![self.home_source(user, before, floor)];
            for author in self.wide_followees(user)? {
                sources.push(self.author_source(author, before, floor));
            }
            entries = self.page(sources, limit)?;
        }
        if let Some((pub_date, id)) = floor.filter(|_| entries.len() < limit) {
            // At and below the floor: just below the cursor or (pub_date, id + 1).
            let at_floor = Cursor { pub_date, id: id.saturating_add(1) };
            let below = if above_floor { at_floor } else { before.unwrap_or(at_floor) };
            entries.extend(self.merged_home_page(user, Some(below), limit - entries.len())?);
        }
        Ok(entries)
    }

    /// A home page merged from the author index of the user and of everyone they follow:
    /// what the home index holds, read without it.
    pub(crate) fn merged_home_page(
        &self,
        user: UserId,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let mut authors = self.followee_ids(user)?;
        authors.push(user);
        authors.sort_unstable();
        authors.dedup();
        let sources = authors.into_iter().map(|a| self.author_source(a, before, None)).collect();
        self.page(sources, limit)
    }

    /// The public index from just below `before`, newest first.
    fn public_source(&self, before: Option<Cursor>) -> Source {
        let end =
            before.map_or(Bound::Unbounded, |c| Bound::Excluded(keys::pair(c.pub_date, c.id)));
        let iter = self.public_idx.range((Bound::Unbounded, end)).rev();
        Source { iter, offset: 0, records: true }
    }

    /// One author's part of the author index from just below `before` down to just above
    /// `floor`, newest first.
    fn author_source(
        &self,
        author: UserId,
        before: Option<Cursor>,
        floor: Option<Position>,
    ) -> Source {
        let iter = self.author_idx.range(owned_range(author, before, floor)).rev();
        Source { iter, offset: 1, records: true }
    }

    /// `owner`'s home index from just below `before` down to just above `floor`.
    fn home_source(
        &self,
        owner: UserId,
        before: Option<Cursor>,
        floor: Option<Position>,
    ) -> Source {
        let iter = self.home.range(owned_range(owner, before, floor)).rev();
        Source { iter, offset: 1, records: false }
    }

    /// Up to `limit` visible entries of `sources` merged, newest first.
    fn page(&self, sources: Vec<Source>, limit: usize) -> StoreResult<Vec<TimelineEntry>> {
        let mut merge = Merge::new(sources)?;
        let mut entries = Vec::with_capacity(limit.min(1024));
        while entries.len() < limit {
            let Some(found) = merge.next()? else { break };
            entries.extend(self.entry(found)?);
        }
        Ok(entries)
    }

    /// The entry at `found`, with its author's name and email (from the author cache);
    /// `None` for a message deleted or flagged since its index entry was read.
    fn entry(&self, ((_, id), record): Found) -> StoreResult<Option<TimelineEntry>> {
        let message = match record {
            Some(record) => decode::<Message>(&record)?,
            None => match self.message_by_id(id)? {
                Some(message) => message,
                None => return Ok(None),
            },
        };
        if message.flagged {
            return Ok(None);
        }
        let Some(author) = self.author(message.author_id)? else { return Ok(None) };
        Ok(Some(TimelineEntry {
            id: message.id,
            author_id: message.author_id,
            author: author.username,
            email: author.email,
            text: message.text,
            pub_date: message.pub_date,
        }))
    }
}

/// The keys of `owner`'s part of a `(owner, pub_date, id)` index strictly between `floor`
/// and `before`.
fn owned_range(
    owner: UserId,
    before: Option<Cursor>,
    floor: Option<Position>,
) -> (Bound<IVec>, Bound<IVec>) {
    let start = match floor {
        Some((pub_date, id)) => Bound::Excluded(keys::triple(owner, pub_date, id)),
        None => Bound::Included(keys::int(owner)),
    };
    let end = match before {
        Some(c) => Bound::Excluded(keys::triple(owner, c.pub_date, c.id)),
        None => Bound::Included(keys::triple(owner, i64::MAX, i64::MAX)),
    };
    (start, end)
}

/// Several newest-first sources as one, through a binary heap; an entry met in two
/// sources (a wide author's message copied before they turned wide) comes once.
struct Merge {
    sources: Vec<Source>,
    heads: BinaryHeap<(Position, usize)>,
    values: Vec<Option<IVec>>,
    last: Option<Position>,
}

impl Merge {
    fn new(mut sources: Vec<Source>) -> StoreResult<Self> {
        let mut heads = BinaryHeap::with_capacity(sources.len());
        let mut values = Vec::with_capacity(sources.len());
        for (index, source) in sources.iter_mut().enumerate() {
            let head = source.next()?.and_then(|(position, value)| {
                heads.push((position, index));
                value
            });
            values.push(head);
        }
        Ok(Self { sources, heads, values, last: None })
    }

    fn next(&mut self) -> StoreResult<Option<Found>> {
        loop {
            let Some((position, index)) = self.heads.pop() else { return Ok(None) };
            let value = match self.sources[index].next()? {
                Some((next_position, next_value)) => {
                    self.heads.push((next_position, index));
                    std::mem::replace(&mut self.values[index], next_value)
                }
                None => self.values[index].take(),
            };
            if self.last != Some(position) {
                self.last = Some(position);
                return Ok(Some((position, value)));
            }
        }
    }
}
