//! Home timeline benchmarks, on sled (home timelines kept on write in memory: the `home`
//! module of `minitwit-store-sled`) and PostgreSQL (kept on write by the database: the
//! migration `home_timelines`): the cost of a post against its author's follower count,
//! every follower's timeline kept (the curve that chose F, the fan-out limit); the first
//! page (30) of a home timeline against the accounts its reader follows, quiet ones and
//! loud ones (more than F followers, merged on read).
//!
//! With `MINITWIT_BENCH_SOCIAL=1`, also the social data set (`Shape::SOCIAL`: 100k
//! users following 30 each by popularity, 1M messages, loaded in minutes) on each
//! backend: the home pages of its wide followers, who follow 10 and 1,000 accounts,
//! among them user 1, followed by some 86k (loud).
//!
//! ```text
//! cargo bench --bench home
//! cargo bench --bench home -- post_by_followers   # criterion's name filter
//! MINITWIT_BENCH_BACKENDS=sled cargo bench --bench home
//! MINITWIT_BENCH_SOCIAL=1 cargo bench --bench home -- social
//! ```
//!
//! sled stores are relaxed and the PostgreSQL server runs without `fsync`, so a post
//! measures the work of the post and not the flush every durable write waits for alike
//! (BENCHMARKS.md has that flush's cost).

use criterion::{BenchmarkId, Criterion};
use minitwit_core::model::NewMessage;
use minitwit_core::synthetic::{self, Shape};
use minitwit_core::testkit::records::registered;
use minitwit_core::{MessageText, Store, Timeline, UserId};
use minitwit_store_pg::{PgOptions, PgStore};
use minitwit_store_sled::{Durability, SledOptions, SledStore};
use minitwit_test_support::TestCluster;
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::Runtime;

mod common;

/// Follower counts of the post curve.
const FOLLOWERS: [usize; 5] = [1, 100, 1_000, 10_000, 50_000];
/// Followee counts of the home page, all quiet.
const FOLLOWEES: [usize; 2] = [10, 1_000];
/// Loud followees of the home page (beside 50 quiet ones).
const LOUD: [usize; 4] = [0, 1, 4, 16];
/// Posts by each followee before a home page is read.
const POSTS_EACH: i64 = 5;

/// A fresh relaxed sled store with `fanout_limit`, in a directory that lives as long as
/// the first value.
fn sled(fanout_limit: usize) -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options =
        SledOptions { durability: Durability::Relaxed, fanout_limit, ..Default::default() };
    let store = SledStore::open(dir.path(), options).expect("opening sled");
    (dir, Arc::new(store))
}

/// Where the home page cases run: a fresh store per case.
enum Backend {
    /// sled.
    Sled,
    /// A database per case on one PostgreSQL server.
    Postgres(TestCluster),
}

impl Backend {
    /// The backends `MINITWIT_BENCH_BACKENDS` chooses (all by default).
    fn chosen() -> Vec<Self> {
        common::chosen(vec!["sled", "postgres"], |name| name)
            .into_iter()
            .map(|name| match name {
                "sled" => Self::Sled,
                _ => Self::Postgres(TestCluster::start().unwrap_or_else(|e| panic!("{e}"))),
            })
            .collect()
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Postgres(_) => "postgres",
        }
    }

    /// This backend's default F.
    fn default_fanout_limit(&self) -> usize {
        match self {
            Self::Sled => SledOptions::default().fanout_limit,
            Self::Postgres(_) => {
                usize::try_from(PgOptions::default().fanout_limit).unwrap_or(usize::MAX)
            }
        }
    }

    /// A fresh store for the case `case` with F `fanout_limit`, and what must live as
    /// long as it.
    fn open(
        &self,
        runtime: &Runtime,
        case: &str,
        fanout_limit: usize,
    ) -> (Option<tempfile::TempDir>, Arc<dyn Store>) {
        match self {
            Self::Sled => {
                let (dir, store) = sled(fanout_limit);
                (Some(dir), store)
            }
            Self::Postgres(cluster) => {
                let url = cluster.create_database(case).unwrap_or_else(|e| panic!("{e}"));
                let fanout_limit = u32::try_from(fanout_limit).unwrap_or(u32::MAX);
                let options = PgOptions { fanout_limit, ..PgOptions::default() };
                let store = runtime.block_on(PgStore::connect(&url, options));
                (None, Arc::new(store.expect("connecting to PostgreSQL")))
            }
        }
    }
}

/// Registers `count` users named `{prefix}{i}`.
async fn users(store: &dyn Store, prefix: &str, count: usize) -> Vec<UserId> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        ids.push(registered(store, &format!("{prefix}{i}")).await.id);
    }
    ids
}

/// A post by `author` at `pub_date`.
async fn post(store: &dyn Store, author: UserId, pub_date: i64) {
    let text =
        MessageText::parse("A benchmark post of a typical length, no more.").expect("a text");
    store.add_message(NewMessage { author_id: author, text, pub_date }).await.expect("posting");
}

/// The first page of `reader`'s home timeline, which keeps it if it was not kept.
async fn home(store: &dyn Store, reader: UserId) -> usize {
    store.timeline(Timeline::Home(reader), None, 30).await.expect("reading").len()
}

/// A post by an author with n followers, each of whom has read their home page (so each
/// keeps a timeline the post goes into): fanned out whatever n, then with the default F.
fn bench_post_by_followers(c: &mut Criterion, runtime: &Runtime, backend: &Backend) {
    let mut group = c.benchmark_group(format!("post_by_followers/{}", backend.name()));
    for followers in FOLLOWERS {
        for (rule, limit) in
            [("fanned_out", usize::MAX), ("default_limit", backend.default_fanout_limit())]
        {
            let case = format!("post_{rule}_{followers}");
            let (_dir, store) = backend.open(runtime, &case, limit);
            let author = runtime.block_on(async {
                let author = users(&*store, "author", 1).await[0];
                for reader in users(&*store, "reader", followers).await {
                    store.follow(reader, author).await.expect("following");
                    home(&*store, reader).await;
                }
                author
            });
            let mut date = 0;
            group.bench_function(BenchmarkId::new(rule, followers), |b| {
                b.to_async(runtime).iter(|| {
                    date += 1;
                    post(&*store, author, date)
                });
            });
        }
    }
    group.finish();
}

/// The first home page of a reader following `quiet` authors with one follower and
/// `loud` authors with three (more than F, here 2), each with a few posts; every
/// follower has read their home page before the posts, so each keeps a timeline.
fn bench_home_by_followees(c: &mut Criterion, runtime: &Runtime, backend: &Backend) {
    let mut group = c.benchmark_group(format!("home_by_followees/{}", backend.name()));
    let cases = FOLLOWEES.map(|n| (n, 0)).into_iter().chain(LOUD.iter().map(|&n| (50, n)));
    for (quiet, loud) in cases {
        let (_dir, store) = backend.open(runtime, &format!("home_{quiet}_{loud}"), 2);
        let store = &*store;
        let reader = runtime.block_on(async {
            let reader = users(store, "reader", 1).await[0];
            let fans = users(store, "fan", 3).await;
            let quiet_ones = users(store, "quiet", quiet).await;
            let loud_ones = users(store, "loud", loud).await;
            for &author in quiet_ones.iter().chain(&loud_ones) {
                store.follow(reader, author).await.expect("following");
            }
            for (&author, fan) in loud_ones.iter().zip(fans.iter().cycle()) {
                for &fan in fans.iter().filter(|&f| f != fan) {
                    store.follow(fan, author).await.expect("following");
                }
            }
            // Followers who read their home page: PostgreSQL counts only those toward F.
            for &follower in fans.iter().chain([&reader]) {
                home(store, follower).await;
            }
            for date in 0..POSTS_EACH {
                for &author in quiet_ones.iter().chain(&loud_ones) {
                    post(store, author, date).await;
                }
            }
            reader
        });
        let name = BenchmarkId::new(format!("loud_{loud}"), format!("quiet_{quiet}"));
        group.bench_function(name, |b| b.to_async(runtime).iter(|| home(store, reader)));
    }
    group.finish();
}

/// The home pages of the social data set's wide followers (10 and 1,000 followees); the
/// first read of each (on sled, the one that builds the kept timeline) is printed.
fn bench_social(c: &mut Criterion, runtime: &Runtime, backend: &Backend) {
    let (_dir, store) = backend.open(runtime, "social", backend.default_fanout_limit());
    let started = Instant::now();
    runtime.block_on(synthetic::load(&*store, &Shape::SOCIAL)).expect("loading the data set");
    if let Backend::Postgres(cluster) = backend {
        // The planner's statistics, as autovacuum would refresh them shortly after.
        let url = cluster.url("social");
        let connect = PgStore::connect(&url, PgOptions::default());
        let analyzer = runtime.block_on(connect).expect("connecting to PostgreSQL");
        runtime.block_on(analyzer.vacuum_analyze()).expect("analyzing the data set");
    }
    eprintln!("{}: loaded the social data set in {:.1?}", backend.name(), started.elapsed());
    let mut group = c.benchmark_group(format!("social/{}", backend.name()));
    for (reader, followees) in Shape::SOCIAL.wide_followers() {
        let started = Instant::now();
        runtime.block_on(home(&*store, reader));
        eprintln!(
            "{}: first home page, {followees} followees: {:.1?}",
            backend.name(),
            started.elapsed()
        );
        let name = BenchmarkId::new("home_followees", followees);
        group.bench_function(name, |b| b.to_async(runtime).iter(|| home(&*store, reader)));
    }
    group.finish();
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    for backend in &Backend::chosen() {
        bench_post_by_followers(&mut criterion, &runtime, backend);
        bench_home_by_followees(&mut criterion, &runtime, backend);
        if std::env::var_os("MINITWIT_BENCH_SOCIAL").is_some() {
            bench_social(&mut criterion, &runtime, backend);
        }
    }
    criterion.final_summary();
}
