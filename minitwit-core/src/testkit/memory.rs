//! [`MemoryStore`]: the reference model of the store contract, kept obviously correct
//! rather than fast (timelines scan and sort everything).

use crate::idempotency::{Receipt, ReceiptKey, Write};
use crate::model::{
    Counts, Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, NewUser,
    Timeline, TimelineEntry, User, UserId,
};
use crate::store::{IMPORT_MARK, Store, StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Unbounded};
use std::sync::Mutex;

#[derive(Default, Clone)]
struct State {
    users: BTreeMap<UserId, User>,
    sessions: BTreeMap<UserId, i64>,
    messages: BTreeMap<MessageId, Message>,
    follows: BTreeSet<Follow>,
    latest: Option<i64>,
    settings: BTreeMap<String, Vec<u8>>,
    last_user_id: i64,
    last_message_id: i64,
    receipts: BTreeMap<(String, String), Receipt>,
}

/// The in-memory reference model. Data lives only as long as the value.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A panic while holding the lock can only come from a bug in this model; the data
        // is still consistent, so keep using it.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

impl State {
    /// Removes a user with their messages and follows (both ways); `false` if absent.
    fn remove_user(&mut self, id: UserId) -> bool {
        if self.users.remove(&id).is_none() {
            return false;
        }
        self.sessions.remove(&id);
        self.messages.retain(|_, m| m.author_id != id);
        self.follows.retain(|f| f.follower != id && f.followee != id);
        true
    }

    fn create_user(&mut self, user: NewUser) -> StoreResult<User> {
        if self.users.values().any(|u| u.username == user.username.as_ref()) {
            return Err(StoreError::UsernameTaken);
        }
        self.last_user_id += 1;
        let created = User {
            id: UserId(self.last_user_id),
            username: user.username.into(),
            email: user.email.into(),
            pw_hash: user.pw_hash,
            disabled: false,
        };
        self.users.insert(created.id, created.clone());
        Ok(created)
    }

    fn add_message(&mut self, message: NewMessage) -> StoreResult<MessageId> {
        self.require_user(message.author_id)?;
        self.last_message_id += 1;
        let id = MessageId(self.last_message_id);
        let stored = Message {
            id,
            author_id: message.author_id,
            text: message.text.into(),
            pub_date: message.pub_date,
            flagged: false,
        };
        self.messages.insert(id, stored);
        Ok(id)
    }

    fn follow(&mut self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.require_user(follower)?;
        self.require_user(followee)?;
        self.follows.insert(Follow { follower, followee });
        Ok(())
    }

    fn apply(&mut self, write: Write) -> StoreResult<()> {
        match write {
            Write::Register(user) => self.create_user(user).map(drop),
            Write::Post(message) => self.add_message(message).map(drop),
            Write::Follow { follower, followee } => self.follow(follower, followee),
            Write::Unfollow { follower, followee } => {
                self.follows.remove(&Follow { follower, followee });
                Ok(())
            }
        }
    }

    fn live_receipt(&self, key: &ReceiptKey, since: i64) -> Option<Receipt> {
        let receipt = self.receipts.get(&(key.scope.clone(), key.key.clone()))?;
        (receipt.recorded_at >= since).then(|| receipt.clone())
    }

    fn require_user(&self, id: UserId) -> StoreResult<&User> {
        self.users.get(&id).ok_or(StoreError::UnknownUser(id))
    }

    fn entry(&self, m: &Message) -> TimelineEntry {
        let author = &self.users[&m.author_id];
        TimelineEntry {
            id: m.id,
            author_id: m.author_id,
            author: author.username.clone(),
            email: author.email.clone(),
            text: m.text.clone(),
            pub_date: m.pub_date,
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.with(|s| s.create_user(user))
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.with(|s| s.users.get(&id).cloned()))
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self.with(|s| s.users.values().find(|u| u.username == username).cloned()))
    }

    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>> {
        let from = (after.map_or(Unbounded, Excluded), Unbounded);
        Ok(self.with(|s| s.users.range(from).take(limit).map(|(_, u)| u.clone()).collect()))
    }

    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool> {
        Ok(self.with(|s| s.users.get_mut(&id).map(|u| u.pw_hash = pw_hash.to_owned()).is_some()))
    }

    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        Ok(self.with(|s| s.sessions.get(&id).copied().unwrap_or(0)))
    }

    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        Ok(self.with(|s| {
            let known = s.users.contains_key(&id);
            if known {
                *s.sessions.entry(id).or_insert(0) += 1;
            }
            known
        }))
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        Ok(self.with(|s| s.users.get_mut(&id).map(|u| u.disabled = disabled).is_some()))
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        Ok(self.with(|s| s.remove_user(id)))
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        self.with(|s| s.add_message(message))
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        Ok(self.with(|s| s.messages.get(&id).cloned()))
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        Ok(self.with(|s| s.messages.get_mut(&id).map(|m| m.flagged = flagged).is_some()))
    }

    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        Ok(self.with(|s| {
            let unknown: Vec<MessageId> =
                ids.iter().copied().filter(|id| !s.messages.contains_key(id)).collect();
            if unknown.is_empty() {
                for id in ids {
                    if let Some(message) = s.messages.get_mut(id) {
                        message.flagged = flagged;
                    }
                }
            }
            unknown
        }))
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>> {
        Ok(self.with(|s| {
            s.messages
                .values()
                .rev()
                .filter(|m| filter.before.is_none_or(|b| m.id < b))
                .filter(|m| filter.author.is_none_or(|a| m.author_id == a))
                .filter(|m| filter.flagged.is_none_or(|f| m.flagged == f))
                .take(filter.limit)
                .cloned()
                .collect()
        }))
    }

    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let from = (after.map_or(Unbounded, Excluded), Unbounded);
        Ok(self.with(|s| s.messages.range(from).take(limit).map(|(_, m)| m.clone()).collect()))
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.with(|s| s.follow(follower, followee))
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.with(|s| s.follows.remove(&Follow { follower, followee }));
        Ok(())
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        Ok(self.with(|s| s.follows.contains(&Follow { follower, followee })))
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        Ok(self.with(|s| {
            s.follows
                .iter()
                .filter(|f| f.follower == follower)
                .take(limit)
                .map(|f| s.users[&f.followee].username.clone())
                .collect()
        }))
    }

    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>> {
        Ok(self.with(|s| {
            s.follows
                .iter()
                .filter(|f| after.is_none_or(|a| **f > a))
                .take(limit)
                .copied()
                .collect()
        }))
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        Ok(self.with(|s| {
            let shows = |author: UserId| match timeline {
                Timeline::Public => true,
                Timeline::User(user) => author == user,
                Timeline::Home(user) => {
                    author == user
                        || s.follows.contains(&Follow { follower: user, followee: author })
                }
            };
            let mut entries: Vec<&Message> = s
                .messages
                .values()
                .filter(|m| !m.flagged && shows(m.author_id))
                .filter(|m| before.is_none_or(|c| c.is_before(m.pub_date, m.id)))
                .collect();
            entries.sort_by_key(|m| std::cmp::Reverse((m.pub_date, m.id)));
            entries.into_iter().take(limit).map(|m| s.entry(m)).collect()
        }))
    }

    async fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>> {
        Ok(self.with(|s| s.live_receipt(key, since)))
    }

    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>> {
        self.with(|s| {
            if let Some(recorded) = s.live_receipt(key, since) {
                return Ok(Some(recorded));
            }
            s.apply(write)?;
            s.receipts.insert((key.scope.clone(), key.key.clone()), receipt.clone());
            Ok(None)
        })
    }

    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        Ok(self.with(|s| {
            let mut expired: Vec<_> = s
                .receipts
                .iter()
                .filter(|(_, r)| r.recorded_at < before)
                .map(|(k, r)| (r.recorded_at, k.clone()))
                .collect();
            expired.sort();
            expired.truncate(limit);
            for (_, key) in &expired {
                s.receipts.remove(key);
            }
            expired.len()
        }))
    }

    async fn latest(&self) -> StoreResult<Option<i64>> {
        Ok(self.with(|s| s.latest))
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.with(|s| s.latest = Some(latest));
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|s| s.settings.get(key).cloned()))
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        Ok(self
            .with(|s| s.settings.entry(key.to_owned()).or_insert_with(|| value.to_vec()).clone()))
    }

    async fn counts(&self) -> StoreResult<Counts> {
        Ok(self.with(|s| Counts {
            users: s.users.len() as u64,
            messages: s.messages.len() as u64,
            follows: s.follows.len() as u64,
            flagged: s.messages.values().filter(|m| m.flagged).count() as u64,
        }))
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        self.with(|s| {
            // All or nothing: work on a copy and keep it only if every record fits.
            let mut next = s.clone();
            import_into(&mut next, batch)?;
            *s = next;
            Ok(())
        })
    }

    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()> {
        self.with(|s| {
            for follow in &batch.follows {
                s.follows.remove(follow);
            }
            for message in &batch.messages {
                s.messages.remove(&message.id);
            }
            for user in &batch.users {
                s.remove_user(user.id);
            }
        });
        Ok(())
    }

    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        self.with(|s| {
            s.latest = latest.or(s.latest);
            s.settings.remove(IMPORT_MARK);
        });
        Ok(())
    }
}

/// Imports `batch` into `s`; on error the caller discards `s`.
fn import_into(s: &mut State, batch: ImportBatch) -> StoreResult<()> {
    for user in batch.users {
        if s.users.contains_key(&user.id) || s.users.values().any(|u| u.username == user.username) {
            return Err(StoreError::Conflict(format!("user {} ({})", user.id, user.username)));
        }
        s.last_user_id = s.last_user_id.max(user.id.0);
        s.users.insert(user.id, user);
    }
    for message in batch.messages {
        s.require_user(message.author_id)?;
        if s.messages.contains_key(&message.id) {
            return Err(StoreError::Conflict(format!("message {}", message.id)));
        }
        s.last_message_id = s.last_message_id.max(message.id.0);
        s.messages.insert(message.id, message);
    }
    for follow in batch.follows {
        s.require_user(follow.follower)?;
        s.require_user(follow.followee)?;
        s.follows.insert(follow);
    }
    Ok(())
}
