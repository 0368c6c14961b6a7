//! Timelines: newest first by `(pub_date, id)`, read backwards from the cursor.
//!
//! - public: one reverse range scan of `public_idx` — O(log n + page);
//! - user: one reverse range scan of that author's part of `author_idx` — O(log n + page);
//! - home: a k-way merge of the reverse scans of the user's and each followee's part of
//!   `author_idx`, through a binary heap — O(k log n + page log k). Nothing scans all
//!   messages; flagged messages are not in these indexes at all.
//!
//! The index entries carry the message record itself, so a page costs its scans plus
//! one author look-up per author not yet in the author cache; no message look-ups.

use crate::keys;
use crate::records::decode;
use crate::trees::{Trees, backend, corrupt};
use minitwit_core::store::StoreResult;
use minitwit_core::{Cursor, Message, MessageId, Timeline, TimelineEntry, UserId};
use sled::IVec;
use std::collections::BinaryHeap;
use std::ops::Bound;

/// A timeline position: `(pub_date, id)`.
type Position = (i64, MessageId);

/// A position with its index entry's value: the message record (stores written before
/// format 2 have empty values there; the message is then read from `messages`).
type Found = (Position, IVec);

/// One newest-first stream of index entries: a reverse index scan.
struct Source {
    iter: std::iter::Rev<sled::Iter>,
    /// Index of the `pub_date` field in the keys; the id follows it.
    offset: usize,
}

impl Source {
    fn next(&mut self) -> StoreResult<Option<Found>> {
        let Some(item) = self.iter.next() else { return Ok(None) };
        let (key, value) = item.map_err(backend)?;
        let position = (keys::field(&key, self.offset), keys::field(&key, self.offset + 1));
        let (Some(date), Some(id)) = position else { return Err(corrupt("a timeline index key")) };
        Ok(Some(((date, id), value)))
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
        let found = merge(sources, limit)?;
        self.entries(found)
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
