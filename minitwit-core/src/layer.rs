//! [`StoreLayer`]: a [`Store`] that wraps another and states only what it changes.
//!
//! Every method of a layer forwards to [`StoreLayer::inner`] by default, through
//! [`StoreLayer::around`], which sees each call's [`Operation`] (its name, and whether it
//! writes) and may add to every call at once: time it, note a write's position. A layer
//! overrides the methods it changes and gets [`Store`] by the blanket implementation
//! below, so `Arc<dyn Store>` holds it like any backend.
//!
//! The asynchronous methods are listed once, in the `layer!` invocation at the end:
//! adding a method to [`Store`] means adding it there too (the compiler says so), and to
//! the backends; no layer changes unless it must treat the new method differently.

use crate::consistency::{ReadToken, Snapshot};
use crate::domain::MessageText;
use crate::feed::ChangeFeed;
use crate::idempotency::{FollowChange, Once, Receipt, ReceiptKey, Write};
use crate::model::{
    Counts, Cursor, Follow, ImportBatch, Message, MessageFilter, MessageId, NewMessage, NewUser,
    Timeline, TimelineEntry, User, UserId,
};
use crate::store::{ByName, DurableWait, Store, StoreResult};
use async_trait::async_trait;
use std::future::Future;
use std::sync::Arc;

/// One call a layer forwards, as [`StoreLayer::around`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The [`Store`] method's name (`"create_user"`), a metric label.
    pub name: &'static str,
    /// Whether the method may change the stored data.
    pub writes: bool,
}

/// Generates [`StoreLayer`], whose asynchronous methods forward through `around`, and the
/// blanket [`Store`] implementation of every layer, from one list of those methods.
macro_rules! layer {
    ($($kind:ident fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        /// A [`Store`] over another: every method forwards to [`StoreLayer::inner`] unless
        /// the layer overrides it. See the module documentation.
        #[async_trait]
        pub trait StoreLayer: Send + Sync + 'static {
            /// The store this layer wraps.
            fn inner(&self) -> &dyn Store;

            /// Runs `call`, a forwarded `operation`; by default just runs it.
            async fn around<T, F>(&self, _operation: Operation, call: F) -> StoreResult<T>
            where
                T: Send,
                F: Future<Output = StoreResult<T>> + Send,
            {
                call.await
            }

            /// [`Store::backend`]: the wrapped store's.
            fn backend(&self) -> &'static str {
                self.inner().backend()
            }

            /// [`Store::single_process`]: the wrapped store's.
            fn single_process(&self) -> bool {
                self.inner().single_process()
            }

            /// [`Store::for_reader`]: `None`, as a layer must wrap the reader's view of
            /// the wrapped store in itself to stay in the path of its calls.
            fn for_reader(&self, _token: ReadToken) -> Option<Arc<dyn Store>> {
                None
            }

            /// [`Store::public_generation`]: the wrapped store's.
            fn public_generation(&self) -> Option<u64> {
                self.inner().public_generation()
            }

            /// [`Store::follows_generation`]: the wrapped store's.
            fn follows_generation(&self) -> Option<u64> {
                self.inner().follows_generation()
            }

            /// [`Store::change_feed`]: the wrapped store's.
            fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
                self.inner().change_feed()
            }

            /// [`Store::broken`]: the wrapped store's.
            fn broken(&self) -> Option<String> {
                self.inner().broken()
            }

            $(
                #[doc = concat!("[`Store::", stringify!($name), "`], forwarded by default.")]
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    let operation =
                        Operation { name: stringify!($name), writes: layer!(@writes $kind) };
                    self.around(operation, self.inner().$name($($arg),*)).await
                }
            )*
        }

        #[async_trait]
        impl<L: StoreLayer> Store for L {
            fn backend(&self) -> &'static str {
                StoreLayer::backend(self)
            }

            fn single_process(&self) -> bool {
                StoreLayer::single_process(self)
            }

            fn for_reader(&self, token: ReadToken) -> Option<Arc<dyn Store>> {
                StoreLayer::for_reader(self, token)
            }

            fn public_generation(&self) -> Option<u64> {
                StoreLayer::public_generation(self)
            }

            fn follows_generation(&self) -> Option<u64> {
                StoreLayer::follows_generation(self)
            }

            fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
                StoreLayer::change_feed(self)
            }

            fn broken(&self) -> Option<String> {
                StoreLayer::broken(self)
            }

            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    StoreLayer::$name(self $(, $arg)*).await
                }
            )*
        }
    };
    (@writes read) => {
        false
    };
    (@writes write) => {
        true
    };
}

layer! {
    read fn ping(&self) -> StoreResult<()>;
    read fn flush(&self) -> StoreResult<()>;
    write fn create_user(&self, user: NewUser) -> StoreResult<User>;
    read fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    read fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    read fn users_after(&self, after: Option<UserId>, limit: usize) -> StoreResult<Vec<User>>;
    write fn set_password_hash(&self, id: UserId, pw_hash: &str) -> StoreResult<bool>;
    write fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    write fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    read fn session_generation(&self, id: UserId) -> StoreResult<i64>;
    write fn bump_session_generation(&self, id: UserId) -> StoreResult<bool>;
    read fn user_with_generation(&self, id: UserId) -> StoreResult<Option<(User, i64)>>;
    write fn add_message(&self, message: NewMessage) -> StoreResult<MessageId>;
    write fn add_message_by_name(&self, username: &str, text: MessageText, pub_date: i64) -> StoreResult<ByName<MessageId>>;
    read fn message_by_id(&self, id: MessageId) -> StoreResult<Option<Message>>;
    write fn set_flagged(&self, id: MessageId, flagged: bool) -> StoreResult<bool>;
    write fn set_flagged_all(&self, ids: &[MessageId], flagged: bool) -> StoreResult<Vec<MessageId>>;
    read fn list_messages(&self, filter: MessageFilter) -> StoreResult<Vec<Message>>;
    read fn messages_after(&self, after: Option<MessageId>, limit: usize) -> StoreResult<Vec<Message>>;
    write fn follow(&self, follower: UserId, followee: UserId) -> StoreResult<()>;
    write fn unfollow(&self, follower: UserId, followee: UserId) -> StoreResult<()>;
    read fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool>;
    read fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>>;
    read fn followees_by_name(&self, username: &str, limit: usize) -> StoreResult<Option<Vec<String>>>;
    read fn follows_after(&self, after: Option<Follow>, limit: usize) -> StoreResult<Vec<Follow>>;
    read fn timeline(&self, timeline: Timeline, before: Option<Cursor>, limit: usize) -> StoreResult<Vec<TimelineEntry>>;
    read fn snapshot(&self) -> StoreResult<Option<Snapshot>>;
    read fn receipt(&self, key: &ReceiptKey, since: i64) -> StoreResult<Option<Receipt>>;
    write fn apply_once(&self, key: &ReceiptKey, receipt: &Receipt, since: i64, write: Write) -> StoreResult<Option<Receipt>>;
    write fn apply_once_by_name(&self, key: &ReceiptKey, receipt: &Receipt, since: i64, username: &str, text: MessageText, pub_date: i64) -> StoreResult<ByName<Option<Receipt>>>;
    write fn change_follow_by_names(&self, follower: &str, followee: &str, change: FollowChange, once: Option<Once<'_>>) -> StoreResult<ByName<Option<Receipt>>>;
    write fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize>;
    read fn latest(&self) -> StoreResult<Option<i64>>;
    write fn set_latest(&self, latest: i64) -> StoreResult<()>;
    write fn begin_set_latest(&self, latest: i64) -> StoreResult<DurableWait>;
    read fn setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    write fn init_setting(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
    read fn counts(&self) -> StoreResult<Counts>;
    write fn import(&self, batch: ImportBatch) -> StoreResult<()>;
    write fn remove_imported(&self, batch: ImportBatch) -> StoreResult<()>;
    write fn end_import(&self, latest: Option<i64>) -> StoreResult<()>;
}
