//! Messages: posting (and the fan-out into kept home timelines), flagging (which moves
//! a message out of or back into the timeline indexes), deletion, and the admin and
//! export listings.

use crate::keys::{self, Found};
use crate::records::{decode, encode};
use crate::trees::{
    EMPTY, Trees, Tx, TxResult, abort, backend, corrupt, key_field, key_fields, meta,
};
use minitwit_core::model::NewMessage;
use minitwit_core::store::StoreResult;
use minitwit_core::{Message, MessageFilter, MessageId, UserId};
use sled::IVec;
use std::collections::HashSet;
use std::ops::Bound;

impl Trees {
    /// Stores a message under a fresh id; the author must exist. Then into the kept
    /// home timelines (see `home`).
    pub(crate) fn add_message(&self, new: &NewMessage) -> StoreResult<MessageId> {
        let stored = self.transaction(|tx| tx.add_message(new))?;
        let (id, author) = (stored.0.1, new.author_id);
        self.after_apply(move |trees| trees.homes.posted(author, stored));
        Ok(id)
    }

    /// The message with this id.
    pub(crate) fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.messages.get(keys::int(id)).map_err(backend)?.map(|v| decode(&v)).transpose()
    }

    /// Flags or unflags a message; `false` if there is none.
    pub(crate) fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        let author = self.transaction(|tx| {
            let Some(bytes) = tx.messages.get(keys::int(id))? else { return Ok(None) };
            let mut message: Message = decode(&bytes).map_err(abort)?;
            if message.flagged != flagged {
                tx.remove_message(id)?;
                message.flagged = flagged;
                tx.insert_message(&message)?;
            }
            Ok(Some(message.author_id))
        })?;
        if let Some(author) = author {
            self.after_apply(move |trees| trees.homes.message_changed(author));
        }
        Ok(author.is_some())
    }

    /// Flags or unflags every message of `ids` in one transaction, or none when an id
    /// names no message; the unknown ids.
    pub(crate) fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        let (unknown, mut authors) = self.transaction(|tx| {
            let mut found = Vec::with_capacity(ids.len());
            let mut unknown = Vec::new();
            for &id in ids {
                match tx.messages.get(keys::int(id))? {
                    Some(bytes) => found.push(decode::<Message>(&bytes).map_err(abort)?),
                    None => unknown.push(id),
                }
            }
            if !unknown.is_empty() {
                return Ok((unknown, Vec::new()));
            }
            let authors = found.iter().map(|m| m.author_id).collect();
            for mut message in found.into_iter().filter(|m| m.flagged != flagged) {
                tx.remove_message(message.id)?;
                message.flagged = flagged;
                tx.insert_message(&message)?;
            }
            Ok((unknown, authors))
        })?;
        authors.sort_unstable();
        authors.dedup();
        self.after_apply(move |trees| {
            for author in authors {
                trees.homes.message_changed(author);
            }
        });
        Ok(unknown)
    }

    /// The admin listing: newest id first, filtered.
    pub(crate) fn list_messages(&self, filter: &MessageFilter) -> StoreResult<Vec<Message>> {
        let ids: Box<dyn Iterator<Item = StoreResult<MessageId>>> = match filter.author {
            Some(author) => {
                let mut ids = self.author_message_ids(author)?;
                ids.retain(|&id| filter.before.is_none_or(|before| id < before));
                Box::new(ids.into_iter().map(Ok))
            }
            None if filter.flagged == Some(true) => {
                Box::new(self.flagged.range(below(filter.before)).rev().map(|i| key_field(i, 0)))
            }
            None => {
                Box::new(self.messages.range(below(filter.before)).rev().map(|i| key_field(i, 0)))
            }
        };
        let mut found = Vec::new();
        for id in ids {
            if found.len() >= filter.limit {
                break;
            }
            let Some(message) = self.message_by_id(id?)? else { continue };
            if filter.flagged.is_none_or(|f| message.flagged == f) {
                found.push(message);
            }
        }
        Ok(found)
    }

    /// Every message of `author`, newest id first: the unflagged from their part of
    /// `author_idx`, the flagged from `author_msgs` (a message is in one of the two).
    /// Reads all of the author's index keys (`author_idx` is in date order): for
    /// deleting a user and the admin listing, not for pages.
    pub(crate) fn author_message_ids(&self, author: UserId) -> StoreResult<Vec<MessageId>> {
        let mut ids: Vec<MessageId> = key_fields(&self.author_idx, author, 2)?;
        ids.extend(key_fields::<MessageId>(&self.author_msgs, author, 1)?);
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Format 4's upgrade (see `open`): drops from `author_msgs` the entries of messages
    /// that are not flagged, which earlier formats listed there too; how many. Run when
    /// the store opens, once its writes are applied and before anything else writes.
    pub(crate) fn keep_only_flagged_in_author_msgs(&self) -> StoreResult<usize> {
        let flagged = self
            .flagged
            .iter()
            .map(|item| key_field(item, 0))
            .collect::<StoreResult<HashSet<MessageId>>>()?;
        let mut dropped = 0;
        for item in self.author_msgs.iter() {
            let (key, _) = item.map_err(backend)?;
            let id = keys::field(&key, 1).ok_or_else(|| corrupt("an author_msgs key"))?;
            if !flagged.contains(&id) {
                self.author_msgs.remove(key).map_err(backend)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Up to `limit` messages with ids above `after`, by id: the export order.
    pub(crate) fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(keys::int(a)));
        self.messages
            .range::<IVec, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|item| decode(&item.map_err(backend)?.1))
            .collect()
    }
}

/// Keys of single ids strictly below `before` (all when `None`).
fn below(before: Option<MessageId>) -> (Bound<IVec>, Bound<IVec>) {
    (Bound::Unbounded, before.map_or(Bound::Unbounded, |b| Bound::Excluded(keys::int(b))))
}

impl Tx<'_> {
    /// Stores a message under a fresh id (the author must exist); its position and
    /// record.
    pub(crate) fn add_message(&self, new: &NewMessage) -> TxResult<Found> {
        self.require_user(new.author_id)?;
        let message = Message {
            id: MessageId(self.bump(meta::LAST_MESSAGE_ID, 1)?),
            author_id: new.author_id,
            text: new.text.as_ref().to_owned(),
            pub_date: new.pub_date,
            flagged: false,
        };
        let record = self.insert_message(&message)?;
        Ok(((message.pub_date, message.id), record))
    }

    /// Writes a message with its index entries (the timeline indexes when unflagged, the
    /// flagged lists when flagged) and counts it; its record. The id must be free.
    pub(crate) fn insert_message(&self, m: &Message) -> TxResult<IVec> {
        let id = keys::int(m.id);
        let record = IVec::from(encode(m));
        self.messages.insert(&id, record.clone())?;
        if m.flagged {
            self.flagged.insert(&id, EMPTY)?;
            self.author_msgs.insert(keys::pair(m.author_id, m.id), EMPTY)?;
            self.bump(meta::FLAGGED, 1)?;
        } else {
            // Copies of the record, so that timeline pages read no message record.
            self.public_idx.insert(keys::pair(m.pub_date, m.id), record.clone())?;
            self.author_idx.insert(keys::triple(m.author_id, m.pub_date, m.id), record.clone())?;
        }
        self.bump(meta::MESSAGES, 1)?;
        Ok(record)
    }

    /// Removes a message and every index entry of it, uncounting it; nothing if absent.
    pub(crate) fn remove_message(&self, id: MessageId) -> TxResult<()> {
        let Some(bytes) = self.messages.take(keys::int(id))? else { return Ok(()) };
        let m: Message = decode(&bytes).map_err(abort)?;
        if m.flagged {
            self.flagged.remove(keys::int(id))?;
            self.author_msgs.remove(keys::pair(m.author_id, m.id))?;
            self.bump(meta::FLAGGED, -1)?;
        } else {
            self.public_idx.remove(keys::pair(m.pub_date, m.id))?;
            self.author_idx.remove(keys::triple(m.author_id, m.pub_date, m.id))?;
        }
        self.bump(meta::MESSAGES, -1)?;
        Ok(())
    }
}
