//! Read replicas, end to end: `minitwit serve --replica-store` over a real PostgreSQL
//! primary and a real streaming standby (`pg_basebackup -R`), each test with a pair of
//! its own, since tests delay or stop the servers (or bound the lag). Every wait is bounded.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failure

use crate::common::{Server, http};
use minitwit_store_pg::testkit::{ReplicatedPair, TestDatabase};
use minitwit_test_support::simulator;
use reqwest::redirect::Policy;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A primary with a standby, a fresh database on both, and `minitwit serve` over them
/// with a one-hour lag bound (so a delayed standby stays in service).
struct Setup {
    pair: Arc<ReplicatedPair>,
    server: Server,
    _db: TestDatabase,
}

impl Setup {
    async fn start(apply_delay: Option<Duration>) -> Self {
        Self::start_with_lag_bound(apply_delay, "3600000").await
    }

    async fn start_with_lag_bound(apply_delay: Option<Duration>, max_lag_ms: &str) -> Self {
        let pair = Arc::new(blocking(ReplicatedPair::start).await);
        let (primary, standby, db) = pair.fresh_database().await;
        if let Some(delay) = apply_delay {
            let p = Arc::clone(&pair);
            blocking(move || p.standby.set_apply_delay(delay)).await.expect("delays the standby");
        }
        let args = ["--replica-store", standby.as_str(), "--replica-max-lag-ms", max_lag_ms];
        let server = Server::start(&primary, &args);
        let setup = Self { pair, server, _db: db };
        setup.wait_for_metric(r#"minitwit_replica_up{replica="0"} 1"#).await;
        setup
    }

    /// The server's metrics text.
    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.server.api);
        http().get(url).send().await.unwrap().text().await.unwrap()
    }

    /// A counter's value (0 when not yet reported).
    async fn counter(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok()).unwrap_or(0.0)
    }

    /// Waits (at most a minute) until the metrics have a `series` line whose value
    /// passes `test`.
    async fn wait_for_value(&self, series: &str, test: impl Fn(f64) -> bool) {
        let start = Instant::now();
        while !test(self.counter(series).await) {
            assert!(start.elapsed() < Duration::from_secs(60), "{series} not as expected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most a minute) until the metrics show `line`.
    async fn wait_for_metric(&self, line: &str) {
        let start = Instant::now();
        while !self.metrics().await.lines().any(|l| l == line) {
            assert!(start.elapsed() < Duration::from_secs(60), "no {line:?} in a minute");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A browser: keeps cookies, sees redirects.
    fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    async fn get(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let response = client.get(format!("{}{path}", self.server.web)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post_form(&self, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> u16 {
        let url = format!("{}{path}", self.server.web);
        client.post(url).form(form).send().await.unwrap().status().as_u16()
    }

    /// Registers and signs in `name` through the site.
    async fn sign_up(&self, client: &reqwest::Client, name: &str) {
        let email = format!("{name}@example.com");
        let form = [("username", name), ("email", &email), ("password", "pw"), ("password2", "pw")];
        assert_eq!(self.post_form(client, "/register", &form).await, 302);
        let login = [("username", name), ("password", "pw")];
        assert_eq!(self.post_form(client, "/login", &login).await, 302);
    }

    /// A simulator API call: status and body.
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        let mut request = http()
            .request(method, format!("{}{path}", self.server.api))
            .header("authorization", simulator::AUTHORIZATION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// Runs a blocking cluster operation off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("the blocking task ran")
}

const REPLICA_READS: &str = r#"minitwit_store_reads_total{target="replica"}"#;
const PRIMARY_READS: &str = r#"minitwit_store_reads_total{target="primary"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_delayed_standby_writers_see_their_posts_and_anonymous_readers_get_the_replica() {
    let setup = Setup::start(Some(Duration::from_secs(600))).await;
    let alice = Setup::browser();
    setup.sign_up(&alice, "alice").await;
    for i in 0..8 {
        let text = format!("post number {i} by alice");
        assert_eq!(setup.post_form(&alice, "/add_message", &[("text", &text)]).await, 302);
        let (status, home) = setup.get(&alice, "/").await;
        assert_eq!(status, 200);
        assert!(home.contains(&text), "post {i} missing from alice's next page:\n{home}");
        let (_, own) = setup.get(&alice, "/alice").await;
        assert!(own.contains(&text), "post {i} missing from alice's own timeline");
    }

    let before = setup.counter(REPLICA_READS).await;
    let (status, public) = setup.get(&Setup::browser(), "/public").await;
    assert_eq!(status, 200);
    assert!(!public.contains("by alice"), "the delayed standby cannot have alice's posts yet");
    assert!(setup.counter(REPLICA_READS).await > before, "the replica served the public page");
    let fallbacks = r#"minitwit_replica_fallbacks_total{reason="behind_reader"}"#;
    assert!(setup.counter(fallbacks).await > 0.0, "alice's own reads went to the primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_standby_stopped_every_read_is_served_by_the_primary() {
    let setup = Setup::start(None).await;
    let alice = Setup::browser();
    setup.sign_up(&alice, "alice").await;
    assert_eq!(setup.post_form(&alice, "/add_message", &[("text", "hello from alice")]).await, 302);
    let pair = Arc::clone(&setup.pair);
    blocking(move || pair.standby.stop()).await.expect("stops the standby");

    let primary_before = setup.counter(PRIMARY_READS).await;
    for _ in 0..3 {
        for path in ["/public", "/alice", "/"] {
            let (status, page) = setup.get(&alice, path).await;
            assert_eq!(status, 200, "{path}");
            assert!(page.contains("hello from alice"), "{path}: {page}");
        }
        for path in ["/msgs?no=5", "/msgs/alice?no=5", "/fllws/alice"] {
            let (status, body) = setup.api(reqwest::Method::GET, path, None).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
        let (_, anonymous) = setup.get(&Setup::browser(), "/public").await;
        assert!(anonymous.contains("hello from alice"));
    }
    assert!(setup.counter(PRIMARY_READS).await >= primary_before + 15.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_stopped_timelines_come_from_the_replica_and_writes_answer_503() {
    let setup = Setup::start(None).await;
    let register = json!({"username": "bob", "email": "bob@example.com", "pwd": "pw"});
    assert_eq!(setup.api(reqwest::Method::POST, "/register", Some(register)).await.0, 204);
    let post = json!({"content": "bob was here"});
    assert_eq!(setup.api(reqwest::Method::POST, "/msgs/bob", Some(post)).await.0, 204);
    let visitor = Setup::browser();
    setup.sign_up(&visitor, "carol").await;
    setup.pair.wait_for_standby().await;
    let pair = Arc::clone(&setup.pair);
    blocking(move || pair.primary.stop()).await.expect("stops the primary");

    let replica_before = setup.counter(REPLICA_READS).await;
    for path in ["/msgs?no=5", "/msgs/bob?no=5"] {
        let (status, body) = setup.api(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("bob was here"), "{path}: {body}");
    }
    for path in ["/public", "/bob"] {
        let (status, page) = setup.get(&Setup::browser(), path).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("bob was here"), "{path}: {page}");
    }
    assert!(setup.counter(REPLICA_READS).await >= replica_before + 4.0);

    let (status, body) =
        setup.api(reqwest::Method::POST, "/msgs/bob", Some(json!({"content": "lost?"}))).await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], 503);
    assert_eq!(body["error_msg"], "The service is temporarily unavailable");
    let status = setup.post_form(&visitor, "/add_message", &[("text", "lost?")]).await;
    assert_eq!(status, 503, "a signed-in post while the primary is down");
    let (status, page) = setup.get(&visitor, "/public").await;
    assert_eq!(status, 200);
    assert!(!page.contains("lost?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_lagging_past_the_bound_is_skipped_and_the_primary_serves_everyone() {
    let setup = Setup::start_with_lag_bound(Some(Duration::from_secs(600)), "100").await;
    let alice = Setup::browser();
    setup.sign_up(&alice, "alice").await;
    assert_eq!(setup.post_form(&alice, "/add_message", &[("text", "fresh news")]).await, 302);
    setup.wait_for_value(r#"minitwit_replica_lag_seconds{replica="0"}"#, |lag| lag > 0.1).await;

    let lagging = r#"minitwit_replica_fallbacks_total{reason="lagging"}"#;
    let before = setup.counter(lagging).await;
    let (status, public) = setup.get(&Setup::browser(), "/public").await;
    assert_eq!(status, 200);
    assert!(public.contains("fresh news"), "the primary served the anonymous reader");
    assert!(setup.counter(lagging).await > before, "the lagging replica was skipped");
}
