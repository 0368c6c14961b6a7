//! Store benchmarks: register, post, follow, and the first page (30) of the public, user
//! and home timelines (also of users following 50 and 500 people), on data sets of 10k
//! and 1M messages (shapes in `minitwit_core::synthetic`), for every backend in [`backends`]
//! (sled, and PostgreSQL on a durable throwaway server the benchmark starts) and each
//! durability mode it offers, with the API's reads at its page size (100), a user by name
//! and a follow listing; on PostgreSQL also 64 identical reads at once (`latest`,
//! 100-entry pages of the public and a user's timeline), as a load generator hammering
//! one URL makes them; then sled with 8 and 64 concurrent posting writers, durable and
//! relaxed; then group commit: concurrent durable posts with shared flushes against one
//! flush per write.
//!
//! ```text
//! cargo bench --bench store                    # everything (loads 1M messages once)
//! MINITWIT_BENCH_SKIP_1M=1 cargo bench --bench store
//! cargo bench --bench store -- 'sled/durable'  # criterion's name filter
//! cargo bench --bench store -- postgres        # PostgreSQL only
//! MINITWIT_BENCH_BACKENDS=sled MINITWIT_BENCH_SKIP_1M=1 cargo bench --bench store -- sled
//! ```
//!
//! Registration goes through the service with `HashCost::Insecure`, so it measures the
//! store and not Argon2. Writes accumulate in the data set while they are measured.

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use minitwit_core::model::NewMessage;
use minitwit_core::synthetic::{self, Shape};
use minitwit_core::{
    HashCost, MessageText, MiniTwit, PageSize, Registration, Store, Timeline, User, UserId,
};
use minitwit_store_pg::{PgOptions, PgStore};
use minitwit_store_sled::{Durability, SledOptions, SledStore};
use minitwit_test_support::TestCluster;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use tokio::runtime::Runtime;

mod common;

/// A backend loaded with one data set, opened once per durability mode it offers.
trait Loaded {
    /// The modes to measure, such as `["durable", "relaxed"]`.
    fn modes(&self) -> &'static [&'static str];
    /// Opens the loaded data in `mode` (the store of the previous mode is dropped first).
    fn open(&self, runtime: &Runtime, mode: &str) -> Arc<dyn Store>;
}

/// A backend to measure: its name and how to load a data set into it.
struct Backend {
    name: &'static str,
    load: fn(&Runtime, &Shape) -> Box<dyn Loaded>,
}

/// Every backend measured. To add one, add an entry. `MINITWIT_BENCH_BACKENDS=sled`
/// (a comma-separated list) loads and measures only those.
fn backends() -> Vec<Backend> {
    let all = vec![
        Backend { name: "sled", load: load_sled },
        Backend { name: "postgres", load: load_pg },
    ];
    common::chosen(all, |backend| backend.name)
}

/// A sled data set in a temporary directory.
struct SledData {
    dir: tempfile::TempDir,
}

fn sled_options(mode: &str) -> SledOptions {
    let durability = if mode == "relaxed" { Durability::Relaxed } else { Durability::Durable };
    SledOptions { durability, ..SledOptions::default() }
}

/// Loads `shape` into a new sled store (relaxed, then one flush) and closes it.
fn load_sled(runtime: &Runtime, shape: &Shape) -> Box<dyn Loaded> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SledStore::open(dir.path(), sled_options("relaxed")).expect("opening sled");
    let started = std::time::Instant::now();
    runtime.block_on(async {
        synthetic::load(&store, shape).await.expect("loading the data set");
        store.flush().await.expect("flushing the data set");
    });
    eprintln!("sled: loaded {} messages in {:.1?}", shape.label(), started.elapsed());
    Box::new(SledData { dir })
}

impl Loaded for SledData {
    fn modes(&self) -> &'static [&'static str] {
        &["durable", "relaxed"]
    }

    fn open(&self, _runtime: &Runtime, mode: &str) -> Arc<dyn Store> {
        Arc::new(SledStore::open(self.dir.path(), sled_options(mode)).expect("reopening sled"))
    }
}

/// A PostgreSQL data set on a throwaway server of its own, durable (`fsync` on) as in
/// production, started like the tests' servers.
struct PgData {
    cluster: TestCluster,
}

/// Connects a store with default options to the benchmark's server.
fn connect_pg(runtime: &Runtime, cluster: &TestCluster) -> PgStore {
    let url = cluster.url("postgres");
    runtime
        .block_on(PgStore::connect(&url, PgOptions::default()))
        .expect("connecting to PostgreSQL")
}

/// Loads `shape` into a new PostgreSQL server, then refreshes the planner's statistics
/// as autovacuum would shortly after.
fn load_pg(runtime: &Runtime, shape: &Shape) -> Box<dyn Loaded> {
    let cluster = TestCluster::start_durable().unwrap_or_else(|e| panic!("{e}"));
    let store = connect_pg(runtime, &cluster);
    let started = std::time::Instant::now();
    runtime.block_on(async {
        synthetic::load(&store, shape).await.expect("loading the data set");
        store.vacuum_analyze().await.expect("analyzing the data set");
    });
    eprintln!("postgres: loaded {} messages in {:.1?}", shape.label(), started.elapsed());
    Box::new(PgData { cluster })
}

impl Loaded for PgData {
    fn modes(&self) -> &'static [&'static str] {
        &["durable"]
    }

    fn open(&self, runtime: &Runtime, _mode: &str) -> Arc<dyn Store> {
        Arc::new(connect_pg(runtime, &self.cluster))
    }
}

/// Makes every registered name unique across modes and data sets.
static NEXT_NAME: AtomicI64 = AtomicI64::new(0);

/// The six operations on one store: the three timelines' first pages, then the writes.
fn bench_operations(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    store: Arc<dyn Store>,
    shape: &Shape,
) {
    let twit = MiniTwit::with_hash_cost(store, HashCost::Insecure);
    let users: Vec<User> = (1..=shape.users).map(|id| shape.user(UserId(id))).collect();
    let reader = users[0].id;
    group.throughput(Throughput::Elements(1));
    // Reads first, on the data set as generated; the writes below add to it.
    let wide = shape.wide_followers().map(|(follower, follows)| {
        (format!("home_timeline_follows_{follows}"), Timeline::Home(follower))
    });
    let reads = [
        ("public_timeline".to_owned(), Timeline::Public),
        ("user_timeline".to_owned(), Timeline::User(reader)),
        ("home_timeline".to_owned(), Timeline::Home(reader)),
    ];
    for (name, timeline) in reads.into_iter().chain(wide) {
        let name = name.as_str();
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| async {
                let page =
                    twit.timeline(timeline, None, PageSize::PER_PAGE).await.expect("reading");
                assert_eq!(page.entries.len(), 30, "{name} has a full first page");
                page
            });
        });
    }
    bench_api_reads(group, runtime, &**twit.store(), shape, reader);
    bench_writes(group, runtime, &twit, &users);
}

/// The API's hot reads at the simulator's page size (100): the three timelines, a user
/// by name, and a follow listing.
fn bench_api_reads(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    store: &dyn Store,
    shape: &Shape,
    reader: UserId,
) {
    let reads = [
        ("public_timeline_100", Timeline::Public),
        ("user_timeline_100", Timeline::User(reader)),
        ("home_timeline_100", Timeline::Home(reader)),
    ];
    for (name, timeline) in reads {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| async {
                let page = store.timeline(timeline, None, 100).await.expect("reading");
                assert_eq!(page.len(), 100, "{name} has a full page");
                page
            });
        });
    }
    let name = shape.user(UserId(shape.users / 2)).username;
    group.bench_function("user_by_name", |b| {
        b.to_async(runtime).iter(|| async {
            store.user_by_name(&name).await.expect("reading").expect("the user exists")
        });
    });
    group.bench_function("followees_100", |b| {
        b.to_async(runtime).iter(|| async {
            let names = store.followees(reader, 100).await.expect("reading");
            assert!(!names.is_empty(), "user 1 follows someone");
            names
        });
    });
}

/// Register, post and follow on one store. The posts are by user 2 and the follows never
/// by user 1, so user 1's timelines keep their shape for the next mode's reads.
fn bench_writes(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    twit: &MiniTwit,
    users: &[User],
) {
    let count = users.len();
    let next = AtomicUsize::new(0);
    group.bench_function("register", |b| {
        b.to_async(runtime).iter(|| async {
            let name = format!("bench{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed));
            let registration = Registration::parse(&name, "bench@example.com", "secret", None)
                .expect("a valid registration");
            twit.register(registration).await.expect("registering")
        });
    });
    group.bench_function("post", |b| {
        b.to_async(runtime).iter(|| async {
            let text = MessageText::parse("A benchmark post of a typical length, no more.")
                .expect("a valid text");
            twit.post(&users[1], text).await.expect("posting")
        });
    });
    group.bench_function("follow", |b| {
        b.to_async(runtime).iter(|| async {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let follower = users[1 + n % (count - 1)].id;
            let followee = users[(n * 7919 + n / count) % count].id;
            twit.follow(follower, followee).await.expect("following")
        });
    });
}

/// Concurrent writers in the group-commit comparison.
const WRITERS: usize = 16;
/// Posts per writer per iteration.
const POSTS_PER_WRITER: usize = 4;

/// How the concurrent posts are made durable.
#[derive(Clone, Copy)]
enum Commit {
    /// Durable store: writers share flushes.
    Shared,
    /// Relaxed store, each write followed by its own flush, one write at a time: what a
    /// store without group commit does.
    OneFlushPerWrite,
    /// Relaxed store, no flush waited for (for reference; not durable).
    Relaxed,
}

/// A fresh sled store in `mode` holding the small data set, and its user 1 (the
/// directory lives as long as the first value).
fn small_sled_store(runtime: &Runtime, mode: &str) -> (tempfile::TempDir, Arc<dyn Store>, User) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(dir.path(), sled_options(mode)).expect("opening sled"));
    let author = runtime.block_on(async {
        synthetic::load(&*store, &Shape::SMALL).await.expect("loading");
        store.user_by_id(UserId(1)).await.expect("reading").expect("user 1 exists")
    });
    (dir, store, author)
}

/// 16 writers posting 4 messages each, with and without shared flushes.
fn bench_group_commit(c: &mut Criterion, runtime: &Runtime) {
    let mut group = c.benchmark_group("group_commit");
    group.throughput(Throughput::Elements((WRITERS * POSTS_PER_WRITER) as u64));
    for (name, commit, mode) in [
        ("shared_flushes", Commit::Shared, "durable"),
        ("one_flush_per_write", Commit::OneFlushPerWrite, "relaxed"),
        ("relaxed_no_flush", Commit::Relaxed, "relaxed"),
    ] {
        let (_dir, store, author) = small_sled_store(runtime, mode);
        let serial = Arc::new(tokio::sync::Mutex::new(()));
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|_| {
                        tokio::spawn(write_posts(
                            Arc::clone(&store),
                            author.id,
                            commit,
                            Arc::clone(&serial),
                        ))
                    })
                    .collect();
                async move {
                    for task in tasks {
                        task.await.expect("a writer");
                    }
                }
            });
        });
    }
    group.finish();
}

/// One writer's posts in the group-commit comparison.
async fn write_posts(
    store: Arc<dyn Store>,
    author_id: UserId,
    commit: Commit,
    serial: Arc<tokio::sync::Mutex<()>>,
) {
    for _ in 0..POSTS_PER_WRITER {
        let text = MessageText::parse("A concurrent post.").expect("a valid text");
        let message = NewMessage { author_id, text, pub_date: synthetic::FIRST_PUB_DATE };
        let _one_at_a_time = match commit {
            Commit::OneFlushPerWrite => Some(serial.lock().await),
            Commit::Shared | Commit::Relaxed => None,
        };
        store.add_message(message).await.expect("posting");
        if let Commit::OneFlushPerWrite = commit {
            store.flush().await.expect("flushing");
        }
    }
}

/// sled: `writers` concurrent writers posting 4 messages each, durable and relaxed.
fn bench_sled_concurrent_posts(c: &mut Criterion, runtime: &Runtime) {
    for mode in ["durable", "relaxed"] {
        let mut group = c.benchmark_group(format!("sled_concurrent_posts/{mode}"));
        let (_dir, store, author) = small_sled_store(runtime, mode);
        let serial = Arc::new(tokio::sync::Mutex::new(()));
        for writers in [8, 64] {
            group.throughput(Throughput::Elements((writers * POSTS_PER_WRITER) as u64));
            group.bench_function(format!("writers_{writers}"), |b| {
                b.to_async(runtime).iter(|| {
                    let tasks: Vec<_> = (0..writers)
                        .map(|_| {
                            let store = Arc::clone(&store);
                            let serial = Arc::clone(&serial);
                            tokio::spawn(write_posts(store, author.id, Commit::Relaxed, serial))
                        })
                        .collect();
                    async move {
                        for task in tasks {
                            task.await.expect("a writer");
                        }
                    }
                });
            });
        }
        group.finish();
    }
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    let mut shapes = vec![Shape::SMALL];
    if std::env::var_os("MINITWIT_BENCH_SKIP_1M").is_none() {
        shapes.push(Shape::LARGE);
    }
    for shape in shapes {
        for backend in backends() {
            let loaded = (backend.load)(&runtime, &shape);
            for mode in loaded.modes() {
                let store = loaded.open(&runtime, mode);
                let name = format!("{}/{mode}/{}", backend.name, shape.label());
                let mut group = criterion.benchmark_group(name);
                bench_operations(&mut group, &runtime, Arc::clone(&store), &shape);
                group.finish();
                if backend.name == "postgres" {
                    bench_concurrent_reads(&mut criterion, &runtime, store, &shape);
                }
            }
        }
    }
    bench_sled_concurrent_posts(&mut criterion, &runtime);
    bench_group_commit(&mut criterion, &runtime);
    criterion.final_summary();
}

/// Readers at once in the concurrent-read cases, as a load generator's connections.
const READERS: usize = 64;

/// PostgreSQL only: `READERS` identical reads at once (`latest`, the first pages of the
/// public timeline and of one user's found by name, 100 entries as `/msgs?no=100` and
/// `/msgs/{user}?no=100` ask), the load of a benchmark hammering one URL; measured per read.
fn bench_concurrent_reads(
    c: &mut Criterion,
    runtime: &Runtime,
    store: Arc<dyn Store>,
    shape: &Shape,
) {
    let label = shape.label();
    let username = shape.user(UserId(1)).username;
    let mut group = c.benchmark_group(format!("postgres/concurrent/{label}"));
    group.throughput(Throughput::Elements(READERS as u64));
    let twit = MiniTwit::with_hash_cost(store, HashCost::Insecure);
    let page = PageSize::DEFAULT;
    let reads: [(&str, Option<Timeline>); 3] = [
        ("latest", None),
        ("public_timeline_100", Some(Timeline::Public)),
        ("user_timeline_by_name_100", Some(Timeline::User(UserId(1)))),
    ];
    for (name, timeline) in reads {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| {
                let tasks: Vec<_> = (0..READERS)
                    .map(|_| {
                        let (twit, username) = (twit.clone(), username.clone());
                        tokio::spawn(async move {
                            match timeline {
                                Some(Timeline::User(_)) => {
                                    let user = twit.user(&username).await.expect("reading");
                                    let read = twit.timeline(Timeline::User(user.id), None, page);
                                    read.await.expect("reading").entries.len()
                                }
                                Some(timeline) => {
                                    let read = twit.timeline(timeline, None, page).await;
                                    read.expect("reading").entries.len()
                                }
                                None => {
                                    let latest = twit.latest().await.expect("reading");
                                    usize::try_from(latest.max(0)).unwrap_or(0)
                                }
                            }
                        })
                    })
                    .collect();
                async move {
                    for task in tasks {
                        task.await.expect("a reader");
                    }
                }
            });
        });
    }
    group.finish();
}
