//! The simulator's writes stored together: the writes of one kind (posts by name, follow
//! changes by names) that wait while the database stores a batch form the next one,
//! stored by one statement in one commit (group commit).
//!
//! A durable write costs PostgreSQL mostly its statement and its commit, not its row: on
//! two cores, statements storing 16 posts each stored 6.6 times the posts per second of
//! statements storing one, and statements storing 4 keyed follows each 2.3 times the
//! follows (BENCHMARKS.md). So at most a few statements of a kind run at once (each
//! queue's limit). A write that finds one of them free sends its own statement at once,
//! from its own task, with no hand-over ([`Batched::store_one`]). Only when all are busy
//! does it join its kind's queue, and sender tasks each take every write waiting, at
//! most [`MAX_BATCH`], as soon as a statement is free, and store them in one statement
//! ([`Batched::store_all`]). Writes waiting together were in flight together, so any
//! order among them is one they could have had.
//!
//! The limits were measured (BENCHMARKS.md). Posts without a key: [`POSTS_IN_FLIGHT`],
//! few, so that a saturated store sends few statements, each storing many posts. Keyed
//! posts and follow changes, which the simulator sends: [`KEYED_IN_FLIGHT`] each, as
//! many as it sends requests at a time, so that its writes go alone: with fewer, its
//! replay on a machine busy with other work took a quarter longer, and more of its
//! actions went over the deadline.
//!
//! Each write keeps its own answer. An unknown user refuses that write only, and a batch
//! whose statement fails is sent again one write at a time, so that a failure is its own
//! write's. A write is answered once the commit that stored it is durable, as alone. A
//! write whose caller stopped waiting is still stored once queued, as one whose
//! statement was already sent would be.
//!
//! The senders start with the first write, on its runtime. Should that runtime stop, the
//! queue closes and later writes are each stored by a statement of their own.

use crate::error::backend_error;
use crate::latest::LatestWrites;
use async_trait::async_trait;
use minitwit_core::store::{ByName, StoreError, StoreResult};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use tokio::sync::{Mutex, Semaphore, SemaphorePermit, mpsc, oneshot};

/// The most writes one statement stores.
const MAX_BATCH: usize = 64;

/// How many statements storing posts without a key may be in flight at once, alone or
/// batches: while some commit, the next is being stored.
pub(crate) const POSTS_IN_FLIGHT: usize = 3;

/// How many statements storing keyed posts, or follow changes, may be in flight at once.
pub(crate) const KEYED_IN_FLIGHT: usize = 8;

/// How many writes may wait; past that a write waits for room.
const QUEUE: usize = 1024;

/// A kind of write that can be stored alone or many in one statement.
#[async_trait]
pub(crate) trait Batched: Send + Sync + Sized + 'static {
    /// What one write did.
    type Outcome: Send + 'static;

    /// Stores this write by a statement of its own.
    async fn store_one(
        &self,
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
    ) -> StoreResult<Self::Outcome>;

    /// Stores `writes` in one statement: each one's outcome, in order, as
    /// [`store_one`](Self::store_one) would have it. A database's refusal stores none.
    async fn store_all(
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
        writes: &[&Self],
    ) -> Result<Vec<Self::Outcome>, sqlx::Error>;
}

/// A write waiting, and where its answer goes.
struct Queued<W: Batched> {
    write: W,
    answer: oneshot::Sender<StoreResult<W::Outcome>>,
}

/// One store's writes of one kind (shared by its clones): its statements in flight, and
/// its queue.
pub(crate) struct Batches<W: Batched> {
    limit: usize,
    in_flight: Arc<Semaphore>,
    queue: OnceLock<mpsc::Sender<Queued<W>>>,
}

impl<W: Batched> Batches<W> {
    /// Writes of a kind, at most `limit` statements of them in flight at once (each
    /// holding a connection of the pool).
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, in_flight: Arc::new(Semaphore::new(limit)), queue: OnceLock::new() }
    }

    /// Stores `write`, with the writes waiting beside it; its own outcome.
    pub(crate) async fn store(
        &self,
        pool: &PgPool,
        latest: &Arc<LatestWrites>,
        write: W,
    ) -> StoreResult<W::Outcome> {
        if let Ok(_alone) = self.in_flight.try_acquire() {
            return write.store_one(pool, latest).await;
        }
        let queue = self.queue.get_or_init(|| self.start(pool, latest));
        let (answer, answered) = oneshot::channel();
        match queue.send(Queued { write, answer }).await {
            Ok(()) => answered.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable("the write's batch was abandoned".into()))
            }),
            Err(mpsc::error::SendError(Queued { write, .. })) => {
                write.store_one(pool, latest).await
            }
        }
    }

    /// Starts the senders, on the caller's runtime; the queue they take writes from.
    fn start(&self, pool: &PgPool, latest: &Arc<LatestWrites>) -> mpsc::Sender<Queued<W>> {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..self.limit {
            let sender = Sender {
                waiting: Arc::clone(&waiting),
                in_flight: Arc::clone(&self.in_flight),
                pool: pool.clone(),
                latest: Arc::clone(latest),
            };
            tokio::spawn(sender.run());
        }
        queue
    }
}

/// A task storing the writes that wait, a batch at a time.
struct Sender<W: Batched> {
    waiting: Arc<Mutex<mpsc::Receiver<Queued<W>>>>,
    in_flight: Arc<Semaphore>,
    pool: PgPool,
    latest: Arc<LatestWrites>,
}

impl<W: Batched> Sender<W> {
    /// Takes every write waiting (one at least) once a statement is free, and stores
    /// them, until the queue closes.
    async fn run(self) {
        let mut batch = Vec::new();
        loop {
            let Some(_statement) = self.next_batch(&mut batch).await else { return };
            store(&self.pool, &self.latest, std::mem::take(&mut batch)).await;
        }
    }

    /// Waits for a write, then for a free statement, and fills `batch` with every write
    /// waiting by then; the statement, or nothing once the queue is closed.
    async fn next_batch(&self, batch: &mut Vec<Queued<W>>) -> Option<SemaphorePermit<'_>> {
        let mut waiting = self.waiting.lock().await;
        if waiting.recv_many(batch, MAX_BATCH).await == 0 {
            return None;
        }
        let statement = self.in_flight.acquire().await.ok()?;
        while batch.len() < MAX_BATCH
            && let Ok(write) = waiting.try_recv()
        {
            batch.push(write);
        }
        Some(statement)
    }
}

/// Stores `batch` and answers each write: together, or one at a time if the database
/// refused them together (then none was stored). Any other failure leaves unknown
/// whether they were stored: each write is answered with it, as alone.
async fn store<W: Batched>(pool: &PgPool, latest: &Arc<LatestWrites>, batch: Vec<Queued<W>>) {
    if batch.len() > 1 {
        let writes: Vec<&W> = batch.iter().map(|queued| &queued.write).collect();
        match W::store_all(pool, latest, &writes).await {
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
    for Queued { write, answer } in batch {
        let _ = answer.send(write.store_one(pool, latest).await);
    }
}

/// The outcomes of a batch of `len` writes from its statement's rows, each with its
/// write's place in the batch (from 1); a write with no row found nobody by its name.
pub(crate) fn by_place<T>(
    len: usize,
    rows: impl Iterator<Item = (i64, ByName<T>)>,
) -> Result<Vec<ByName<T>>, sqlx::Error> {
    let mut outcomes: Vec<ByName<T>> = (0..len).map(|_| ByName::UnknownUser).collect();
    for (place, outcome) in rows {
        let slot = usize::try_from(place - 1).ok().and_then(|at| outcomes.get_mut(at));
        *slot.ok_or_else(|| sqlx::Error::Protocol("a write's row is not as stored".into()))? =
            outcome;
    }
    Ok(outcomes)
}
