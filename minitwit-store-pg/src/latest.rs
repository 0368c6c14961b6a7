//! The simulator's `latest`, recorded by the action's own statement. A front end
//! records `latest` first and waits for it last (`Store::begin_set_latest`); a commit of
//! its own cost each action a second transaction and a fifth of a replay. Here beginning
//! only notes the value, and the next simulator write to go out (a keyed write, a post
//! by name, a follow by names) carries the newest value noted: a `WITH` entry of its
//! statement ([`with_latest!`]) records it, in the action's transaction. A value no
//! statement carried (a request that wrote nothing, a statement that failed) is written
//! by a task of its own once it is waited for, as before.
//!
//! Values are numbered in the order they were asked for, and a statement records the
//! newest one unless a newer one of this process is there already (a slot per backend,
//! see the migration `latest_slots`). What holds:
//! - within a process, the value stored is the newest of those recorded, in the order
//!   they were asked for, whatever order their statements reached the database in;
//!   between processes, the last to write wins;
//! - a request is answered once a write covering its value (one carrying it, or a
//!   value asked for after it) is durable, or with the error of the write that covered it;
//! - a read of `latest` in this process waits for the values asked for before it, so it
//!   sees them (other processes see a value once its request is acknowledged).

use minitwit_core::store::{DurableWait, StoreError, StoreResult};
use sqlx::PgPool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// The statement recording a carried `latest`. `$p` is a `BIGINT[]`: the writing
/// process, the value's number and the value; NULL records nothing. The slot is the
/// backend's, so concurrent writers rarely wait on one another; a newer value of the
/// same process there is kept.
macro_rules! latest_update {
    ($p:literal) => {
        concat!(
            "UPDATE latest_slots SET process = (",
            $p,
            "::BIGINT[])[1], asked = (",
            $p,
            "::BIGINT[])[2], value = (",
            $p,
            "::BIGINT[])[3], written = nextval('latest_order') ",
            "WHERE slot = pg_backend_pid() % 16 AND ",
            $p,
            "::BIGINT[] IS NOT NULL AND (process <> (",
            $p,
            "::BIGINT[])[1] OR asked < (",
            $p,
            "::BIGINT[])[2])"
        )
    };
}
pub(crate) use latest_update;

/// The start of a statement's `WITH` list that records the `latest` bound to `$p` (see
/// [`latest_update!`]); the list goes on after it.
macro_rules! with_latest {
    ($p:literal) => {
        concat!("WITH latest_recorded AS (", $crate::latest::latest_update!($p), "), ")
    };
}
pub(crate) use with_latest;

/// The `latest` of one store (shared by its clones): the values asked for, and their
/// writes.
pub(crate) struct LatestWrites {
    /// This process's name in the slots, drawn at random.
    process: i64,
    asked: Mutex<Asked>,
    /// How many of the values asked for are covered by a durable write, and that
    /// write's result (an error covers the values it would have).
    written: watch::Sender<(u64, StoreResult<()>)>,
}

/// The values asked for so far.
#[derive(Default)]
struct Asked {
    /// How many, and the newest.
    count: u64,
    newest: i64,
    /// The highest number handed to a statement to carry.
    carried: u64,
    /// The highest number the writer task is to cover.
    wanted: u64,
    /// Whether the writer task is running (it ends once it has covered `wanted`).
    writing: bool,
}

impl Default for LatestWrites {
    fn default() -> Self {
        Self {
            process: rand::random(),
            asked: Mutex::default(),
            written: watch::Sender::new((0, Ok(()))),
        }
    }
}

/// The `latest` a statement carries (bound as [`latest_update!`]'s `$p`), and what to
/// report once it has run. Dropped without [`Carried::done`] (its statement failed or
/// was abandoned), it leaves its values to the writer task.
#[must_use]
pub(crate) struct Carried {
    writes: Arc<LatestWrites>,
    pool: PgPool,
    /// The value's number and the value; `None` carries nothing.
    value: Option<(u64, i64)>,
}

impl Carried {
    /// What the statement binds as [`latest_update!`]'s `$p`.
    pub(crate) fn bound(&self) -> Option<[i64; 3]> {
        self.value.map(|(number, value)| self.writes.row(number, value))
    }

    /// Reports the statement's outcome: committed, the values it carried are durable;
    /// failed, they are left to the writer task (on drop).
    pub(crate) fn done<T, E>(mut self, outcome: &Result<T, E>) {
        if outcome.is_ok()
            && let Some((number, _)) = self.value.take()
        {
            self.writes.covered_by_statement(number);
        }
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        if let Some((number, _)) = self.value.take()
            && self.writes.written.borrow().0 < number
        {
            self.writes.want(&self.pool, number);
        }
    }
}

impl LatestWrites {
    fn asked(&self) -> MutexGuard<'_, Asked> {
        // Plain fields, each updated in one step: a poisoned lock is still consistent.
        self.asked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes `latest` as asked for; the wait for a write covering it to be durable,
    /// which asks the writer task for one if no statement carried it by then.
    pub(crate) fn begin(self: &Arc<Self>, pool: &PgPool, latest: i64) -> DurableWait {
        let mine = {
            let mut asked = self.asked();
            asked.count += 1;
            asked.newest = latest;
            asked.count
        };
        let (this, pool) = (Arc::clone(self), pool.clone());
        Box::pin(async move { this.durable(&pool, mine).await })
    }

    /// The row [`latest_update!`] records for value number `number`.
    fn row(&self, number: u64, value: i64) -> [i64; 3] {
        [self.process, i64::try_from(number).unwrap_or(i64::MAX), value]
    }

    /// The newest value asked for, for a statement about to go out to carry, unless a
    /// statement carries it already.
    pub(crate) fn carry(self: &Arc<Self>, pool: &PgPool) -> Carried {
        let value = {
            let mut asked = self.asked();
            (asked.count > asked.carried).then(|| {
                asked.carried = asked.count;
                (asked.count, asked.newest)
            })
        };
        Carried { writes: Arc::clone(self), pool: pool.clone(), value }
    }

    /// Waits for every value asked for so far to be written (whatever the outcome:
    /// that is their requests' concern).
    pub(crate) async fn settled(self: &Arc<Self>, pool: &PgPool) {
        let asked = self.asked().count;
        let _ = self.durable(pool, asked).await;
    }

    /// The outcome of the first durable write seen that covers value number `number`;
    /// asks the writer task for one if no statement carries it.
    async fn durable(self: &Arc<Self>, pool: &PgPool, number: u64) -> StoreResult<()> {
        if self.written.borrow().0 < number && self.asked().carried < number {
            self.want(pool, number);
        }
        let mut written = self.written.subscribe();
        let outcome = written.wait_for(|(covers, _)| *covers >= number).await;
        match outcome {
            Ok(outcome) => outcome.1.clone(),
            Err(_) => Err(StoreError::Backend("the writer of latest stopped".to_owned())),
        }
    }

    /// A statement carrying values up to `number` committed.
    fn covered_by_statement(&self, number: u64) {
        self.written.send_if_modified(|written| {
            let newer = written.0 < number;
            if newer {
                *written = (number, Ok(()));
            }
            newer
        });
    }

    /// Has the writer task cover values up to `number`, starting it if it is idle.
    fn want(self: &Arc<Self>, pool: &PgPool, number: u64) {
        let mut asked = self.asked();
        asked.wanted = asked.wanted.max(number);
        if !asked.writing {
            asked.writing = true;
            tokio::spawn(Arc::clone(self).write_all(pool.clone()));
        }
    }

    /// The writer task: writes the newest value asked for until the values wanted are
    /// covered.
    async fn write_all(self: Arc<Self>, pool: PgPool) {
        loop {
            let (count, newest) = {
                let mut asked = self.asked();
                if asked.wanted <= self.written.borrow().0 {
                    asked.writing = false;
                    return;
                }
                (asked.count, asked.newest)
            };
            let result = crate::state::set_latest(&pool, self.row(count, newest)).await;
            self.written.send_if_modified(|written| {
                let newer = written.0 < count;
                if newer {
                    *written = (count, result);
                }
                newer
            });
        }
    }
}

#[cfg(all(test, feature = "testkit"))]
mod tests {
    use crate::testkit;

    /// Two values of one process, carried by statements on two connections (two slots,
    /// or one), reach the database newer first: the newer is kept.
    #[tokio::test]
    async fn an_older_value_reaching_the_database_later_is_not_kept() {
        let (url, _db) = testkit::fresh_database_url().await;
        let store = testkit::connect(&url).await;
        let (pool, writes) = (&store.pool, &store.latest_writes);
        let _first = writes.begin(pool, 1);
        let older = writes.carry(pool);
        let _second = writes.begin(pool, 2);
        let newer = writes.carry(pool);
        assert_eq!((older.bound().map(|b| b[2]), newer.bound().map(|b| b[2])), (Some(1), Some(2)));
        let (mut one, mut other) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        for (conn, carried) in [(&mut *one, &newer), (&mut *other, &older)] {
            sqlx::query(latest_update!("$1")).bind(carried.bound()).execute(conn).await.unwrap();
        }
        assert_eq!(crate::state::latest(pool).await.unwrap(), Some(2));
        older.done(&Ok::<(), ()>(()));
        newer.done(&Ok::<(), ()>(()));
    }

    /// A value no statement carried is written by the writer task once waited for; a
    /// value a failed statement carried is too.
    #[tokio::test]
    async fn values_no_statement_recorded_are_written_when_waited_for() {
        let (url, _db) = testkit::fresh_database_url().await;
        let store = testkit::connect(&url).await;
        let (pool, writes) = (&store.pool, &store.latest_writes);
        writes.begin(pool, 5).await.unwrap();
        assert_eq!(crate::state::latest(pool).await.unwrap(), Some(5));
        let wait = writes.begin(pool, 6);
        let carried = writes.carry(pool);
        carried.done(&Err::<(), ()>(()));
        wait.await.unwrap();
        assert_eq!(crate::state::latest(pool).await.unwrap(), Some(6));
    }
}
