//! PostgreSQL's change feed (`minitwit_core::feed`) through LISTEN/NOTIFY: the process
//! that writes publishes on the channel [`CHANNEL`] right after the write commits, through
//! one queue (so in the order of the commits), a batch of changes per statement, and
//! every process listens on its own connection and hands what it hears to its own
//! subscribers through a [`Hub`].
//!
//! A post is announced in a transaction apart from the one that stores it: PostgreSQL
//! commits the transactions that notify one at a time, under one lock held across the
//! commit's flush to disk, so posts that notified as they were stored shared no flush
//! (pgbench, 10 clients: 3,800 posts/s against 8,700 without). A transaction that only
//! notifies writes nothing to the log and waits for no disk.
//!
//! Notifications are at most once: one sent while a listener's connection is down (the
//! database restarting, say), or not sent because the writing process died right after
//! its commit, is lost. So after every reconnection the listener tells its subscribers
//! [`Delivery::Gap`](minitwit_core::feed::Delivery), and they read what they missed from
//! the store by message id.

use crate::error::backend_error;
use minitwit_core::feed::{Change, ChangeFeed, Hub};
use minitwit_core::store::StoreResult;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The notification channel of MiniTwit's changes.
pub(crate) const CHANNEL: &str = "minitwit_feed";

/// The wait before listening again after the connection failed.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Changes waiting to be announced, at most: beyond, a change is dropped and logged (the
/// feed is at most once; see the module documentation).
const QUEUED: usize = 4096;

/// Changes announced per statement, at most.
const PER_STATEMENT: usize = 256;

/// The least time between two statements of the publisher. Every statement wakes each
/// listening process, so a busy process sends one per many writes (under the simulator's
/// traffic about ten changes a statement, against one or two without it). A change that
/// comes after a quiet spell is sent at once: only a busy process's events wait, at most
/// this long.
const LINGER: Duration = Duration::from_millis(10);

/// This process's delivery: the hub, and the listener feeding it, started on first use;
/// and the queue of this process's changes to announce, with the task that sends them.
#[derive(Default)]
pub(crate) struct PgFeed {
    started: OnceLock<Started>,
    queue: OnceLock<mpsc::Sender<Change>>,
}

struct Started {
    hub: Hub,
    listener: JoinHandle<()>,
}

impl Drop for Started {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgFeed {
    /// The hub this process's subscribers read, its listener started on first call
    /// (within a Tokio runtime) on a connection of its own.
    pub(crate) fn hub(&self, pool: &PgPool) -> Hub {
        let started = self.started.get_or_init(|| {
            let hub = Hub::default();
            let listener = tokio::spawn(listen(own_pool(pool), hub.clone()));
            Started { hub, listener }
        });
        started.hub.clone()
    }

    /// The hub as a store's delivery.
    pub(crate) fn delivery(&self, pool: &PgPool) -> Arc<dyn ChangeFeed> {
        Arc::new(self.hub(pool))
    }

    /// Announces `change`, made by a write that committed, to every process: queued for
    /// this process's publisher (started on first call, within a Tokio runtime), which
    /// sends all that has queued meanwhile in one statement, so that a busy process
    /// notifies once per batch of writes rather than once per write.
    pub(crate) fn announce(&self, pool: &PgPool, change: Change) {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUED);
            tokio::spawn(publish(pool.clone(), receiver));
            sender
        });
        if let Err(error) = queue.try_send(change) {
            tracing::warn!(%error, "a change could not be queued for live timelines");
        }
    }
}

/// One connection for the listener alone, so that it never takes one from requests.
fn own_pool(pool: &PgPool) -> PgPool {
    let options = (*pool.connect_options()).clone();
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(options)
}

/// Listens on [`CHANNEL`] for as long as the process runs, handing each change to `hub`;
/// after every reconnection, a gap.
async fn listen(pool: PgPool, hub: Hub) {
    let mut first = true;
    loop {
        let attempt = subscribe(&pool).await;
        let gap = !first;
        first = false;
        let mut listener = match attempt {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "the change feed cannot listen yet");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        if gap {
            hub.gap();
        }
        relay(&mut listener, &hub).await;
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hands notifications to `hub` until the connection is lost.
async fn relay(listener: &mut PgListener, hub: &Hub) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match Change::decode(notification.payload()) {
                Some(change) => hub.publish(change),
                None => tracing::warn!(payload = notification.payload(), "an unknown change"),
            },
            Ok(None) => {
                tracing::info!("the change feed lost its connection; listening again");
                return;
            }
            Err(error) => {
                tracing::info!(%error, "the change feed failed; listening again");
                return;
            }
        }
    }
}

/// Sends these texts on [`CHANNEL`], in order, in one statement.
async fn notify(pool: &PgPool, texts: &[String]) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, t)::text FROM unnest($2::TEXT[]) AS t")
        .bind(CHANNEL)
        .bind(texts)
        .execute(pool)
        .await
        .map_err(backend_error)?;
    Ok(())
}

/// Sends the changes queued for announcing, in order, each batch that has queued in one
/// statement, at most one statement per [`LINGER`] unless a backlog fills them, until the
/// queue closes (its store is gone). A failure is logged: the writes stand, and readers
/// catch up from the store when they reconnect.
async fn publish(pool: PgPool, mut queue: mpsc::Receiver<Change>) {
    let mut changes = Vec::with_capacity(PER_STATEMENT);
    let mut last_sent = None;
    while next_batch(&mut queue, &mut changes, last_sent).await > 0 {
        last_sent = paced_after(changes.len());
        let texts: Vec<String> = changes.drain(..).flat_map(|change| change.encode()).collect();
        if let Err(error) = notify(&pool, &texts).await {
            tracing::warn!(%error, changes = texts.len(), "changes could not be announced to live timelines");
        }
    }
}

/// What paces the statement after one of `sent` changes, sent now: the time it went
/// out, unless it was full: a backlog is left, and the next goes at once.
fn paced_after(sent: usize) -> Option<Instant> {
    (sent < PER_STATEMENT).then(Instant::now)
}

/// Waits for a change; if the last statement went out (`last_sent`) less than
/// [`LINGER`] ago, waits until [`LINGER`] after it for more; then moves what has queued
/// (up to [`PER_STATEMENT`]) into `changes`. How many, 0 once the queue has closed.
async fn next_batch(
    queue: &mut mpsc::Receiver<Change>,
    changes: &mut Vec<Change>,
    last_sent: Option<Instant>,
) -> usize {
    if queue.recv_many(changes, PER_STATEMENT).await == 0 {
        return 0;
    }
    if let Some(last_sent) = last_sent {
        tokio::time::sleep_until(last_sent + LINGER).await;
    }
    while changes.len() < PER_STATEMENT {
        let Ok(change) = queue.try_recv() else { break };
        changes.push(change);
    }
    changes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::{MessageId, UserId};

    fn posted(id: i64) -> Change {
        Change::Posted { id: MessageId(id), author: UserId(1) }
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_after_a_quiet_spell_goes_at_once() {
        let (sender, mut queue) = mpsc::channel(QUEUED);
        let long_ago = Some(Instant::now());
        tokio::time::sleep(LINGER * 2).await;
        let later = tokio::spawn(async move {
            sender.send(posted(1)).await.unwrap();
            tokio::time::sleep(LINGER / 2).await;
            sender.send(posted(2)).await.unwrap();
        });
        let mut changes = Vec::new();
        assert_eq!(next_batch(&mut queue, &mut changes, long_ago).await, 1, "{changes:?}");
        changes.clear();
        assert_eq!(next_batch(&mut queue, &mut changes, None).await, 1, "nothing sent yet");
        assert_eq!(changes, [posted(2)]);
        later.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_soon_after_a_statement_waits_for_more_and_nothing_later() {
        let (sender, mut queue) = mpsc::channel(QUEUED);
        let just_sent = Some(Instant::now());
        let later = tokio::spawn(async move {
            sender.send(posted(1)).await.unwrap();
            tokio::time::sleep(LINGER / 2).await;
            sender.send(posted(2)).await.unwrap();
            tokio::time::sleep(LINGER).await;
            sender.send(posted(3)).await.unwrap();
        });
        let mut changes = Vec::new();
        assert_eq!(next_batch(&mut queue, &mut changes, just_sent).await, 2, "{changes:?}");
        assert_eq!(changes, [posted(1), posted(2)]);
        let sent = Some(Instant::now());
        changes.clear();
        assert_eq!(next_batch(&mut queue, &mut changes, sent).await, 1);
        assert_eq!(changes, [posted(3)]);
        later.await.unwrap();
        changes.clear();
        assert_eq!(next_batch(&mut queue, &mut changes, sent).await, 0, "the queue closed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_goes_out_in_full_batches_without_waiting() {
        let (sender, mut queue) = mpsc::channel(QUEUED);
        for id in 0..2 * PER_STATEMENT + 1 {
            sender.send(posted(i64::try_from(id).unwrap())).await.unwrap();
        }
        let (start, mut last_sent, mut changes) = (Instant::now(), None, Vec::new());
        let mut batches = Vec::new();
        for _ in 0..3 {
            let sent = next_batch(&mut queue, &mut changes, last_sent).await;
            batches.push((sent, start.elapsed()));
            last_sent = paced_after(sent);
            changes.clear();
        }
        let at_once = Duration::ZERO;
        let expected = [(PER_STATEMENT, at_once), (PER_STATEMENT, at_once), (1, at_once)];
        assert_eq!(batches, expected);
        sender.send(posted(-1)).await.unwrap();
        assert_eq!(next_batch(&mut queue, &mut changes, last_sent).await, 1);
        assert_eq!(start.elapsed(), LINGER, "after a batch that was not full, paced again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_holds_at_most_one_statements_worth() {
        let (sender, mut queue) = mpsc::channel(QUEUED);
        for id in 0..PER_STATEMENT + 3 {
            sender.send(posted(i64::try_from(id).unwrap())).await.unwrap();
        }
        let mut changes = Vec::new();
        assert_eq!(next_batch(&mut queue, &mut changes, None).await, PER_STATEMENT);
        changes.clear();
        assert_eq!(next_batch(&mut queue, &mut changes, None).await, 3);
    }
}
