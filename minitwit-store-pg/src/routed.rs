//! [`RoutedStore`]: MiniTwit over a PostgreSQL primary and streaming read replicas, with
//! read-your-writes for every reader.
//!
//! Routing:
//! - writes, settings, the simulator's `latest`, administration and export reads go to
//!   the primary;
//! - timeline, profile (users by id or name) and follow-list reads go to a replica that
//!   is up, within the lag bound ([`ReplicaOptions::max_lag`]) and has replayed the
//!   reader's latest write ([`ReadToken`]); otherwise to the primary. A replica that
//!   fails a read is taken out of service, the read is answered by the primary, and the
//!   background check brings the replica back once it answers again.
//!
//! After every acknowledged write, the primary's WAL insert position (read after the
//! commit, so it lies at or beyond the commit record) advances the writer's token and the
//! process's own token. A store not bound to a reader ([`Store::for_reader`]) reads with
//! the process's token: it sees every write made through this process (the simulator
//! API's documented client identity).

use crate::error::PgError;
use crate::options::{PgOptions, ReplicaOptions};
use crate::position::{Position, primary_position};
use crate::replicas::{Choice, FALLBACKS, Fallback, READS, ReplicaSet};
use crate::store::PgStore;
use async_trait::async_trait;
use minitwit_core::consistency::{ReadToken, Snapshot};
use minitwit_core::layer::{Operation, StoreLayer};
use minitwit_core::store::StoreResult;
use minitwit_core::{Cursor, Store, Timeline, TimelineEntry, User, UserId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A read of one store, as the `Store` methods return it.
type Read<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

/// The store over a primary and its read replicas, as seen by one reader. Cheap to
/// clone; clones share connections, checks and the reader's token.
#[derive(Clone)]
pub struct RoutedStore {
    set: Arc<ReplicaSet>,
    /// What this view's reads must reflect; advanced by its writes.
    token: ReadToken,
    /// The process's highest write position, advanced by every write.
    process: ReadToken,
}

impl std::fmt::Debug for RoutedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStore")
            .field("primary", &self.set.primary)
            .field("replicas", &self.set.replicas().count())
            .field("token", &self.token.position())
            .finish()
    }
}

impl RoutedStore {
    /// Connects to the primary at `primary_url` (migrating it, as
    /// [`PgStore::connect`]) and to the replicas at `replica_urls` lazily: a replica that
    /// is down now is used once it answers. Each replica gets a pool sized by `options`.
    pub async fn connect(
        primary_url: &str,
        replica_urls: &[String],
        options: PgOptions,
        replicas: ReplicaOptions,
    ) -> Result<Self, PgError> {
        let stores = replica_urls
            .iter()
            .map(|url| PgStore::connect_lazy(url, &options))
            .collect::<Result<Vec<_>, _>>()?;
        let primary = PgStore::connect(primary_url, options).await?;
        // The process reads nothing older than the primary as it is now, migrations
        // included: a replica still without the current schema serves nothing.
        let now =
            primary_position(&primary, Position::Insert).await.map_err(PgError::Unreachable)?;
        let process = ReadToken::at(now.pack());
        let set = ReplicaSet::start(primary, stores, replicas);
        set.learn_timeline(now.timeline);
        Ok(Self { set, token: process.clone(), process })
    }

    /// After a successful write: learns the primary's WAL position and timeline and
    /// advances both tokens; when it cannot be learned, the reader is held to the
    /// primary until a later write's position is known. The timeline is learned before
    /// the write is acknowledged, so no read of this process after it is served by a
    /// replica still on an older one.
    async fn wrote<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if result.is_ok() {
            let position = match primary_position(&self.set.primary, Position::Insert).await {
                Ok(position) => {
                    self.set.learn_timeline(position.timeline);
                    position.pack()
                }
                Err(err) => {
                    tracing::warn!(error = %err, "write position unknown; the writer reads from the primary");
                    ReadToken::UNKNOWN
                }
            };
            self.token.advance(position);
            self.process.advance(position);
        }
        result
    }

    /// Runs a read that a fresh-enough replica may serve.
    async fn routed<'a, T>(&'a self, read: impl Fn(&'a PgStore) -> Read<'a, T>) -> StoreResult<T> {
        let fallback = match self.choose().await {
            Ok(replica) => match read(&replica.store).await {
                Ok(found) => {
                    metrics::counter!(READS, "target" => "replica").increment(1);
                    return Ok(found);
                }
                Err(err) => {
                    replica.failed(&err);
                    Some(Fallback::Failed)
                }
            },
            Err(reason) => reason,
        };
        if let Some(reason) = fallback {
            metrics::counter!(FALLBACKS, "reason" => reason.label()).increment(1);
        }
        metrics::counter!(READS, "target" => "primary").increment(1);
        read(&self.set.primary).await
    }

    /// A replica fresh enough for this reader, or why the primary must serve (`None`:
    /// no replicas are configured). A replica behind at its last check is asked again.
    async fn choose(&self) -> Result<&crate::replicas::Replica, Option<Fallback>> {
        if !self.set.has_replicas() {
            return Err(None);
        }
        let position = self.token.position();
        match self.set.choose(position) {
            Choice::Fresh(replica) => Ok(replica),
            Choice::Behind(replica)
                if position != ReadToken::UNKNOWN
                    && replica.has_replayed(self.set.needed(position)).await =>
            {
                Ok(replica)
            }
            Choice::Behind(_) => Err(Some(Fallback::BehindReader)),
            Choice::Primary(reason) => Err(Some(reason)),
        }
    }

    fn primary(&self) -> &PgStore {
        &self.set.primary
    }
}

/// Forwards to the primary, noting every write's position; routes the reads a replica
/// may serve.
#[async_trait]
impl StoreLayer for RoutedStore {
    fn inner(&self) -> &dyn Store {
        self.primary()
    }

    async fn around<T, F>(&self, operation: Operation, call: F) -> StoreResult<T>
    where
        T: Send,
        F: Future<Output = StoreResult<T>> + Send,
    {
        let result = call.await;
        if operation.writes { self.wrote(result).await } else { result }
    }

    fn for_reader(&self, token: ReadToken) -> Option<Arc<dyn Store>> {
        let (set, process) = (Arc::clone(&self.set), self.process.clone());
        Some(Arc::new(Self { set, token, process }))
    }

    /// None: a read may come from a replica behind the primary's snapshot, so what is
    /// derived from it must not be served again under that snapshot.
    async fn snapshot(&self) -> StoreResult<Option<Snapshot>> {
        Ok(None)
    }

    /// Ready while the primary or any replica answers: reads can then be served.
    async fn ping(&self) -> StoreResult<()> {
        let primary = self.primary().ping().await;
        if primary.is_ok() {
            return primary;
        }
        for replica in self.set.replicas() {
            if replica.ping().await.is_ok() {
                return Ok(());
            }
        }
        primary
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.routed(|store| store.user_by_id(id)).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.routed(|store| store.user_by_name(username)).await
    }

    /// Routed like the user it belongs to (a replica may lag the end of a session by its
    /// replication delay, as it lags the user's record).
    async fn session_generation(&self, id: UserId) -> StoreResult<i64> {
        self.routed(|store| store.session_generation(id)).await
    }

    /// Routed as its two halves are ([`Store::user_by_id`], [`Store::session_generation`]).
    async fn user_with_generation(&self, id: UserId) -> StoreResult<Option<(User, i64)>> {
        self.routed(|store| store.user_with_generation(id)).await
    }

    async fn is_following(&self, follower: UserId, followee: UserId) -> StoreResult<bool> {
        self.routed(|store| store.is_following(follower, followee)).await
    }

    async fn followees(&self, follower: UserId, limit: usize) -> StoreResult<Vec<String>> {
        self.routed(|store| store.followees(follower, limit)).await
    }

    /// Routed as its two halves are ([`Store::user_by_name`], [`Store::followees`]).
    async fn followees_by_name(
        &self,
        username: &str,
        limit: usize,
    ) -> StoreResult<Option<Vec<String>>> {
        self.routed(|store| store.followees_by_name(username, limit)).await
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        self.routed(|store| store.timeline(timeline, before, limit)).await
    }

    /// Not a write to note: receipts are read from the primary only (a retry must find
    /// the receipt its first attempt just wrote), so their removal moves no reader.
    async fn forget_receipts(&self, before: i64, limit: usize) -> StoreResult<usize> {
        self.primary().forget_receipts(before, limit).await
    }
}
