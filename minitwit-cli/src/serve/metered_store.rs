//! [`MeteredStore`]: a [`Store`] decorator that records every operation's latency in the
//! `minitwit_store_operation_duration_seconds` histogram, by backend, operation and
//! outcome. It adds no behaviour: every call goes straight to the wrapped store.

use super::metrics::STORE_SECONDS;
use async_trait::async_trait;
use minitwit_core::{
    Counts, Cursor, DurableWait, Follow, ImportBatch, Message, MessageFilter, MessageId,
    NewMessage, NewUser, ReadToken, Receipt, ReceiptKey, Store, StoreResult, Timeline,
    TimelineEntry, User, UserId, Write,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Times every operation of the wrapped store.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let result = call.await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!(
            STORE_SECONDS,
            "backend" => self.inner.backend(),
            "operation" => operation,
            "outcome" => outcome
        )
        .record(start.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    /// The wrapped store's view for this reader, timed as well.
    fn for_reader(&self, token: ReadToken) -> Option<Arc<dyn Store>> {
        let inner = self.inner.for_reader(token)?;
        Some(Arc::new(Self::new(inner)))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.timed("flush", self.inner.flush()).await
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.timed("create_user", self.inner.create_user(user)).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.timed("user_by_id", self.inner.user_by_id(id)).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.timed("user_by_name", self.inner.user_by_name(username)).await
    }

    async fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>> {
        self.timed("users_after", self.inner.users_after(after, limit)).await
    }

    async fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool> {
        self.timed("set_password_hash", self.inner.set_password_hash(id, pw_hash)).await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        self.timed("set_disabled", self.inner.set_disabled(id, disabled)).await
    }

    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        self.timed("session_generation", self.inner.session_generation(id)).await
    }

    async fn bump_session_generation(&self, id: UserId) -> StoreResult<bool> {
        self.timed("bump_session_generation", self.inner.bump_session_generation(id)).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        self.timed("delete_user", self.inner.delete_user(id)).await
    }

    async fn add_message(&self, message: NewMessage) -> StoreResult<MessageId> {
        self.timed("add_message", self.inner.add_message(message)).await
    }

    async fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.timed("message_by_id", self.inner.message_by_id(id)).await
    }

    async fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool> {
        self.timed("set_flagged", self.inner.set_flagged(id, flagged)).await
    }

    async fn set_flagged_all(
        &self,
        ids: &[MessageId],
        flagged: bool,
    ) -> StoreResult<Vec<MessageId>> {
        self.timed("set_flagged_all", self.inner.set_flagged_all(ids, flagged)).await
    }

    async fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>> {
        self.timed("list_messages", self.inner.list_messages(filter)).await
    }

    async fn messages_after(
        &self,
        after: Option<MessageId>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.timed("messages_after", self.inner.messages_after(after, limit)).await
    }

    async fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.timed("follow", self.inner.follow(follower, followee)).await
    }

    async fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()> {
        self.timed("unfollow", self.inner.unfollow(follower, followee)).await
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        self.timed("is_following", self.inner.is_following(follower, followee)).await
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        self.timed("followees", self.inner.followees(follower, limit)).await
    }

    async fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>> {
        self.timed("follows_after", self.inner.follows_after(after, limit)).await
    }

    fn public_generation(&self) -> Option<u64> {
        self.inner.public_generation()
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let operation = match timeline {
            Timeline::Public => "timeline_public",
            Timeline::User(_) => "timeline_user",
            Timeline::Home(_) => "timeline_home",
        };
        self.timed(operation, self.inner.timeline(timeline, before, limit)).await
    }

    async fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>> {
        self.timed("receipt", self.inner.receipt(key, since)).await
    }

    async fn apply_once(
        &self,
        key: &ReceiptKey,
        receipt: &Receipt,
        since: i64,
        write: Write,
    ) -> StoreResult<Option<Receipt>> {
        self.timed("apply_once", self.inner.apply_once(key, receipt, since, write)).await
    }

    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        self.timed("forget_receipts", self.inner.forget_receipts(before, limit)).await
    }

    async fn latest(&self) -> StoreResult<Option<i64>> {
        self.timed("latest", self.inner.latest()).await
    }

    async fn set_latest(&self, latest: i64) -> StoreResult<()> {
        self.timed("set_latest", self.inner.set_latest(latest)).await
    }

    async fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait> {
        self.timed("begin_set_latest", self.inner.begin_set_latest(latest)).await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.timed("setting", self.inner.setting(key)).await
    }

    async fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        self.timed("init_setting", self.inner.init_setting(key, value)).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        self.timed("counts", self.inner.counts()).await
    }

    async fn import(&self, batch: ImportBatch) -> StoreResult<()> {
        self.timed("import", self.inner.import(batch)).await
    }

    async fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()> {
        self.timed("remove_imported", self.inner.remove_imported(batch)).await
    }

    async fn end_import(&self, latest: Option<i64>) -> StoreResult<()> {
        self.timed("end_import", self.inner.end_import(latest)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::testkit::MemoryStore;

    async fn fresh() -> (Arc<dyn Store>, ()) {
        (Arc::new(MeteredStore::new(Arc::new(MemoryStore::new()))), ())
    }

    // The decorator must keep the whole contract of the store it wraps.
    minitwit_core::conformance_tests!(fresh);
}
