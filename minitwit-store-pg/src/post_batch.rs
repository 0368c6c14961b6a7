//! Posts by name stored together: the posts that wait while the database stores a batch
//! form the next one, stored by one statement in one commit (group commit).
//!
//! A durable post costs PostgreSQL mostly its statement and its commit, not its row: on
//! two cores, statements storing 16 posts each stored 6.6 times the posts per second of
//! statements storing one (BENCHMARKS.md). So a post by name joins this store's queue,
//! and [`SENDERS`] tasks each take every post waiting, at most [`MAX_BATCH`], and store
//! them in one statement (`messages::add_all_by_name`). Nothing waits for company: a
//! post that finds a sender idle is taken at once, alone, by the one-post statement;
//! batches form only while every sender is busy.
//!
//! Each post keeps its own answer. An unknown or disabled author refuses that post
//! only, and a batch whose statement fails is sent again one post at a time, so that a
//! failure is its own post's. A post is answered once the commit that stored it is
//! durable, as alone. A post whose caller stopped waiting is still stored once queued,
//! as one whose statement was already sent would be.
//!
//! The senders start with the first post, on its runtime. Should that runtime stop, the
//! queue closes and later posts are each stored by a statement of their own.

use crate::error::backend_error;
use crate::latest::LatestWrites;
use crate::messages::{self, Post, Posted};
use minitwit_core::store::{StoreError, StoreResult};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The most posts one statement stores.
const MAX_BATCH: usize = 64;

/// How many batches may be in flight at once: while some commit, the next is being
/// stored; few, to leave most of the pool (10 connections by default) to the other
/// requests.
const SENDERS: usize = 3;

/// How many posts may wait; past that a post waits for room.
const QUEUE: usize = 1024;

/// A post waiting, and where its answer goes.
struct Queued {
    post: Post,
    answer: oneshot::Sender<StoreResult<Posted>>,
}

/// One store's queue of posts by name (shared by its clones).
#[derive(Default)]
pub(crate) struct PostBatches {
    queue: OnceLock<mpsc::Sender<Queued>>,
}

impl PostBatches {
    /// Stores `post`, with the posts waiting beside it; its own outcome.
    pub(crate) async fn post(
        &self,
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
        post: Post,
    ) -> StoreResult<Posted> {
        let queue = self.queue.get_or_init(|| start(pool, latest));
        let (answer, answered) = oneshot::channel();
        match queue.send(Queued { post, answer }).await {
            Ok(()) => answered.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable("the post's batch was abandoned".into()))
            }),
            Err(mpsc::error::SendError(Queued { post, .. })) => {
                messages::add_by_name(pool, latest, &post).await
            }
        }
    }
}

/// Starts the senders, on the caller's runtime; the queue they take posts from.
fn start(pool: &PgPool, latest: &Arc<LatestWrites>) -> mpsc::Sender<Queued> {
    let (queue, waiting) = mpsc::channel(QUEUE);
    let waiting = Arc::new(Mutex::new(waiting));
    for _ in 0..SENDERS {
        tokio::spawn(send_batches(Arc::clone(&waiting), pool.clone(), Arc::clone(latest)));
    }
    queue
}

/// One sender: takes every post waiting (one at least) and stores them, until the
/// queue closes.
async fn send_batches(
    waiting: Arc<Mutex<mpsc::Receiver<Queued>>>,
    pool: PgPool,
    latest: Arc<LatestWrites>,
) {
    let mut batch = Vec::new();
    loop {
        if waiting.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        store(&pool, &latest, std::mem::take(&mut batch)).await;
    }
}

/// Stores `batch` and answers each post: together, or one at a time if the database
/// refused them together (then none was stored). Any other failure leaves unknown
/// whether they were stored: each post is answered with it, as alone.
async fn store(pool: &PgPool, latest: &Arc<LatestWrites>, batch: Vec<Queued>) {
    if batch.len() > 1 {
        let posts: Vec<&Post> = batch.iter().map(|queued| &queued.post).collect();
        match messages::add_all_by_name(pool, latest, &posts).await {
            Ok(outcomes) => {
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = queued.answer.send(Ok(outcome));
                }
                return;
            }
            Err(sqlx::Error::Database(_)) => {}
            Err(other) => {
                let failed = backend_error(other);
                for queued in batch {
                    let _ = queued.answer.send(Err(failed.clone()));
                }
                return;
            }
        }
    }
    for Queued { post, answer } in batch {
        let _ = answer.send(messages::add_by_name(pool, latest, &post).await);
    }
}
