//! Faults under a running `minitwit serve`: the sled flusher's sync failing (through the
//! `fault-injection` seam the test build of the binary has, or a real full disk) or its
//! thread dying. The store must stop acknowledging (fail-stop), answer 503, `/ready` must
//! say so, and `/health` must fail, so that a supervisor restarts the process: after a
//! restart with space again, writes are accepted and nothing acknowledged is lost.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, Server, fixture_store, http, wait_for_count};
use minitwit_test_support::simulator;

/// Posts as alice through the API; the status.
async fn post(client: &reqwest::Client, api: &str, text: &str) -> u16 {
    let answer = client
        .post(format!("{api}/msgs/alice"))
        .header("authorization", simulator::AUTHORIZATION)
        .json(&serde_json::json!({ "content": text }))
        .send()
        .await
        .expect("the server answers (never hangs)");
    answer.status().as_u16()
}

/// Posts one message at a time (`post {i}`, then `length` dots) until one is
/// refused and ten more after it, at most `most`; the statuses.
async fn post_until_refused(api: &str, length: usize, most: usize) -> Vec<u16> {
    let client = http();
    let mut statuses = Vec::new();
    for i in 0..most {
        statuses.push(post(&client, api, &format!("post {i}{}", ".".repeat(length))).await);
        let refused_at = statuses.iter().position(|status| *status != 204);
        if refused_at.is_some_and(|at| statuses.len() > at + 10) {
            break;
        }
    }
    statuses
}

/// Asserts the fail-stop shape: some posts acknowledged, then every one refused with 503
/// and `Retry-After`; `/ready` and `/health` 503 on both listeners (only a restart mends
/// the store), reads still served.
async fn assert_fail_stop(server: &Server, statuses: &[u16]) {
    let first_refused = statuses.iter().position(|status| *status != 204).expect("a refusal");
    assert!(first_refused > 0, "{statuses:?}");
    assert!(statuses[first_refused..].iter().all(|status| *status == 503), "{statuses:?}");
    assert!(statuses.len() > first_refused + 10, "{statuses:?}");
    for base in [&server.web, &server.api] {
        let ready = http().get(format!("{base}/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 503, "{base}/ready");
        let health = http().get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 503, "{base}/health: a supervisor must restart it");
    }
    let read = http()
        .get(format!("{}/msgs?no=5", server.api))
        .header("authorization", simulator::AUTHORIZATION)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "reads keep serving");
    let refused = http()
        .post(format!("{}/msgs/alice", server.api))
        .header("authorization", simulator::AUTHORIZATION)
        .json(&serde_json::json!({ "content": "after" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
}

/// The texts of alice's messages in the store at `url` (read after the server stopped).
fn stored_posts(url: &str) -> String {
    crate::common::ok(&["--store", url, "message", "list"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_sync_failure_stops_all_writes() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let log = scratch.path("serve.log");
    let env = [("MINITWIT_FAULT_FAIL_SYNC", "4")];
    let server = Server::start_with_env(&store, &[], &log, &env);
    let statuses = post_until_refused(&server.api, 0, 40).await;
    assert_fail_stop(&server, &statuses).await;
    let (status, _) = server.stop();
    assert!(!status.success(), "the final flush cannot succeed either: {status:?}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("injected sync failure"), "the reason is logged:\n{logged}");

    let listed = stored_posts(&store);
    let acknowledged = statuses.iter().take_while(|status| **status == 204).count();
    for i in 0..acknowledged {
        assert!(listed.contains(&format!("post {i}\n")), "acknowledged post {i} lost:\n{listed}");
    }
    for i in acknowledged + 1..statuses.len() {
        assert!(!listed.contains(&format!("post {i}\n")), "refused post {i} stored:\n{listed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_flusher_is_detected_not_waited_on() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let log = scratch.path("serve.log");
    let env = [("MINITWIT_FAULT_PANIC_SYNC", "3")];
    let server = Server::start_with_env(&store, &[], &log, &env);
    let statuses = post_until_refused(&server.api, 0, 40).await;
    assert_fail_stop(&server, &statuses).await;
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("flusher thread died"), "the reason is logged:\n{logged}");
}

/// A small tmpfs mounted for one test, unmounted when dropped: a disk that fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes`; a loud failure where that is not allowed.
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        assert!(
            mounted.is_ok_and(|status| status.success()),
            "mounting a tmpfs for the full-disk test failed: run the suite as root (CI does), \
             or in a container with CAP_SYS_ADMIN"
        );
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Fills the disk with `filler` until the kernel says it is full.
    fn fill(&self, filler: &str) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path(filler)).unwrap();
        let block = vec![0xA5u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A real full disk under a running server on sled: writes answer 503 with `Retry-After`,
/// reads keep serving, `/health` fails (before, it said 200 and no supervisor restarted
/// the process, so writes stayed refused after space returned); once space is back, the
/// restart the supervisor makes accepts writes again, and no acknowledged post is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_health_and_a_restart_accepts_writes_again() {
    let scratch = Scratch::new();
    let disk = SmallDisk::mount(48);
    let fixture = scratch.path("fixture.jsonl");
    crate::common::write_fixture(&fixture);
    let store = format!("sled:{}", disk.path("db").display());
    crate::common::ok(&["--store", &store, "import", "--in", fixture.to_str().unwrap()]);
    let log = scratch.path("serve.log");
    let server = Server::start_logging_to(&store, &[], &log);
    let client = http();
    assert_eq!(post(&client, &server.api, "before the disk filled").await, 204);

    disk.fill("filler");
    // sled writes into log segments it has already allocated until it needs a new one.
    let statuses = post_until_refused(&server.api, 900, 20_000).await;
    assert_fail_stop(&server, &statuses).await;
    let (status, _) = server.stop();
    assert!(!status.success(), "the final flush cannot succeed on a full disk: {status:?}");

    std::fs::remove_file(disk.path("filler")).unwrap();
    let restarted = Server::start_logging_to(&store, &[], &scratch.path("restarted.log"));
    assert_eq!(post(&client, &restarted.api, "after the restart").await, 204);
    let health = client.get(format!("{}/health", restarted.api)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    drop(restarted);

    let listed = stored_posts(&store);
    let acknowledged = statuses.iter().take_while(|status| **status == 204).count();
    for text in ["before the disk filled", "after the restart"] {
        assert!(listed.contains(&format!("{text}\n")), "{text:?} lost:\n{listed}");
    }
    for i in 0..acknowledged {
        assert!(listed.contains(&format!("post {i}.")), "acknowledged post {i} lost:\n{listed}");
    }
}

/// A read carrying `latest` records it first and is answered once that is durable: the
/// request whose flush fails gets a 503, never a 200 for a value no flush covered. Each
/// request here needs one flush of its own (they go one at a time to a server that, on
/// an initialised store, writes nothing at start), so the second flush is the second
/// request's. (Answered without waiting, the second request got a 200.) No acknowledged
/// value is lost to a `kill -9` after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_only_once_its_latest_is_durable() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    // A first run initialises the store (its session key), so the next one starts idle.
    Server::start(&store, &[]).stop();
    let env = [("MINITWIT_FAULT_FAIL_SYNC", "2")];
    let server = Server::start_with_env(&store, &[], &scratch.path("serve.log"), &env);
    let client = http();
    let mut statuses = Vec::new();
    for latest in 1000..1010 {
        let answer = client
            .get(format!("{}/msgs?latest={latest}", server.api))
            .header("authorization", simulator::AUTHORIZATION)
            .send()
            .await
            .expect("the server answers (never hangs)");
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses[1..].iter().all(|status| *status == 503), "{statuses:?}");
    crate::common::signal(&server.child, "KILL");
    drop(server);
    let stats = crate::common::ok(&["--store", &store, "stats"]);
    let kept = stats.lines().find_map(|line| line.strip_prefix("latest\t")).unwrap();
    assert!(kept.parse::<i64>().unwrap() >= 1000, "the acknowledged latest is lost:\n{stats}");
}

/// What a writer saw: the texts acknowledged, and every other outcome.
type Outcomes = (Vec<String>, Vec<Option<u16>>);

/// Posts as `author` until `stop`, one message at a time; the texts acknowledged (204)
/// and every other status seen (`None`: no answer at all, as when the server died).
async fn keep_posting(
    api: String,
    author: String,
    tag: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Outcomes {
    let client = http();
    let (mut texts, mut others) = (Vec::new(), Vec::new());
    for i in 0.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let text = format!("{tag} {i}");
        let answer = client
            .post(format!("{api}/msgs/{author}"))
            .header("authorization", simulator::AUTHORIZATION)
            .json(&serde_json::json!({ "content": text }))
            .send()
            .await;
        match answer.map(|a| a.status().as_u16()) {
            Ok(204) => {
                texts.push(text);
                acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(status) => others.push(Some(status)),
            Err(_) => {
                others.push(None);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    (texts, others)
}

/// Writers posting concurrently as the fixture's users, until stopped.
struct Writers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Outcomes>>,
}

impl Writers {
    fn start(api: &str, tag: &str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks = ["alice", "bob", "alice", "bob"]
            .iter()
            .enumerate()
            .map(|(i, author)| {
                let run = keep_posting(
                    api.to_owned(),
                    (*author).to_owned(),
                    format!("{tag}-w{i}"),
                    stop.clone(),
                    acked.clone(),
                );
                tokio::spawn(run)
            })
            .collect();
        Self { stop, acked, tasks }
    }

    /// Stops the writers; every acknowledged text and every other outcome.
    async fn finish(self) -> Outcomes {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (mut texts, mut others) = (Vec::new(), Vec::new());
        for task in self.tasks {
            let (t, o) = task.await.unwrap();
            texts.extend(t);
            others.extend(o);
        }
        (texts, others)
    }
}

/// Every acknowledged text missing from the store at `url`.
fn lost(url: &str, acknowledged: &[String]) -> Vec<String> {
    let listed = crate::common::ok(&["--store", url, "message", "list", "--limit", "1000000"]);
    let stored: std::collections::HashSet<&str> =
        listed.lines().filter_map(|line| line.rsplit('\t').next()).collect();
    acknowledged.iter().filter(|text| !stored.contains(text.as_str())).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_serve_on_sled_loses_no_acknowledged_post() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let server = Server::start(&store, &[]);
        let writers = Writers::start(&server.api, &format!("round{round}"));
        wait_for_count(&writers.acked, 100 + round * 37).await;
        crate::common::signal(&server.child, "KILL");
        let (texts, _) = writers.finish().await;
        drop(server);
        acknowledged.extend(texts);
        let missing = lost(&store, &acknowledged);
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged posts lost: {missing:?}",
            missing.len()
        );
    }
    assert!(acknowledged.len() >= 300, "{}", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_and_restarted_under_a_running_server() {
    use minitwit_test_support::TestCluster;
    let cluster = TestCluster::start_durable().expect("a throwaway PostgreSQL (see the error)");
    let url = cluster.url("postgres");
    let fixture = Scratch::new();
    let file = fixture.path("fixture.jsonl");
    crate::common::write_fixture(&file);
    crate::common::ok(&["--store", &url, "import", "--in", file.to_str().unwrap()]);
    let options = ["--pg-acquire-timeout-ms", "300", "--pg-max-connections", "4"];
    let server = Server::start(&url, &options);
    let writers = Writers::start(&server.api, "pg");
    wait_for_count(&writers.acked, 50).await;

    cluster.kill().expect("killing PostgreSQL");
    let client = http();
    let mut outage = Vec::new();
    for _ in 0..20 {
        let ready = client.get(format!("{}/ready", server.api)).send().await.unwrap();
        outage.push(ready.status().as_u16());
    }
    assert!(outage.contains(&503), "/ready during the outage: {outage:?}");
    cluster.resume().expect("restarting PostgreSQL");
    let before = writers.acked.load(std::sync::atomic::Ordering::SeqCst);
    wait_for_count(&writers.acked, before + 50).await;
    let ready = client.get(format!("{}/ready", server.api)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "recovered without a restart");

    let (acknowledged, others) = writers.finish().await;
    assert!(others.iter().all(|s| *s == Some(503)), "only 503s during the outage: {others:?}");
    assert!(others.contains(&Some(503)), "the outage was seen");
    let (status, _) = server.stop();
    assert!(status.success());
    let missing = lost(&url, &acknowledged);
    assert!(missing.is_empty(), "{} acknowledged posts lost: {missing:?}", missing.len());
}
