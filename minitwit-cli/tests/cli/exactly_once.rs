//! Writes applied once across processes (CONTRACT.md §4.5): requests with one
//! `Idempotency-Key` sent at once to two `minitwit serve` replicas over one PostgreSQL
//! (a proxy's retry racing its first attempt) apply once and all get the first answer;
//! a receipt older than `--idempotency-window-secs` no longer answers.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, http};
use minitwit_store_pg::testkit::fresh_database_url;
use minitwit_test_support::simulator;
use reqwest::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// `POST {api}{path}` of `body` with the simulator's credentials and `key`.
async fn keyed_post(client: &Client, api: &str, path: &str, key: &str, body: &Value) -> u16 {
    let request =
        client.post(format!("{api}{path}")).header("authorization", simulator::AUTHORIZATION);
    let response = request.header("idempotency-key", key).json(body).send().await.unwrap();
    response.status().as_u16()
}

/// Sends `body` to `path` with `key` eight times at once, alternating between `apis`;
/// every answer's status.
async fn racing(apis: [&str; 2], path: &str, key: &str, body: Value) -> Vec<u16> {
    let sends = (0..8).map(|i| {
        let (api, path, key, body) =
            (apis[i % 2].to_owned(), path.to_owned(), key.to_owned(), body.clone());
        tokio::spawn(async move { keyed_post(&http(), &api, &path, &key, &body).await })
    });
    futures::future::join_all(sends).await.into_iter().map(Result::unwrap).collect()
}

/// How many messages the public timeline lists.
async fn messages(api: &str) -> usize {
    let request =
        http().get(format!("{api}/msgs?no=1000")).header("authorization", simulator::AUTHORIZATION);
    let messages: Vec<Value> = request.send().await.unwrap().json().await.unwrap();
    messages.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_sent_to_two_replicas_at_once_applies_once() {
    let (url, _db) = fresh_database_url().await;
    let (a, b) = (Server::start(&url, &[]), Server::start(&url, &[]));
    let apis = [a.api.as_str(), b.api.as_str()];
    let registration = json!({"username": "racer", "email": "r@example.com", "pwd": "pw"});
    let answers = racing(apis, "/register", "reg-racer", registration).await;
    assert_eq!(answers, [204; 8], "every attempt gets the first answer, none 'already taken'");
    let post = json!({"content": "posted once"});
    assert_eq!(racing(apis, "/msgs/racer", "post-racer", post).await, [204; 8]);
    assert_eq!(messages(&a.api).await, 1, "one message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_older_than_the_window_answers_no_more() {
    let scratch = Scratch::new();
    let server = Server::start(&scratch.sled("store"), &["--idempotency-window-secs", "1"]);
    let client = http();
    let registration = json!({"username": "alice", "email": "a@example.com", "pwd": "pw"});
    assert_eq!(keyed_post(&client, &server.api, "/register", "r", &registration).await, 204);
    let post = json!({"content": "again"});
    assert_eq!(keyed_post(&client, &server.api, "/msgs/alice", "p", &post).await, 204);
    assert_eq!(keyed_post(&client, &server.api, "/msgs/alice", "p", &post).await, 204);
    assert_eq!(messages(&server.api).await, 1, "a retry within the window");
    // Past the window (receipts are timed in whole seconds): the key is new again.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(keyed_post(&client, &server.api, "/msgs/alice", "p", &post).await, 204);
    assert_eq!(messages(&server.api).await, 2, "the expired key applied anew");
}
