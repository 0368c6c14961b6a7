//! Timelines: newest first by `(pub_date, id)`, read backwards from the cursor.
//!
//! - public: one reverse range scan of `public_idx` — O(log n + page);
//! - user: one reverse range scan of that author's part of `author_idx` — O(log n + page);
//! - home: a page of the reader's kept timeline (see `home`), merged with the loud
//!   authors they follow — O(log N + page) for a reader who follows no loud author;
//!   when none is kept (built then), and below the kept timeline's floor, a k-way merge
//!   of the reverse scans of the user's and each followee's part of `author_idx`,
//!   through a binary heap — O(k log n + page log k).
//!   Nothing scans all messages; flagged messages are not in these indexes at all.
//!
//! The index entries carry the message record itself, so a page costs its scans plus
//! one author look-up per author not yet in the author cache; no message look-ups.

use crate::home::{Kept, KeptPage};
use crate::keys::{self, Found, Position};
use crate::records::decode;
use crate::trees::{Trees, backend, corrupt};
use minitwit_core::store::StoreResult;
use minitwit_core::{Cursor, Message, Timeline, TimelineEntry, UserId};
use std::collections::BinaryHeap;
use std::ops::Bound;

/// One newest-first stream of entries: a reverse index scan, or a kept home timeline's
/// page.
#[expect(
    clippy::large_enum_variant,
    reason = "a page holds a few sources, in one Vec; boxing the usual one, the scan, would allocate per source"
)]
enum Source {
    Index {
        iter: std::iter::Rev<sled::Iter>,
        /// Index of the `pub_date` field in the keys; the id follows it.
        offset: usize,
    },
    Kept(std::vec::IntoIter<Found>),
}

impl Source {
    fn next(&mut self) -> StoreResult<Option<Found>> {
        match self {
            Self::Index { iter, offset } => {
                let Some(item) = iter.next() else { return Ok(None) };
                let (key, value) = item.map_err(backend)?;
                Ok(Some((position_at(&key, *offset)?, value)))
            }
            Self::Kept(entries) => Ok(entries.next()),
        }
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
        let found = match timeline {
            Timeline::Public => merge(vec![self.public_source(before)], limit)?,
            Timeline::User(user) => {
                merge(vec![self.prefix_source(&self.author_idx, user, None, before)], limit)?
            }
            Timeline::Home(user) => self.home(user, before, limit)?,
        };
        self.entries(found)
    }

    /// The home page of `owner`: their kept timeline (built now if none is kept) and the
    /// loud authors they follow above the timeline's floor, and below it the merge of
    /// everyone they follow (see `home`).
    fn home(&self, owner: UserId, before: Option<Cursor>, limit: usize) -> StoreResult<Vec<Found>> {
        let position = before.map(|c| (c.pub_date, c.id));
        let KeptPage { entries, floor, loud } = match self.homes.page(owner, position, limit) {
            Some(page) => page,
            None => {
                let seen = self.homes.generation();
                let kept = self.build_home(owner)?;
                let page = kept.page(position, limit);
                self.homes.keep(owner, kept, seen);
                page
            }
        };
        let mut found = if loud.is_empty() {
            entries
        } else {
            let mut sources = vec![Source::Kept(entries.into_iter())];
            for author in loud {
                sources.push(self.prefix_source(&self.author_idx, author, floor, before));
            }
            merge(sources, limit)?
        };
        let Some(floor) = floor else { return Ok(found) };
        if found.len() < limit {
            let below = match before {
                Some(c) if (c.pub_date, c.id) < floor => c,
                _ => Cursor { pub_date: floor.0, id: floor.1 },
            };
            found.extend(self.merge_followed(owner, Some(below), limit - found.len())?);
        }
        Ok(found)
    }

    /// A kept timeline for `owner`, built from the author index: the newest N entries of
    /// the owner and the authors they follow, loud ones aside (kept beside them).
    fn build_home(&self, owner: UserId) -> StoreResult<Kept> {
        let mut authors = self.home_authors(owner)?;
        let loud = self.homes.split_loud(&mut authors);
        let bound = self.homes.config().bound;
        Ok(Kept::of(self.merge_authors(&authors, None, bound + 1)?, bound, loud))
    }

    /// The home page of `owner` as the merge of their and their followees' parts of the
    /// author index: below their kept timeline's floor.
    fn merge_followed(
        &self,
        owner: UserId,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<Found>> {
        self.merge_authors(&self.home_authors(owner)?, before, limit)
    }

    /// Whose messages `owner`'s home timeline shows: theirs and their followees', once
    /// each.
    fn home_authors(&self, owner: UserId) -> StoreResult<Vec<UserId>> {
        let mut authors = self.followee_ids(owner)?;
        authors.push(owner);
        authors.sort_unstable();
        authors.dedup();
        Ok(authors)
    }

    /// The `limit` newest entries of `authors` together older than `before`, from the
    /// author index.
    fn merge_authors(
        &self,
        authors: &[UserId],
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<Found>> {
        let sources =
            authors.iter().map(|&a| self.prefix_source(&self.author_idx, a, None, before));
        merge(sources.collect(), limit)
    }

    /// The public index from just below `before`, newest first.
    fn public_source(&self, before: Option<Cursor>) -> Source {
        let end =
            before.map_or(Bound::Unbounded, |c| Bound::Excluded(keys::pair(c.pub_date, c.id)));
        let iter = self.public_idx.range((Bound::Unbounded, end)).rev();
        Source::Index { iter, offset: 0 }
    }

    /// One user's part of an index keyed by (user, pub_date, id), from `floor` (all when
    /// `None`) up to just below `before`, newest first.
    fn prefix_source(
        &self,
        tree: &sled::Tree,
        user: UserId,
        floor: Option<Position>,
        before: Option<Cursor>,
    ) -> Source {
        let start = match floor {
            Some((date, id)) => keys::triple(user, date, id),
            None => keys::int(user),
        };
        let end = match before {
            Some(c) => Bound::Excluded(keys::triple(user, c.pub_date, c.id)),
            None => Bound::Included(keys::triple(user, i64::MAX, i64::MAX)),
        };
        Source::Index { iter: tree.range((Bound::Included(start), end)).rev(), offset: 1 }
    }

    /// The entries at `positions`, with their authors' names and emails (from the
    /// author cache). A message deleted or flagged since its index entry was read is
    /// left out.
    fn entries(&self, found: Vec<Found>) -> StoreResult<Vec<TimelineEntry>> {
        let mut entries = Vec::with_capacity(found.len());
        for ((_, id), record) in found {
            let message = if record.is_empty() {
                let Some(message) = self.message_by_id(id)? else { continue };
                message
            } else {
                decode::<Message>(&record)?
            };
            if message.flagged {
                continue;
            }
            let Some(author) = self.author(message.author_id)? else { continue };
            entries.push(TimelineEntry {
                id: message.id,
                author_id: message.author_id,
                author: author.username,
                email: author.email,
                text: message.text,
                pub_date: message.pub_date,
            });
        }
        Ok(entries)
    }
}

/// The `(pub_date, id)` of an index key whose date is field `offset`.
fn position_at(key: &[u8], offset: usize) -> StoreResult<Position> {
    match (keys::field(key, offset), keys::field(key, offset + 1)) {
        (Some(date), Some(id)) => Ok((date, id)),
        _ => Err(corrupt("a timeline index key")),
    }
}

/// The `limit` newest entries of all `sources` together, newest first.
fn merge(mut sources: Vec<Source>, limit: usize) -> StoreResult<Vec<Found>> {
    if let [only] = &mut sources[..] {
        let mut merged = Vec::with_capacity(limit.min(1024));
        while merged.len() < limit {
            let Some(found) = only.next()? else { break };
            merged.push(found);
        }
        return Ok(merged);
    }
    let mut heads = BinaryHeap::with_capacity(sources.len());
    let mut values = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter_mut().enumerate() {
        let head = source.next()?.map(|(position, value)| {
            heads.push((position, index));
            value
        });
        values.push(head.unwrap_or_default());
    }
    let mut merged = Vec::with_capacity(limit.min(1024));
    while merged.len() < limit {
        let Some((position, index)) = heads.pop() else { break };
        let next = sources[index].next()?;
        let value = match next {
            Some((next_position, next_value)) => {
                heads.push((next_position, index));
                std::mem::replace(&mut values[index], next_value)
            }
            None => std::mem::take(&mut values[index]),
        };
        merged.push((position, value));
    }
    Ok(merged)
}
