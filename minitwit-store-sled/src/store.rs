//! The [`Store`] implementation: reads and short writes run inline (writes under the
//! write lock), writes that scan or batch on tokio's blocking pool; durable writes
//! return behind a shared flush.

use crate::SledStore;
use crate::receipts::Applied;
use minitwit_core::feed::{Change, ChangeFeed};
use minitwit_core::idempotency::{Receipt, ReceiptKey, Write};
use minitwit_core::model::{Follow, ImportBatch, NewMessage, NewUser};
use minitwit_core::store::{DurableWait, StoreResult};
use minitwit_core::{
    Counts, Cursor, Message, MessageFilter, MessageId, Store, Timeline, TimelineEntry, User, UserId,
};

#[async_trait::async_trait]
impl Store for SledStore {
    fn backend(&self) -> &'static str {
        "sled"
    }

    fn single_process(&self) -> bool {
        true
    }

    fn change_feed(&self) -> Option<std::sync::Arc<dyn ChangeFeed>> {
        Some(self.feed())
    }

    /// Broken once a flush has failed, for good (see the flusher's fail-stop).
    fn broken(&self) -> Option<String> {
        self.inner.flusher.healthy().err().map(|err| err.to_string())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.flusher.healthy()?;
        self.read(|trees| trees.latest().map(drop)).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.inner.flusher.flush_all().await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.write(move |trees| trees.create_user(&user)).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(move |trees| trees.user_by_id(id)).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.read(|trees| trees.user_by_name(username)).await
    }

    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>> {
        self.read(move |trees| trees.users_after(after, limit)).await
    }

    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool> {
        let pw_hash = pw_hash.to_owned();
        self.write(move |trees| trees.update_user(id, |user| user.pw_hash.clone_from(&pw_hash)))
            .await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let found =
            self.write(move |trees| trees.update_user(id, |user| user.disabled = disabled)).await?;
        if found {
            self.publish(if disabled { Change::UserDisabled(id) } else { Change::UserEnabled(id) });
        }
        Ok(found)
    }

    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        self.read(move |trees| trees.session_generation(id)).await
    }

    /// Both read in one pass over the trees, not two calls.
    async fn user_with_generation(&self, id: UserId) -> StoreResult<Option<(User, i64)>> {
        self.read(move |trees| {
            let Some(user) = trees.user_by_id(id)? else { return Ok(None) };
            Ok(Some((user, trees.session_generation(id)?)))
        })
        .await
    }

    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        let found = self.write(move |trees| trees.bump_session_generation(id)).await?;
        if found {
            self.publish(Change::SessionsEnded(id));
        }
        Ok(found)
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let found = self.long_write(move |trees| trees.delete_user(id)).await?;
        if found {
            self.publish(Change::UserDeleted(id));
        }
        Ok(found)
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        let author = message.author_id;
        let id = self.write(move |trees| trees.add_message(&message)).await?;
        self.publish(Change::Posted { id, author });
        Ok(id)
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.read(move |trees| trees.message_by_id(id)).await
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        let found = self.write(move |trees| trees.set_flagged(id, flagged)).await?;
        if found {
            self.publish(flag_change(vec![id], flagged));
        }
        Ok(found)
    }

    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let changed = ids.clone();
        let unknown = self.long_write(move |trees| trees.set_flagged_all(&ids, flagged)).await?;
        if unknown.is_empty() && !changed.is_empty() {
            self.publish(flag_change(changed, flagged));
        }
        Ok(unknown)
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>> {
        self.read(move |trees| trees.list_messages(&filter)).await
    }

    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.read(move |trees| trees.messages_after(after, limit)).await
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.write(move |trees| trees.follow(follower, followee)).await?;
        self.publish(Change::Followed(Follow { follower, followee }));
        Ok(())
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.write(move |trees| trees.unfollow(follower, followee)).await?;
        self.publish(Change::Unfollowed(Follow { follower, followee }));
        Ok(())
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        self.read(move |trees| trees.is_following(follower, followee)).await
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        self.read(move |trees| trees.followees(follower, limit)).await
    }

    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>> {
        self.read(move |trees| trees.follows_after(after, limit)).await
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        self.read(move |trees| trees.timeline(timeline, before, limit)).await
    }

    async fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>> {
        self.read(|trees| trees.receipt(key, since)).await
    }

    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>> {
        let applied = self.write(|trees| trees.apply_once(key, receipt, since, &write)).await?;
        match applied {
            Applied::Kept(receipt) => Ok(Some(receipt)),
            Applied::Now { posted } => {
                let posted = posted.map(|((_, id), _)| id);
                if let Some(change) = Change::of_write(&write, posted) {
                    self.publish(change);
                }
                Ok(None)
            }
        }
    }

    /// Writes (and waits for a flush) only when some receipt has expired.
    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        if !self.read(|trees| trees.any_receipt_before(before)).await? {
            return Ok(0);
        }
        self.long_write(move |trees| trees.forget_receipts(before, limit)).await
    }

    async fn latest(&self) -> StoreResult<Option<i64>> {
        self.read(|trees| trees.latest()).await
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.begin_set_latest(latest).await?.await
    }

    async fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait> {
        self.unsynced_write(|trees| trees.set_latest(latest))
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.read(|trees| trees.setting(key)).await
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write(move |trees| trees.init_setting(&key, &value)).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        self.read(|trees| trees.counts()).await
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        self.long_write(move |trees| trees.import(&batch)).await
    }

    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()> {
        self.long_write(move |trees| trees.remove_imported(&batch)).await
    }

    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        self.long_write(move |trees| trees.end_import(latest)).await
    }
}

/// The change of flagging (or unflagging) `ids`.
fn flag_change(ids: Vec<MessageId>, flagged: bool) -> Change {
    if flagged { Change::Flagged(ids) } else { Change::Unflagged(ids) }
}
