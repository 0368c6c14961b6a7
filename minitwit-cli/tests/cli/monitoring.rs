//! Monitoring that is exercised: the alert rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), and a real Prometheus (Debian's `prometheus`)
//! scraping two running replicas over one PostgreSQL (the second reading from a streaming
//! standby) answers every query of the Grafana dashboard with data, and loads the alert
//! rules.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, http};
use minitwit_test_support::TestCluster;
use minitwit_test_support::simulator;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository's `deploy/`.
fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Runs a Prometheus tool, failing loudly (naming the fix) when it is missing.
fn tool(program: &str) -> Command {
    let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{program} is not installed. Fix: apt-get install prometheus (or scripts/install-prereqs)"
    );
    Command::new(program)
}

fn succeeds(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_are_valid_and_their_unit_tests_pass() {
    let dir = deploy().join("prometheus");
    let checked =
        succeeds(tool("promtool").args(["check", "rules", "alerts.yml"]).current_dir(&dir));
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    succeeds(tool("promtool").args(["check", "config", "prometheus.yml"]).current_dir(&dir));
    let tested =
        succeeds(tool("promtool").args(["test", "rules", "alerts.test.yml"]).current_dir(&dir));
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Every PromQL expression of the provisioned dashboard.
fn dashboard_queries() -> Vec<String> {
    let path = deploy().join("grafana/dashboards/minitwit.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let targets = panels.iter().flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default());
    let queries: Vec<String> = targets.map(|t| t["expr"].as_str().unwrap().to_owned()).collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// A Prometheus on loopback scraping `targets` every second, with the alert rules.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    fn start(scratch: &Scratch, targets: &[String]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::copy(deploy().join("prometheus/alerts.yml"), scratch.path("alerts.yml")).unwrap();
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [{"job_name": "minitwit", "static_configs": [{"targets": targets}]}],
        });
        // JSON is YAML.
        std::fs::write(scratch.path("prometheus.yml"), config.to_string()).unwrap();
        let child = tool("prometheus")
            .arg(format!("--config.file={}", scratch.path("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", scratch.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(scratch.path("prometheus.log")).unwrap())
            .spawn()
            .unwrap();
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// The result vector of an instant query (empty on errors, e.g. not started yet).
    async fn query(&self, expr: &str) -> Vec<Value> {
        let response =
            http().post(format!("{}/api/v1/query", self.url)).form(&[("query", expr)]).send().await;
        let Ok(response) = response else { return Vec::new() };
        let body: Value = response.json().await.unwrap_or_default();
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a query's result holds at least one number (not NaN).
fn has_data(result: &[Value]) -> bool {
    result.iter().any(|series| {
        series["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| !v.is_nan())
    })
}

/// `/public` of `web` opened as a live stream, once the database answers again (a stream
/// reads where it starts from the store: 503 while the pool reconnects).
async fn live_stream(client: &reqwest::Client, web: &str) -> reqwest::Response {
    for _ in 0..300 {
        let request =
            client.get(format!("http://{web}/public")).header("accept", "text/event-stream");
        let response = request.send().await.unwrap();
        if response.status() == 200 {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no live stream could be opened on {web}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scraping_two_replicas_answers_every_dashboard_query() {
    let cluster = TestCluster::start().unwrap_or_else(|e| panic!("{e}"));
    let standby = cluster.start_standby().unwrap_or_else(|e| panic!("{e}"));
    let (store, read_replica) = (cluster.url("postgres"), standby.url("postgres"));
    let scratch = Scratch::new();
    let replicas = [
        Server::start(&store, &["--gauge-interval", "1", "--max-streams", "1"]),
        Server::start(&store, &["--replica-store", &read_replica]),
    ];
    let client = http();
    for name in ["alice", "bob"] {
        let body = json!({"username": name, "email": format!("{name}@x.org"), "pwd": "pw"});
        client
            .post(format!("{}/register", replicas[0].api))
            .header("authorization", simulator::AUTHORIZATION)
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let follow = json!({"follow": "bob"});
    client
        .post(format!("{}/fllws/alice", replicas[1].api))
        .header("authorization", simulator::AUTHORIZATION)
        .json(&follow)
        .send()
        .await
        .unwrap();
    // Server errors to count: a short database outage.
    cluster.stop().unwrap();
    standby.stop().unwrap();
    for replica in &replicas {
        let response = client.get(format!("{}/public", replica.web)).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    cluster.resume().unwrap();
    standby.resume().unwrap();

    let targets: Vec<String> =
        replicas.iter().map(|r| r.web.trim_start_matches("http://").to_owned()).collect();
    // A live stream open on each replica (alice's posts reach them), and one refused.
    let mut streams = Vec::new();
    for web in &targets {
        streams.push(live_stream(&client, web).await);
    }
    let refused = client.get(format!("http://{}/public", targets[0]));
    let refused = refused.header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(refused.status(), 503, "past --max-streams");
    let prometheus = Prometheus::start(&scratch, &targets);
    // Traffic while Prometheus scrapes: pages, API calls, misses (4xx), posts.
    let traffic = {
        let (client, webs, apis) = (
            client.clone(),
            targets.clone(),
            replicas.iter().map(|r| r.api.clone()).collect::<Vec<_>>(),
        );
        tokio::spawn(async move {
            for i in 0.. {
                let (web, api) = (&webs[i % 2], &apis[i % 2]);
                let _ = client.get(format!("http://{web}/public")).send().await;
                let _ = client.get(format!("http://{web}/no-such-page")).send().await;
                let post = client
                    .post(format!("{api}/msgs/alice"))
                    .header("authorization", simulator::AUTHORIZATION);
                let _ = post.json(&json!({"content": format!("post {i}")})).send().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut missing = dashboard_queries();
    for _ in 0..120 {
        let mut still = Vec::new();
        for expr in missing {
            if !has_data(&prometheus.query(&expr).await) {
                still.push(expr);
            }
        }
        missing = still;
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    traffic.abort();
    let log = std::fs::read_to_string(scratch.path("prometheus.log")).unwrap_or_default();
    assert!(missing.is_empty(), "dashboard queries without data: {missing:#?}\n{log}");
    let up = prometheus.query("sum(up{job=\"minitwit\"})").await;
    assert_eq!(up[0]["value"][1], "2", "both replicas are scraped");
    let rules: Value = client
        .get(format!("{}/api/v1/rules", prometheus.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded = rules["data"]["groups"][0]["rules"].as_array().map_or(0, Vec::len);
    assert_eq!(loaded, 7, "the alert rules are loaded: {rules}");
}
