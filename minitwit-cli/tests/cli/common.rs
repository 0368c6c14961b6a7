//! Shared helpers for the binary's tests: run `minitwit` with a clean environment, start
//! `minitwit serve` on free ports and stop it with a signal, make scratch stores.

#![allow(clippy::unwrap_used)]

use minitwit_test_support::scenario_path;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_minitwit");

/// A `minitwit` command with no `MINITWIT_*` or `RUST_LOG` from the caller's environment.
pub fn minitwit(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("MINITWIT_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.args(args).stdin(Stdio::null());
    command
}

/// Runs `minitwit` with `args` and returns what it printed.
pub fn run(args: &[&str]) -> Output {
    minitwit(args).output().expect("running the minitwit binary")
}

/// Runs `minitwit` with `stdin` fed to it.
pub fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = minitwit(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning minitwit");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Standard output, asserting success.
pub fn ok(args: &[&str]) -> String {
    succeeds(minitwit(args))
}

/// [`ok`] for a command already made (with an environment of its own, say).
pub fn succeeds(mut command: Command) -> String {
    let output = command.output().expect("running the minitwit binary");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The single stderr line of a failed run, asserting the failure shape: exit status 1,
/// exactly one line, no panic or backtrace.
pub fn fails(args: &[&str]) -> String {
    failure_line(&run(args), args)
}

/// [`fails`] for an output already collected.
pub fn failure_line(output: &Output, args: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "minitwit {args:?} should fail: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line on stderr, got: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    stderr.trim_end().to_owned()
}

/// A scratch directory and a sled store URL inside it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    /// `sled:DIR/name`.
    pub fn sled(&self, name: &str) -> String {
        format!("sled:{}", self.dir.path().join(name).display())
    }

    /// A path inside the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A running `minitwit serve`, stopped with SIGTERM on drop.
pub struct Server {
    pub child: Child,
    pub web: String,
    pub api: String,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts `minitwit serve` on free ports with `extra` arguments and waits until it
    /// prints both addresses.
    pub fn start(store: &str, extra: &[&str]) -> Self {
        Self::spawn(store, extra, "warn", Stdio::inherit())
    }

    /// [`Server::start`] with `info` logs written to `log`.
    pub fn start_logging_to(store: &str, extra: &[&str], log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn(store, extra, "info", Stdio::from(file))
    }

    /// [`Server::start_logging_to`] with extra environment variables.
    pub fn start_with_env(store: &str, extra: &[&str], log: &Path, env: &[(&str, &str)]) -> Self {
        let file = std::fs::File::create(log).unwrap();
        Self::spawn_with(store, extra, "info", Stdio::from(file), env)
    }

    fn spawn(store: &str, extra: &[&str], level: &str, stderr: Stdio) -> Self {
        Self::spawn_with(store, extra, level, stderr, &[])
    }

    fn spawn_with(
        store: &str,
        extra: &[&str],
        level: &str,
        stderr: Stdio,
        env: &[(&str, &str)],
    ) -> Self {
        let mut args = vec!["--store", store, "serve", "--web-addr", "127.0.0.1:0"];
        args.extend(["--api-addr", "127.0.0.1:0", "--log-format", "json"]);
        args.extend(extra);
        let mut child = minitwit(&args)
            .envs(env.iter().copied())
            .env("RUST_LOG", level)
            // Tests stop servers at once unless they pass --drain-delay-secs.
            .env("MINITWIT_DRAIN_DELAY_SECS", "0")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning minitwit serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let web = address(&mut stdout, "web site listening on ");
        let api = address(&mut stdout, "simulator API listening on ");
        Self { child, web, api, stdout }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status and what the
    /// server still printed on stdout.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        signal(&self.child, "TERM");
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(&self.child, "TERM");
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal by name to `child`.
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
}

/// Waits until `sent` (a load loop's request counter) reaches `count`; fails the test
/// after a minute.
pub async fn wait_for_count(sent: &AtomicU64, count: u64) {
    for _ in 0..6000 {
        if sent.load(Ordering::SeqCst) >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {count} requests counted in a minute", sent.load(Ordering::SeqCst));
}

/// Stops a server mid-traffic, once `workers` send requests (counting them in `sent`)
/// until `stop` is set: after 100 requests, `before_stop` (taking the server out of a
/// balancer, say), then SIGTERM to `child`, awaiting its exit; then 100 more requests
/// (served by the others) and the workers stopped. Returns the server's exit status.
pub async fn terminate_mid_traffic(
    child: &mut Child,
    (sent, stop): (&AtomicU64, &AtomicBool),
    workers: Vec<tokio::task::JoinHandle<()>>,
    before_stop: impl FnOnce(),
) -> std::process::ExitStatus {
    wait_for_count(sent, 100).await;
    before_stop();
    let status = terminate(child).await;
    let after_exit = sent.load(Ordering::SeqCst);
    wait_for_count(sent, after_exit + 100).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    status
}

/// Sends SIGTERM to `child` and waits, without blocking the runtime, until it exits.
pub async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal(child, "TERM");
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads stdout lines until one starts with `prefix`; returns the URL after it.
fn address(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "minitwit serve exited before printing {prefix:?}");
        if let Some(url) = line.trim_end().strip_prefix(prefix) {
            return url.to_owned();
        }
    }
}

/// A blocking-free HTTP client with a generous timeout (debug builds are slow).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The fixture's users and their passwords.
pub const USERS: [(&str, &str); 3] =
    [("alice", "alice-pw"), ("bob", "bob-pw"), ("Roger Histand", "roger-pw")];

/// Writes an export file of a small store: the [`USERS`], six messages by alice and bob
/// (one non-ASCII, ids 1..=6), alice follows bob, latest 42.
pub fn write_fixture(path: &Path) {
    let path = path.to_owned();
    // A thread of its own, so async tests may call this too.
    let writer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(fixture_export(&path));
    });
    writer.join().unwrap();
}

async fn fixture_export(path: &Path) {
    use minitwit_core::testkit::MemoryStore;
    use minitwit_core::transfer::{TransferOptions, export};
    use minitwit_core::{HashCost, MessageText, MiniTwit, Registration, Store};
    use std::sync::Arc;
    {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let twit = MiniTwit::with_hash_cost(Arc::clone(&store), HashCost::Insecure);
        let mut users = Vec::new();
        for (name, password) in USERS {
            let email = format!("{}@example.com", name.replace(' ', "."));
            let registration = Registration::parse(name, &email, password, None).unwrap();
            users.push(twit.register(registration).await.unwrap());
        }
        for i in 1..=6 {
            let text = if i == 3 { "Grüße, 世界".to_owned() } else { format!("message {i}") };
            twit.post(&users[i % 2], MessageText::parse(&text).unwrap()).await.unwrap();
        }
        twit.follow(users[0].id, users[1].id).await.unwrap();
        twit.set_latest(42).await.unwrap();
        let file = tokio::fs::File::create(path).await.unwrap();
        let mut out = tokio::io::BufWriter::new(file);
        export(&store, &mut out, TransferOptions::default(), &mut ()).await.unwrap();
        tokio::io::AsyncWriteExt::flush(&mut out).await.unwrap();
    }
}

/// A scratch sled store loaded with the fixture; returns its URL.
pub fn fixture_store(scratch: &Scratch, name: &str) -> String {
    let file = scratch.path(&format!("{name}.fixture.jsonl"));
    write_fixture(&file);
    let url = scratch.sled(name);
    ok(&["--store", &url, "import", "--in", file.to_str().unwrap()]);
    url
}

/// `minitwit replay` of the simulator's scenario ([`scenario_path`]) against the API at
/// `base_url`, with `flags` added.
pub fn scenario_replay(base_url: &str, flags: &[&str]) -> Command {
    let mut command = minitwit(&["replay", "--csv"]);
    command.arg(scenario_path()).args(["--base-url", base_url]).args(flags);
    command
}

/// The simulator's scenario ([`scenario_path`]), decompressed.
pub fn scenario_text() -> String {
    let file = std::fs::File::open(scenario_path()).expect("the scenario is in data/");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
        .expect("the scenario decompresses");
    text
}
