//! PostgreSQL's change feed (`minitwit_core::feed`) through LISTEN/NOTIFY: the process
//! that writes publishes on the channel [`CHANNEL`] (a post in the very statement that
//! inserts it, so the notification goes out exactly when the post commits; other changes
//! right after their commit), and every process listens on its own connection and hands
//! what it hears to its own subscribers through a [`Hub`].
//!
//! Notifications are at most once: one sent while a listener's connection is down (the
//! database restarting, say) is lost. So after every reconnection the listener tells its
//! subscribers [`Delivery::Gap`](minitwit_core::feed::Delivery), and they read what they
//! missed from the store by message id.

use crate::error::backend_error;
use minitwit_core::feed::{Change, ChangeFeed, Hub};
use minitwit_core::store::StoreResult;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The notification channel of MiniTwit's changes.
pub(crate) const CHANNEL: &str = "minitwit_feed";

/// The statement that inserts a message and announces it on [`CHANNEL`] in one go
/// (`$1` author, `$2` text, `$3` date); returns the id.
pub(crate) const INSERT_AND_NOTIFY: &str = "WITH m AS (
         INSERT INTO messages (author_id, text, pub_date) VALUES ($1, $2, $3)
         RETURNING id, author_id)
     SELECT id, pg_notify('minitwit_feed', 'p ' || id || ' ' || author_id)::text AS notified
     FROM m";

/// The wait before listening again after the connection failed.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// This process's delivery: the hub, and the listener feeding it, started on first use.
#[derive(Default)]
pub(crate) struct PgFeed {
    started: OnceLock<Started>,
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

/// Announces `change` (made by a write that committed) to every process.
pub(crate) async fn publish(pool: &PgPool, change: Change) -> StoreResult<()> {
    for text in change.encode() {
        sqlx::query("SELECT pg_notify($1, $2)::text")
            .bind(CHANNEL)
            .bind(text)
            .execute(pool)
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// Announces `change` within the transaction that makes it: sent when it commits.
pub(crate) async fn notify_in(conn: &mut sqlx::PgConnection, change: Change) -> StoreResult<()> {
    for text in change.encode() {
        sqlx::query("SELECT pg_notify($1, $2)::text")
            .bind(CHANNEL)
            .bind(text)
            .execute(&mut *conn)
            .await
            .map_err(backend_error)?;
    }
    Ok(())
}

/// [`publish`], for a write that is done: a failure is logged, as the write stands and
/// the readers catch up from the store when they reconnect.
pub(crate) async fn announce(pool: &PgPool, change: Change) {
    if let Err(error) = publish(pool, change).await {
        tracing::warn!(%error, "a change could not be announced to live timelines");
    }
}
