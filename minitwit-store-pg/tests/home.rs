//! The home indexes' bound on PostgreSQL: posts into an index trim it back to the kept
//! length now and then, so it holds about that many entries however much is posted, and
//! the pages read across its floor are still every message, newest first.

use minitwit_core::{
    Cursor, Email, HomeIndex, MessageText, NewMessage, NewUser, Store, Timeline, Username,
};
use minitwit_store_pg::testkit;

async fn register(store: &dyn Store, name: &str) -> i64 {
    let new = NewUser {
        username: Username::parse(name).expect("a valid name"),
        email: Email::parse(&format!("{name}@example.com")).expect("a valid email"),
        pw_hash: "hash".into(),
    };
    store.create_user(new).await.expect("registering").id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_stays_near_its_bound_and_pages_cross_its_floor() {
    let (url, _db) = testkit::fresh_database_url().await;
    let home = HomeIndex { kept: 10, fan_out_limit: 100 };
    let store = testkit::connect_with(&url, home).await;
    let (reader, author) = (register(&store, "reader").await, register(&store, "author").await);
    store.follow(reader, author).await.expect("following");
    for pub_date in 0..500 {
        let text = MessageText::parse(&format!("m{pub_date}")).expect("a valid text");
        let new = NewMessage { author_id: author, text, pub_date };
        store.add_message(new).await.expect("posting");
    }
    let pool = sqlx::PgPool::connect(&url).await.expect("connecting");
    let entries: i64 = sqlx::query_scalar("SELECT count(*) FROM home_entries WHERE owner_id = $1")
        .bind(reader)
        .fetch_one(&pool)
        .await
        .expect("counting");
    assert!(entries < 200, "500 posts left {entries} entries in an index that keeps 10");
    let mut dates = Vec::new();
    let mut before = None;
    loop {
        let page = store.timeline(Timeline::Home(reader), before, 7).await.expect("a page");
        let Some(last) = page.last() else { break };
        before = Some(Cursor::after(last));
        dates.extend(page.iter().map(|entry| entry.pub_date));
    }
    assert_eq!(dates, (0..500).rev().collect::<Vec<_>>(), "every message once, newest first");
}
