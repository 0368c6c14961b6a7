//! Two `minitwit serve` replicas over one PostgreSQL behave as one site: a session from
//! one is accepted by the other, `latest` and follows written through one are read
//! through the other, concurrent registrations of one name across both leave one user,
//! and a replica stopped with SIGTERM mid-traffic costs the clients nothing, behind a load
//! balancer stand-in that routes on `/ready` (as Kubernetes and nginx health checks do).

#![allow(clippy::unwrap_used)]

use crate::common::{Server, http, ok, terminate_mid_traffic};
use minitwit_store_pg::testkit::fresh_database_url;
use minitwit_test_support::simulator;
use reqwest::{Client, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

async fn register(client: &Client, api: &str, name: &str) -> StatusCode {
    let body = json!({"username": name, "email": format!("{name}@example.com"), "pwd": "pw"});
    let request =
        client.post(format!("{api}/register")).header("authorization", simulator::AUTHORIZATION);
    request.json(&body).send().await.unwrap().status()
}

/// Logs in on the web site at `web`; returns the session cookie.
async fn log_in(web: &str, name: &str) -> String {
    let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("username", name), ("password", "pw")];
    let response = client.post(format!("{web}/login")).form(&form).send().await.unwrap();
    assert!(response.status().is_redirection(), "login: {}", response.status());
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn page(web: &str, path: &str, cookie: &str) -> String {
    let response = http().get(format!("{web}{path}")).header("cookie", cookie).send().await;
    response.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_database_act_as_one_site() {
    let (url, _db) = fresh_database_url().await;
    let a = Server::start(&url, &[]);
    let b = Server::start(&url, &[]);
    let client = http();
    for name in ["alice", "bob"] {
        assert_eq!(register(&client, &a.api, name).await, StatusCode::NO_CONTENT);
    }

    // A session from one replica is accepted by the other (the key is in the database).
    let cookie = log_in(&a.web, "alice").await;
    assert!(page(&b.web, "/", &cookie).await.contains("sign out [alice]"));

    // latest written through one, read through the other.
    let write = client
        .get(format!("{}/msgs?latest=4242", a.api))
        .header("authorization", simulator::AUTHORIZATION);
    assert_eq!(write.send().await.unwrap().status(), 200);
    let latest: serde_json::Value =
        client.get(format!("{}/latest", b.api)).send().await.unwrap().json().await.unwrap();
    assert_eq!(latest["latest"], 4242);

    // A follow through one is shown on the other's page.
    let follow = client
        .post(format!("{}/fllws/alice", a.api))
        .header("authorization", simulator::AUTHORIZATION);
    let follow = follow.json(&json!({"follow": "bob"})).send().await.unwrap();
    assert_eq!(follow.status(), StatusCode::NO_CONTENT);
    assert!(page(&b.web, "/bob", &cookie).await.contains("You are currently following this user"));

    // Concurrent registrations of one name across both leave exactly one user.
    for name in ["racer1", "racer2", "racer3"] {
        let attempts: Vec<_> = (0..8)
            .map(|i| {
                let (client, api) = (client.clone(), [&a.api, &b.api][i % 2].clone());
                tokio::spawn(async move { register(&client, &api, name).await })
            })
            .collect();
        let mut created = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                StatusCode::NO_CONTENT => created += 1,
                StatusCode::BAD_REQUEST => {}
                other => panic!("registering {name}: {other}"),
            }
        }
        assert_eq!(created, 1, "{name} registered once");
    }
    let users = ok(&["--store", &url, "user", "list", "--json"]);
    assert_eq!(users.lines().filter(|u| u.contains("\"racer1\"")).count(), 1);
    assert_eq!(users.lines().count(), 5);
}

/// A load balancer stand-in: routes round-robin to the ready backends, checking `/ready`
/// every 50 ms. Like a real balancer's unhealthy threshold, a backend is taken out after two
/// failed checks in a row: one lost check (a connection closed under it) is not a verdict,
/// and a draining replica still answers for far longer than two checks.
struct Balancer {
    backends: Vec<String>,
    ready: Vec<AtomicBool>,
    served: Vec<AtomicU64>,
    next: AtomicUsize,
}

impl Balancer {
    fn start(backends: Vec<String>) -> Arc<Self> {
        let ready = backends.iter().map(|_| AtomicBool::new(true)).collect();
        let served = backends.iter().map(|_| AtomicU64::new(0)).collect();
        let balancer = Arc::new(Self { backends, ready, served, next: AtomicUsize::new(0) });
        let checker = Arc::clone(&balancer);
        tokio::spawn(async move {
            let client = Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
            let mut failed_last = vec![false; checker.backends.len()];
            loop {
                for (i, backend) in checker.backends.iter().enumerate() {
                    let answer = client.get(format!("{backend}/ready")).send().await;
                    let ok = answer.is_ok_and(|r| r.status() == 200);
                    checker.ready[i].store(ok || !failed_last[i], Ordering::SeqCst);
                    failed_last[i] = !ok;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        balancer
    }

    /// The next ready backend's index, round robin. Each call looks at every backend once
    /// from its own starting point (concurrent callers moving a shared cursor between
    /// one look and the next could otherwise make a caller see the same backend twice).
    fn pick(&self) -> usize {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.backends.len();
        let ready =
            (0..count).map(|k| (start + k) % count).find(|&i| self.ready[i].load(Ordering::SeqCst));
        ready.expect("no backend is ready")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stopped_mid_traffic_costs_the_clients_nothing() {
    let (url, _db) = fresh_database_url().await;
    let mut a = Server::start(&url, &["--drain-delay-secs", "2"]);
    let b = Server::start(&url, &["--drain-delay-secs", "2"]);
    let client = http();
    assert_eq!(register(&client, &b.api, "writer").await, StatusCode::NO_CONTENT);
    let balancer = Balancer::start(vec![a.api.clone(), b.api.clone()]);
    let (sent, errors, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut workers = Vec::new();
    for worker in 0..4u64 {
        let (client, balancer) = (client.clone(), Arc::clone(&balancer));
        let (sent, errors, stop) = (Arc::clone(&sent), Arc::clone(&errors), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                let backend = balancer.pick();
                let base = &balancer.backends[backend];
                let request = if (n + worker) % 2 == 0 {
                    client.post(format!("{base}/msgs/writer")).json(&json!({"content": "hi"}))
                } else {
                    client.get(format!("{base}/msgs?no=5"))
                };
                let outcome =
                    request.header("authorization", simulator::AUTHORIZATION).send().await;
                if outcome.is_ok_and(|r| r.status().is_success()) {
                    balancer.served[backend].fetch_add(1, Ordering::SeqCst);
                } else {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let mut served_by_a = 0;
    let read_served = || served_by_a = balancer.served[0].load(Ordering::SeqCst);
    let status = terminate_mid_traffic(&mut a.child, (&sent, &stop), workers, read_served).await;
    assert!(status.success(), "replica a stopped cleanly: {status:?}");
    assert!(served_by_a > 0, "replica a served traffic before it was stopped");
    assert_eq!(errors.load(Ordering::SeqCst), 0, "no client saw an error");
    let total = sent.load(Ordering::SeqCst);
    let served: u64 = balancer.served.iter().map(|s| s.load(Ordering::SeqCst)).sum();
    assert_eq!(served, total);
    drop(b);
}
