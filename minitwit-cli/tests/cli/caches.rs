//! The hot-read caches (`latest`, the first pages of the public and users' timelines,
//! follow lists) never answer with data older than an acknowledged write: within one
//! `serve` process on sled (where they are on), and across two `serve` processes over
//! one PostgreSQL (where another process's writes must be seen, so they must not cache
//! what they cannot invalidate).

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, http};
use minitwit_store_pg::testkit::fresh_database_url;
use minitwit_test_support::simulator;
use serde_json::{Value, json};

/// A simulator request to `api`, with `latest`.
async fn sim(method: &str, api: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let client = http();
    let url = format!("{api}{path}");
    let request = match method {
        "POST" => client.post(url).json(&body.unwrap_or(Value::Null)),
        _ => client.get(url),
    };
    request.header("authorization", simulator::AUTHORIZATION).send().await.unwrap()
}

async fn latest(api: &str) -> i64 {
    let body: Value = sim("GET", api, "/latest", None).await.json().await.unwrap();
    body["latest"].as_i64().unwrap()
}

/// The texts of the first `no` messages of the public timeline, as the API shows them.
async fn public_texts(api: &str, no: u32) -> Vec<String> {
    texts(api, &format!("/msgs?no={no}")).await
}

/// The texts of carol's first `no` messages, as the API shows them.
async fn carol_texts(api: &str, no: u32) -> Vec<String> {
    texts(api, &format!("/msgs/carol?no={no}")).await
}

async fn texts(api: &str, path: &str) -> Vec<String> {
    let body: Value = sim("GET", api, path, None).await.json().await.unwrap();
    body.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
}

/// Whom carol follows, as the API shows it.
async fn carol_follows(api: &str) -> Vec<String> {
    let body: Value = sim("GET", api, "/fllws/carol?no=10", None).await.json().await.unwrap();
    body["follows"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect()
}

async fn web_public(web: &str) -> String {
    http().get(format!("{web}/public")).send().await.unwrap().text().await.unwrap()
}

/// Writes through `writer` and reads each hot page through `reader` right after each
/// acknowledged write (the reader has read, and so could have cached, each page before).
async fn writes_are_seen_at_once(writer: &Server, reader: &Server) {
    let register = json!({"username": "carol", "email": "c@example.com", "pwd": "carol-pw"});
    assert_eq!(sim("POST", &writer.api, "/register?latest=1", Some(register)).await.status(), 204);
    assert_eq!(latest(&reader.api).await, 1);
    assert!(public_texts(&reader.api, 10).await.is_empty());
    assert!(carol_texts(&reader.api, 10).await.is_empty());
    assert!(!web_public(&reader.web).await.contains("first words"));

    let post = json!({"content": "first words"});
    let posted = sim("POST", &writer.api, "/msgs/carol?latest=2", Some(post)).await;
    assert_eq!(posted.status(), 204);
    assert_eq!(latest(&reader.api).await, 2, "latest is invalidated by a write");
    assert_eq!(public_texts(&reader.api, 10).await, ["first words"], "so is /msgs?no=N");
    assert_eq!(carol_texts(&reader.api, 10).await, ["first words"], "and /msgs/{{user}}");
    assert!(web_public(&reader.web).await.contains("first words"), "and /public");

    let post = json!({"content": "second words"});
    sim("POST", &writer.api, "/msgs/carol?latest=3", Some(post)).await;
    assert_eq!(latest(&reader.api).await, 3);
    assert_eq!(public_texts(&reader.api, 10).await, ["second words", "first words"]);
    assert_eq!(public_texts(&reader.api, 1).await, ["second words"], "every page size");
    assert_eq!(carol_texts(&reader.api, 10).await, ["second words", "first words"]);

    let register = json!({"username": "dave", "email": "d@example.com", "pwd": "dave-pw"});
    assert_eq!(sim("POST", &writer.api, "/register?latest=4", Some(register)).await.status(), 204);
    assert!(carol_follows(&reader.api).await.is_empty());
    let follow = json!({"follow": "dave"});
    assert_eq!(sim("POST", &writer.api, "/fllws/carol?latest=5", Some(follow)).await.status(), 204);
    assert_eq!(carol_follows(&reader.api).await, ["dave"], "a follow moves /fllws/{{user}}");
    let unfollow = json!({"unfollow": "dave"});
    let unfollowed = sim("POST", &writer.api, "/fllws/carol?latest=6", Some(unfollow)).await;
    assert_eq!(unfollowed.status(), 204);
    assert!(carol_follows(&reader.api).await.is_empty(), "and so does an unfollow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_on_sled_serves_every_write_at_once() {
    let scratch = Scratch::new();
    let server = Server::start(&scratch.sled("db"), &[]);
    writes_are_seen_at_once(&server, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_over_one_postgres_see_each_others_writes_at_once() {
    let (url, _db) = fresh_database_url().await;
    let (first, second) = (Server::start(&url, &[]), Server::start(&url, &[]));
    writes_are_seen_at_once(&first, &second).await;
    // And the other way round, after each has read (and could hold) the other's pages.
    let post = json!({"content": "from the second"});
    assert_eq!(sim("POST", &second.api, "/msgs/carol?latest=9", Some(post)).await.status(), 204);
    assert_eq!(latest(&first.api).await, 9);
    assert_eq!(public_texts(&first.api, 1).await, ["from the second"]);
    assert_eq!(carol_texts(&first.api, 1).await, ["from the second"]);
}
