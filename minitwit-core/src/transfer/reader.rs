//! Reading a whole store in export order ([`StoreReader`], one [`Chunk`] at a time), and
//! the [`fingerprint`] of a store computed that way.

use super::fingerprint::{Fingerprint, FingerprintBuilder};
use super::record::Record;
use super::{TransferOptions, TransferResult};
use crate::model::{Follow, Message, MessageId, User, UserId};
use crate::store::Store;
use std::sync::Arc;

/// One chunk of a store in export order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Users by id ascending.
    Users(Vec<User>),
    /// Messages by id ascending.
    Messages(Vec<Message>),
    /// Follow pairs ascending.
    Follows(Vec<Follow>),
    /// The latest value, last.
    Latest(i64),
}

impl Chunk {
    /// The records of this chunk, in order.
    pub fn into_records(self) -> Vec<Record> {
        match self {
            Self::Users(users) => users.into_iter().map(Record::User).collect(),
            Self::Messages(messages) => messages.into_iter().map(Record::Message).collect(),
            Self::Follows(follows) => follows.into_iter().map(Record::Follow).collect(),
            Self::Latest(latest) => vec![Record::Latest { latest }],
        }
    }
}

/// Where a [`StoreReader`] is.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Users(Option<UserId>),
    Messages(Option<MessageId>),
    Follows(Option<Follow>),
    Latest,
    Done,
}

/// Reads a whole store in export order, one chunk at a time, with the store's
/// `users_after` / `messages_after` / `follows_after` keyset reads.
pub struct StoreReader {
    store: Arc<dyn Store>,
    chunk_size: usize,
    stage: Stage,
}

impl StoreReader {
    /// A reader at the start of `store`.
    pub fn new(store: Arc<dyn Store>, chunk_size: usize) -> Self {
        Self { store, chunk_size: chunk_size.max(1), stage: Stage::Users(None) }
    }

    /// The next non-empty chunk, or `None` when everything was read.
    pub async fn next(&mut self) -> TransferResult<Option<Chunk>> {
        loop {
            let (chunk, next) = self.read_stage().await?;
            self.stage = next;
            if chunk.is_some() || matches!(self.stage, Stage::Done) {
                return Ok(chunk);
            }
        }
    }

    /// Reads at the current stage: the chunk found, if any, and the stage after it.
    async fn read_stage(&self) -> TransferResult<(Option<Chunk>, Stage)> {
        let n = self.chunk_size;
        let store = &self.store;
        Ok(match self.stage {
            Stage::Users(after) => {
                let users = store.users_after(after, n).await?;
                let next = match users.last() {
                    Some(last) if users.len() == n => Stage::Users(Some(last.id)),
                    _ => Stage::Messages(None),
                };
                (non_empty(users).map(Chunk::Users), next)
            }
            Stage::Messages(after) => {
                let messages = store.messages_after(after, n).await?;
                let next = match messages.last() {
                    Some(last) if messages.len() == n => Stage::Messages(Some(last.id)),
                    _ => Stage::Follows(None),
                };
                (non_empty(messages).map(Chunk::Messages), next)
            }
            Stage::Follows(after) => {
                let follows = store.follows_after(after, n).await?;
                let next = match follows.last() {
                    Some(last) if follows.len() == n => Stage::Follows(Some(*last)),
                    _ => Stage::Latest,
                };
                (non_empty(follows).map(Chunk::Follows), next)
            }
            Stage::Latest => (store.latest().await?.map(Chunk::Latest), Stage::Done),
            Stage::Done => (None, Stage::Done),
        })
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

/// The fingerprint of everything `store` holds, read in chunks.
pub async fn fingerprint(store: &Arc<dyn Store>) -> TransferResult<Fingerprint> {
    let mut reader = StoreReader::new(Arc::clone(store), TransferOptions::default().chunk_size);
    let mut builder = FingerprintBuilder::new();
    while let Some(chunk) = reader.next().await? {
        for record in chunk.into_records() {
            builder.record(&record);
        }
    }
    Ok(builder.finish())
}
