//! Home timelines kept on write: what a post costs against its author's follower count,
//! and what a home page costs against the number of accounts its reader follows, on sled
//! (durable) and PostgreSQL (a durable throwaway server).
//!
//! - `post/F` — a post by an author with F followers (1, 100, 1k, 10k, 50k), every one
//!   fanned out (`fan_out_limit` above them all); `post_wide/50000` with the default
//!   limit, so that author is wide and merged on read instead;
//! - `home/K` — the first page (30) of the home timeline of a reader following K
//!   authors (10, 100, 1000) who posted 20 messages each; `home_of_wide_follower` — that
//!   of a follower of the 50k-follower author, wide, merged at read time.
//!
//! ```text
//! cargo bench --bench home
//! MINITWIT_BENCH_BACKENDS=sled cargo bench --bench home -- post
//! ```

use criterion::{BenchmarkGroup, measurement::WallTime};
use minitwit_core::Timeline;
use minitwit_core::testkit::numbered_user as user;
use minitwit_core::{Follow, HomeIndex, ImportBatch, Message, MessageText, NewMessage, Store};
use minitwit_store_pg::{PgOptions, PgStore};
use minitwit_store_sled::{SledOptions, SledStore};
use minitwit_test_support::TestCluster;
use std::sync::Arc;
use tokio::runtime::Runtime;

mod common;

/// Follower counts of the post curve.
const FOLLOWERS: [i64; 5] = [1, 100, 1_000, 10_000, 50_000];
/// Followee counts of the home page curve.
const FOLLOWEES: [i64; 3] = [10, 100, 1_000];
/// Messages each followed author posted.
const POSTS_EACH: i64 = 20;

/// A fresh store of one backend, with these home index bounds; kept alive by the guard.
type Open = Box<dyn Fn(&Runtime, HomeIndex) -> (Arc<dyn Store>, Box<dyn std::any::Any>)>;

fn backends() -> Vec<(&'static str, Open)> {
    let sled: Open = Box::new(|_, home| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let options = SledOptions { home, ..SledOptions::default() };
        let store = SledStore::open(dir.path(), options).expect("opening sled");
        (Arc::new(store), Box::new(dir))
    });
    let postgres: Open = Box::new(|runtime, home| {
        let cluster = TestCluster::start_durable().unwrap_or_else(|e| panic!("{e}"));
        let options = PgOptions { home, ..PgOptions::default() };
        let store = runtime
            .block_on(PgStore::connect(&cluster.url("postgres"), options))
            .expect("connecting to PostgreSQL");
        (Arc::new(store), Box::new(cluster))
    });
    let all = vec![("sled", sled), ("postgres", postgres)];
    common::chosen(all, |(name, _)| *name)
}

/// Imports `batch` in chunks and ends the import.
async fn load(store: &dyn Store, batch: ImportBatch) {
    for users in batch.users.chunks(1_000) {
        let users = users.to_vec();
        store.import(ImportBatch { users, ..ImportBatch::default() }).await.expect("importing");
    }
    for follows in batch.follows.chunks(1_000) {
        let follows = follows.to_vec();
        store.import(ImportBatch { follows, ..ImportBatch::default() }).await.expect("importing");
    }
    for messages in batch.messages.chunks(1_000) {
        let messages = messages.to_vec();
        store.import(ImportBatch { messages, ..ImportBatch::default() }).await.expect("importing");
    }
    store.end_import(None).await.expect("ending the import");
}

/// User 1 followed by users 2..=followers+1.
fn followed_by(followers: i64) -> ImportBatch {
    ImportBatch {
        users: (1..=followers + 1).map(user).collect(),
        follows: (2..=followers + 1).map(|follower| Follow { follower, followee: 1 }).collect(),
        messages: Vec::new(),
    }
}

fn bench_posts(group: &mut BenchmarkGroup<'_, WallTime>, runtime: &Runtime, open: &Open) {
    let every = HomeIndex { fan_out_limit: u64::MAX, ..HomeIndex::default() };
    let cases = FOLLOWERS.iter().map(|&f| (format!("post/{f}"), f, every));
    let wide = std::iter::once(("post_wide/50000".to_owned(), 50_000, HomeIndex::default()));
    for (name, followers, home) in cases.chain(wide) {
        let (store, _guard) = open(runtime, home);
        runtime.block_on(load(store.as_ref(), followed_by(followers)));
        group.bench_function(&name, |b| {
            b.to_async(runtime).iter(|| async {
                let text = MessageText::parse("A post to many followers.").expect("a text");
                let new = NewMessage { author_id: 1, text, pub_date: 1_700_000_000 };
                store.add_message(new).await.expect("posting")
            });
        });
    }
}

/// Reader 1 follows authors 2..=followees+1, who posted `POSTS_EACH` messages each.
fn reader_of(followees: i64) -> ImportBatch {
    let authors = 2..=followees + 1;
    let messages = authors
        .clone()
        .flat_map(|author| (0..POSTS_EACH).map(move |n| (author, n)))
        .enumerate()
        .map(|(i, (author_id, n))| Message {
            id: i64::try_from(i).unwrap_or(i64::MAX) + 1,
            author_id,
            text: format!("message {n} of user {author_id}"),
            pub_date: 1_600_000_000 + n * 1_000 + author_id,
            flagged: false,
        })
        .collect();
    ImportBatch {
        users: (1..=followees + 1).map(user).collect(),
        follows: authors.map(|followee| Follow { follower: 1, followee }).collect(),
        messages,
    }
}

fn bench_home_pages(group: &mut BenchmarkGroup<'_, WallTime>, runtime: &Runtime, open: &Open) {
    for followees in FOLLOWEES {
        let (store, _guard) = open(runtime, HomeIndex::default());
        runtime.block_on(load(store.as_ref(), reader_of(followees)));
        bench_first_page(group, runtime, &store, &format!("home/{followees}"));
    }
    // A follower of an author with 50k followers (wide), who posted 20 messages.
    let (store, _guard) = open(runtime, HomeIndex::default());
    let mut batch = followed_by(50_000);
    batch.messages = (1..=POSTS_EACH)
        .map(|id| Message {
            id,
            author_id: 1,
            text: format!("wide message {id}"),
            pub_date: 1_600_000_000 + id,
            flagged: false,
        })
        .collect();
    runtime.block_on(load(store.as_ref(), batch));
    bench_first_page(group, runtime, &store, "home_of_wide_follower");
}

fn bench_first_page(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    store: &Arc<dyn Store>,
    name: &str,
) {
    let reader = if name == "home_of_wide_follower" { 2 } else { 1 };
    group.bench_function(name, |b| {
        b.to_async(runtime).iter(|| async {
            let page = store.timeline(Timeline::Home(reader), None, 30).await.expect("reading");
            assert!(!page.is_empty(), "{name}: the reader follows people who posted");
            page
        });
    });
}

fn main() {
    let runtime = common::runtime();
    let mut criterion = common::criterion();
    for (name, open) in backends() {
        let mut group = criterion.benchmark_group(name);
        bench_posts(&mut group, &runtime, &open);
        bench_home_pages(&mut group, &runtime, &open);
        group.finish();
    }
    criterion.final_summary();
}
