//! `minitwit serve` as a child process: the shipped binary itself, for the tests that
//! need several processes over one store (each its own pool, caches and change-feed
//! listener, as replicas run). The binary is built first with this test's profile
//! (cargo does nothing when it is fresh), so a test never runs a stale one, and with the
//! sled store's sync-failure seam, as `minitwit-cli`'s own tests build it: both share
//! `target/PROFILE/minitwit`, and a build without the seam would take it from their
//! fault tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A running `minitwit serve`, killed when dropped.
pub struct ServeProcess {
    /// The site's base URL (`http://127.0.0.1:PORT`).
    pub web: String,
    child: Child,
}

impl ServeProcess {
    /// Starts `minitwit --store STORE serve` on free loopback ports and waits until it
    /// says where it listens; it stops at once on SIGTERM.
    pub async fn start(store: &str) -> Self {
        Self::start_with(store, &["--drain-delay-secs", "0"]).await
    }

    /// [`ServeProcess::start`] with more arguments of `serve`.
    pub async fn start_with(store: &str, extra: &[&str]) -> Self {
        let mut command = Command::new(tokio::task::block_in_place(binary));
        // Only the arguments given here configure it.
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("MINITWIT_")) {
            command.env_remove(key);
        }
        let mut child = command
            .args(["--store", store, "serve", "--web-addr", "127.0.0.1:0"])
            .args(["--api-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("minitwit serve starts");
        let stdout = child.stdout.take().expect("its stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let web = address(&mut lines, "web site listening on ").await;
        address(&mut lines, "simulator API listening on ").await;
        // Read to the end: a closed pipe would fail the server's next line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { web, child }
    }

    /// Sends SIGTERM, as an orchestrator stopping it does.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.expect("kill runs").success(), "SIGTERM sent");
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("its status").is_some()
    }
}

/// Reads lines until one starts with `prefix`; the URL after it.
async fn address(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    while let Some(line) = lines.next_line().await.expect("reading its stdout") {
        if let Some(url) = line.trim_end().strip_prefix(prefix) {
            return url.to_owned();
        }
    }
    panic!("minitwit serve exited before printing {prefix:?}");
}

/// The `minitwit` binary of the profile this test was built with, built once per run.
fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    // target/PROFILE/deps/e2e-HASH
    let profile_dir = test.parent().and_then(Path::parent).expect("a cargo target layout");
    let target_dir = profile_dir.parent().expect("a cargo target layout");
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile name");
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "minitwit-cli", "--bin", "minitwit"])
        .args(["--features", "minitwit-store-sled/fault-injection", "--profile"])
        .arg(profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the minitwit binary failed");
    profile_dir.join("minitwit")
}
