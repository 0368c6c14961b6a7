//! Timelines: newest first by `(pub_date, id)`, read backwards from the cursor.
//!
//! - public: one reverse range scan of `public_idx` — O(log n + page);
//! - user: one reverse range scan of that author's part of `author_idx` — O(log n + page);
//! - home: a k-way merge of the reverse scans of the user's and each followee's part of
//!   `author_idx`, through a binary heap — O(k log n + page log k). Nothing scans all
//!   messages; flagged messages are not in these indexes at all.

use crate::keys;
use crate::trees::{Trees, backend, corrupt};
use minitwit_core::{Cursor, StoreResult, Timeline, TimelineEntry, User, UserId};
use std::collections::{BinaryHeap, HashMap};
use std::ops::Bound;

/// A timeline position: `(pub_date, id)`.
type Position = (i64, i64);

/// One newest-first stream of positions: a reverse index scan.
struct Source {
    iter: std::iter::Rev<sled::Iter>,
    /// Index of the `pub_date` field in the keys; the id follows it.
    offset: usize,
}

impl Source {
    fn next(&mut self) -> StoreResult<Option<Position>> {
        let Some(item) = self.iter.next() else { return Ok(None) };
        let (key, _) = item.map_err(backend)?;
        let field = |i| keys::field(&key, i).ok_or_else(|| corrupt("a timeline index key"));
        Ok(Some((field(self.offset)?, field(self.offset + 1)?)))
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
        let sources = match timeline {
            Timeline::Public => vec![self.public_source(before)],
            Timeline::User(user) => vec![self.author_source(user, before)],
            Timeline::Home(user) => {
                let mut authors = self.followee_ids(user)?;
                authors.push(user);
                authors.sort_unstable();
                authors.dedup();
                authors.into_iter().map(|author| self.author_source(author, before)).collect()
            }
        };
        let positions = merge(sources, limit)?;
        self.entries(&positions)
    }

    /// The public index from just below `before`, newest first.
    fn public_source(&self, before: Option<Cursor>) -> Source {
        let end =
            before.map_or(Bound::Unbounded, |c| Bound::Excluded(keys::pair(c.pub_date, c.id)));
        let iter = self.public_idx.range((Bound::Unbounded, end)).rev();
        Source { iter, offset: 0 }
    }

    /// One author's part of the author index from just below `before`, newest first.
    fn author_source(&self, author: UserId, before: Option<Cursor>) -> Source {
        let end = match before {
            Some(c) => Bound::Excluded(keys::triple(author, c.pub_date, c.id)),
            None => Bound::Included(keys::triple(author, i64::MAX, i64::MAX)),
        };
        let iter = self.author_idx.range((Bound::Included(keys::int(author)), end)).rev();
        Source { iter, offset: 1 }
    }

    /// The entries at `positions`, with their authors' names and emails. A message
    /// deleted or flagged since its index entry was read is left out.
    fn entries(&self, positions: &[Position]) -> StoreResult<Vec<TimelineEntry>> {
        let mut authors: HashMap<UserId, Option<User>> = HashMap::new();
        let mut entries = Vec::with_capacity(positions.len());
        for &(_, id) in positions {
            let Some(message) = self.message_by_id(id)? else { continue };
            if message.flagged {
                continue;
            }
            let author = match authors.get(&message.author_id) {
                Some(known) => known.clone(),
                None => {
                    let found = self.user_by_id(message.author_id)?;
                    authors.insert(message.author_id, found.clone());
                    found
                }
            };
            let Some(author) = author else { continue };
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

/// The `limit` newest positions of all `sources` together, newest first.
fn merge(mut sources: Vec<Source>, limit: usize) -> StoreResult<Vec<Position>> {
    let mut heads = BinaryHeap::with_capacity(sources.len());
    for (index, source) in sources.iter_mut().enumerate() {
        if let Some(position) = source.next()? {
            heads.push((position, index));
        }
    }
    let mut merged = Vec::with_capacity(limit.min(1024));
    while merged.len() < limit {
        let Some((position, index)) = heads.pop() else { break };
        merged.push(position);
        if let Some(next) = sources[index].next()? {
            heads.push((next, index));
        }
    }
    Ok(merged)
}
