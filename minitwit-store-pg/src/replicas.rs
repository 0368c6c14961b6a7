//! The replicas behind a [`crate::RoutedStore`]: what a background check last saw of
//! each (up or down, replayed WAL position, lag), the primary's recent WAL positions for
//! measuring lag, and the choice of a replica fresh enough for a reader.
//!
//! Positions are WAL positions with their timeline (`position`). A replica's known
//! replayed position only ever understates the truth (replay moves forward, and a
//! member's timeline only up), so a replica judged fresh enough from it is. A replica on
//! an older timeline than the primary's serves nothing: after a failover it may hold WAL
//! the new primary never had.
//!
//! Lag is measured in time without trusting clocks of other machines: the check samples
//! the primary's WAL position every interval, and a replica that has not replayed up to
//! a sample taken at `t` is at least `now - t` behind.

use crate::error::backend_error;
use crate::options::ReplicaOptions;
use crate::position::{Position, WalPosition, primary_position};
use crate::store::PgStore;
use minitwit_core::store::{StoreError, StoreResult};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Reads served, by target (`primary` or `replica`): timeline, profile and follow reads.
pub const READS: &str = "minitwit_store_reads_total";
/// Such reads served by the primary while replicas are configured, by reason.
pub const FALLBACKS: &str = "minitwit_replica_fallbacks_total";
/// How far each replica is behind the primary, by replica (its position on the
/// command line, from 0).
pub const LAG_SECONDS: &str = "minitwit_replica_lag_seconds";
/// Whether each replica answered its last check (1) or not (0).
pub const UP: &str = "minitwit_replica_up";

/// Registers the help texts of the replica metrics (with the process's recorder).
pub fn describe_metrics() {
    metrics::describe_counter!(READS, "Timeline, profile and follow reads, by target");
    metrics::describe_counter!(
        FALLBACKS,
        "Such reads sent to the primary although replicas are configured, by reason"
    );
    metrics::describe_gauge!(LAG_SECONDS, metrics::Unit::Seconds, "Replica lag behind primary");
    metrics::describe_gauge!(UP, "Whether the replica answered its last check");
}

/// Why a read went to the primary although replicas are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fallback {
    /// Every replica is down.
    Down,
    /// The replicas that are up lag past the bound.
    Lagging,
    /// The replicas that are up are on an older timeline than the primary's or the
    /// reader's (a failover they have not followed yet).
    OldTimeline,
    /// No replica has replayed the reader's own latest write yet.
    BehindReader,
    /// The replica chosen failed the read; the primary answered instead.
    Failed,
}

impl Fallback {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Lagging => "lagging",
            Self::OldTimeline => "old_timeline",
            Self::BehindReader => "behind_reader",
            Self::Failed => "failed",
        }
    }
}

/// One read replica and what its last check found.
pub(crate) struct Replica {
    /// The replica's store (connections open on first use).
    pub store: PgStore,
    /// The metric label: the replica's position on the command line.
    label: String,
    up: AtomicBool,
    /// The replayed position and its timeline, packed (`WalPosition::pack`): the max
    /// of what the checks saw, which orders by timeline first.
    replayed: AtomicU64,
    /// The lag at the last check, in milliseconds.
    lag_ms: AtomicU64,
}

impl Replica {
    /// Asks the replica how far it has replayed, on which timeline, and remembers it.
    /// `None` when it answers but is no standby (promoted, or a primary named as a
    /// replica): it serves nothing. The timeline is the one its WAL receiver streams
    /// (readable with `pg_read_all_stats`), else that of its last restartpoint, which
    /// may understate it for a while after a failover (the replica then serves nothing
    /// until its next restartpoint; never something it lacks).
    async fn replayed_now(&self) -> StoreResult<Option<WalPosition>> {
        let (lsn, timeline): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::BIGINT, \
             GREATEST((SELECT timeline_id FROM pg_control_checkpoint()), \
                      (SELECT received_tli FROM pg_stat_wal_receiver))::BIGINT",
        )
        .fetch_one(&self.store.pool)
        .await
        .map_err(backend_error)?;
        let Some(lsn) = lsn else { return Ok(None) };
        let position = WalPosition::from_db(timeline.unwrap_or(0), lsn);
        self.replayed.fetch_max(position.pack(), Ordering::AcqRel);
        Ok(Some(position))
    }

    /// Whether the replica has everything `needed` by now, asking it (one round trip).
    pub(crate) async fn has_replayed(&self, needed: WalPosition) -> bool {
        matches!(self.replayed_now().await, Ok(Some(at)) if at.covers(needed))
    }

    /// Its replayed position as last seen.
    fn position(&self) -> WalPosition {
        WalPosition::unpack(self.replayed.load(Ordering::Acquire))
    }

    /// Takes the replica out of service after a failed read; the next check decides
    /// whether it comes back.
    pub(crate) fn failed(&self, err: &StoreError) {
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(replica = %self.label, error = %err, "read replica failed; reads go elsewhere");
        }
        metrics::gauge!(UP, "replica" => self.label.clone()).set(0.0);
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::AcqRel) != up {
            tracing::info!(replica = %self.label, up, "read replica changed state");
        }
        metrics::gauge!(UP, "replica" => self.label.clone()).set(if up { 1.0 } else { 0.0 });
    }

    fn lag(&self) -> Duration {
        Duration::from_millis(self.lag_ms.load(Ordering::Acquire))
    }
}

/// What [`ReplicaSet::choose`] found for a reader.
pub(crate) enum Choice<'a> {
    /// A replica known to be fresh enough.
    Fresh(&'a Replica),
    /// A healthy replica that was behind the reader at its last check: it may have
    /// caught up since.
    Behind(&'a Replica),
    /// No replica can serve: read from the primary.
    Primary(Fallback),
}

/// The primary, the replicas and the primary's recent WAL positions.
pub(crate) struct ReplicaSet {
    /// Where writes, settings and the reads that must be current go.
    pub primary: PgStore,
    replicas: Vec<Replica>,
    /// (when, primary's WAL position), oldest first.
    samples: Mutex<VecDeque<(Instant, u64)>>,
    /// The highest timeline the primary was seen on (by the checks, and by this process's
    /// writes before they are acknowledged).
    primary_timeline: AtomicU64,
    /// Round-robin start among the replicas.
    next: AtomicUsize,
    options: ReplicaOptions,
}

impl ReplicaSet {
    /// The set over `primary` and `replicas`, all down until the first check; starts the
    /// background checks, which end when the set is dropped.
    pub(crate) fn start(
        primary: PgStore,
        replicas: Vec<PgStore>,
        options: ReplicaOptions,
    ) -> Arc<Self> {
        let set = Arc::new(Self::new(primary, replicas, options));
        tokio::spawn(check_forever(Arc::downgrade(&set)));
        set
    }

    /// The set, every replica down, nothing sampled, no checks running.
    fn new(primary: PgStore, replicas: Vec<PgStore>, options: ReplicaOptions) -> Self {
        let replicas = replicas
            .into_iter()
            .enumerate()
            .map(|(i, store)| Replica {
                store,
                label: i.to_string(),
                up: AtomicBool::new(false),
                replayed: AtomicU64::new(0),
                lag_ms: AtomicU64::new(u64::MAX),
            })
            .collect();
        Self {
            primary,
            replicas,
            samples: Mutex::new(VecDeque::new()),
            primary_timeline: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            options,
        }
    }

    /// Whether any replica is configured.
    pub(crate) fn has_replicas(&self) -> bool {
        !self.replicas.is_empty()
    }

    /// The replicas, for pinging.
    pub(crate) fn replicas(&self) -> impl Iterator<Item = &PgStore> {
        self.replicas.iter().map(|r| &r.store)
    }

    /// Records that the primary is on `timeline`: replicas on older ones serve nothing.
    pub(crate) fn learn_timeline(&self, timeline: u64) {
        self.primary_timeline.fetch_max(timeline, Ordering::AcqRel);
    }

    /// What a replica must have for a reader whose token is `position`: the reader's
    /// write, on the primary's timeline at least.
    pub(crate) fn needed(&self, position: u64) -> WalPosition {
        let mut needed = WalPosition::unpack(position);
        needed.timeline = needed.timeline.max(self.primary_timeline.load(Ordering::Acquire));
        needed
    }

    /// A replica for a reader that must see `position` (a packed token), round-robin
    /// among the fresh ones; else the best candidate or the reason to use the primary.
    pub(crate) fn choose(&self, position: u64) -> Choice<'_> {
        let count = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let needed = self.needed(position);
        let mut behind = None;
        let mut reason = Fallback::Down;
        for i in 0..count {
            let replica = &self.replicas[(start + i) % count];
            if !replica.up.load(Ordering::Acquire) {
                continue;
            }
            let at = replica.position();
            if at.timeline < needed.timeline {
                reason = reason.max(Fallback::OldTimeline);
            } else if replica.lag() > self.options.max_lag {
                reason = reason.max(Fallback::Lagging);
            } else if at.lsn >= needed.lsn {
                return Choice::Fresh(replica);
            } else {
                behind.get_or_insert(replica);
            }
        }
        match behind {
            Some(replica) => Choice::Behind(replica),
            None => Choice::Primary(reason),
        }
    }

    /// Records a sample of the primary's WAL position and forgets samples too old to
    /// matter (older than twice the lag bound), keeping the newest.
    async fn sample_primary(&self) {
        let Ok(position) = primary_position(&self.primary, Position::Write).await else { return };
        self.learn_timeline(position.timeline);
        let position = position.lsn;
        let now = Instant::now();
        let keep = self.options.max_lag * 2 + self.options.check_interval;
        let mut samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.push_back((now, position));
        while samples.len() > 1 && samples.front().is_some_and(|(at, _)| now - *at > keep) {
            samples.pop_front();
        }
    }

    /// How long ago the primary first stood beyond `replayed`: zero if never.
    fn lag_behind(&self, replayed: u64, now: Instant) -> Duration {
        let samples = self.samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        samples
            .iter()
            .find(|(_, position)| *position > replayed)
            .map_or(Duration::ZERO, |(at, _)| now - *at)
    }

    /// Checks one replica: up or down, replayed position, lag.
    async fn check(&self, replica: &Replica) {
        let probe = tokio::time::timeout(self.probe_timeout(), replica.replayed_now()).await;
        let Ok(Ok(Some(replayed))) = probe else {
            replica.set_up(false);
            return;
        };
        let lag = self.lag_behind(replayed.lsn, Instant::now());
        replica.lag_ms.store(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX), Ordering::Release);
        metrics::gauge!(LAG_SECONDS, "replica" => replica.label.clone()).set(lag.as_secs_f64());
        replica.set_up(true);
    }

    /// A check may take at most this long before the replica counts as down.
    fn probe_timeout(&self) -> Duration {
        self.options.check_interval.max(Duration::from_secs(1))
    }
}

/// Makes every counter series exist from the start (at zero), so that rates and
/// dashboards show 0 rather than nothing; repeated because the process's metrics recorder
/// may be installed after the store is opened.
fn report_every_series() {
    for target in ["primary", "replica"] {
        metrics::counter!(READS, "target" => target).increment(0);
    }
    for reason in [
        Fallback::Down,
        Fallback::Lagging,
        Fallback::OldTimeline,
        Fallback::BehindReader,
        Fallback::Failed,
    ] {
        metrics::counter!(FALLBACKS, "reason" => reason.label()).increment(0);
    }
}

/// Samples the primary and checks every replica each interval, until the set is gone.
async fn check_forever(set: Weak<ReplicaSet>) {
    loop {
        let Some(strong) = set.upgrade() else { return };
        report_every_series();
        let sampling = tokio::time::timeout(strong.probe_timeout(), strong.sample_primary());
        // A primary that does not answer in time leaves the samples as they were.
        let _ = sampling.await;
        futures::future::join_all(strong.replicas.iter().map(|r| strong.check(r))).await;
        let interval = strong.options.check_interval;
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::PgOptions;

    /// A store that never connects (nothing listens there); enough for routing decisions.
    fn nowhere() -> PgStore {
        let url = "postgres://nobody@localhost/none?host=/nonexistent";
        PgStore::connect_lazy(url, &PgOptions::default()).expect("a well-formed URL")
    }

    fn set_of(count: usize) -> ReplicaSet {
        let options =
            ReplicaOptions { max_lag: Duration::from_secs(5), ..ReplicaOptions::default() };
        ReplicaSet::new(nowhere(), (0..count).map(|_| nowhere()).collect(), options)
    }

    /// A token (or replica position) at `lsn` on timeline 1.
    fn on_first(lsn: u64) -> u64 {
        WalPosition { timeline: 1, lsn }.pack()
    }

    fn seen(replica: &Replica, up: bool, replayed: u64, lag: Duration) {
        replica.up.store(up, Ordering::Release);
        replica.replayed.store(on_first(replayed), Ordering::Release);
        replica.lag_ms.store(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn fresh(choice: Choice<'_>) -> Option<&str> {
        match choice {
            Choice::Fresh(replica) => Some(&replica.label),
            _ => None,
        }
    }

    #[tokio::test]
    async fn replicas_serve_only_when_up_within_the_bound_and_past_the_reader() {
        let set = set_of(2);
        assert!(matches!(set.choose(0), Choice::Primary(Fallback::Down)));
        seen(&set.replicas[0], true, 100, Duration::from_secs(6));
        assert!(matches!(set.choose(0), Choice::Primary(Fallback::Lagging)));
        seen(&set.replicas[1], true, 100, Duration::from_secs(1));
        assert_eq!(fresh(set.choose(on_first(100))), Some("1"));
        assert!(matches!(set.choose(on_first(101)), Choice::Behind(r) if r.label == "1"));
        seen(&set.replicas[0], true, 200, Duration::ZERO);
        let picked: Vec<_> = (0..4).filter_map(|_| fresh(set.choose(on_first(50)))).collect();
        assert!(picked.contains(&"0") && picked.contains(&"1"), "round robin: {picked:?}");
        assert_eq!(fresh(set.choose(on_first(150))), Some("0"));
    }

    #[tokio::test]
    async fn a_replica_on_an_older_timeline_serves_no_reader_after_a_failover() {
        let set = set_of(1);
        set.learn_timeline(1);
        // The replica received more of the old primary's WAL than the standby that was
        // promoted: it stands at 900 on timeline 1.
        seen(&set.replicas[0], true, 900, Duration::ZERO);
        assert_eq!(fresh(set.choose(on_first(800))), Some("0"));
        // A write on the new primary, timeline 2, at 500: the replica is "past" it by
        // LSN, but does not have it.
        let on_second = WalPosition { timeline: 2, lsn: 500 }.pack();
        assert!(matches!(set.choose(on_second), Choice::Primary(Fallback::OldTimeline)));
        // Once the process knows the primary moved on, it serves no one from there,
        // whatever their token.
        set.learn_timeline(2);
        assert!(matches!(set.choose(on_first(100)), Choice::Primary(Fallback::OldTimeline)));
        assert!(matches!(set.choose(0), Choice::Primary(Fallback::OldTimeline)));
        // Once it follows timeline 2 and has replayed the write, it serves again.
        let followed = WalPosition { timeline: 2, lsn: 950 }.pack();
        set.replicas[0].replayed.fetch_max(followed, Ordering::AcqRel);
        assert_eq!(fresh(set.choose(on_second)), Some("0"));
    }

    #[tokio::test]
    async fn lag_is_the_age_of_the_oldest_primary_position_not_yet_replayed() {
        let set = set_of(1);
        let now = Instant::now();
        {
            let mut samples = set.samples.lock().expect("not poisoned");
            samples.push_back((now - Duration::from_secs(3), 100));
            samples.push_back((now - Duration::from_secs(2), 200));
            samples.push_back((now - Duration::from_secs(1), 300));
        }
        assert_eq!(set.lag_behind(300, now), Duration::ZERO);
        assert_eq!(set.lag_behind(250, now), Duration::from_secs(1));
        assert_eq!(set.lag_behind(100, now), Duration::from_secs(2));
        assert_eq!(set.lag_behind(0, now), Duration::from_secs(3));
    }
}
