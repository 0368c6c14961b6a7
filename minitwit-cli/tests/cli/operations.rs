//! OPERATIONS.md is run, not just read: its `sh` blocks run in order as one bash script
//! (with `minitwit` on PATH, a sled store, a throwaway PostgreSQL and a backup
//! directory), every fenced block carries a known label, and the Kubernetes manifests its
//! `sh-k8s` blocks apply hold what the guide promises.

#![allow(clippy::unwrap_used)]

use crate::common::{BIN, Scratch, fixture_store, ok};
use minitwit_store_pg::testkit::fresh_database_url;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The labels a fenced block of the guide may carry, and who runs it.
const LABELS: [&str; 6] = [
    "sh",           // this test
    "sh-container", // the container suite
    "sh-ha",        // the high-availability suite (scripts/ha-test)
    "sh-k8s",       // a Kubernetes cluster (manifests checked below)
    "sh-tls",       // tls.rs, with its own host and certificate
    "crontab",      // schedules of the `sh` commands above them
];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The bodies of OPERATIONS.md's fenced blocks labelled `label`, joined into one script.
pub fn guide_script(label: &str) -> String {
    let guide = std::fs::read_to_string(repository().join("OPERATIONS.md")).unwrap();
    blocks(&guide).into_iter().filter(|(l, _)| l == label).map(|(_, body)| body).collect()
}

/// Runs `script` with `bash -euo pipefail` from the repository, with `minitwit` (a link
/// in `scratch`) first on PATH, no `MINITWIT_*` variable but `env`; asserts success.
pub fn run_script(script: &str, scratch: &Scratch, env: &[(&str, &str)]) -> String {
    let bin = scratch.path("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(BIN, bin.join("minitwit")).unwrap();
    }
    let mut bash = Command::new("bash");
    for (key, _) in std::env::vars() {
        if key.starts_with("MINITWIT_") || key == "RUST_LOG" {
            bash.env_remove(key);
        }
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    bash.args(["-euo", "pipefail", "-c", script]).current_dir(repository()).env("PATH", path);
    let output = bash.envs(env.iter().copied()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "OPERATIONS.md's commands failed ({}):\n{stdout}\n{}\nscript:\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The fenced blocks of `text`: (label, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        match (line.strip_prefix("```"), current.take()) {
            (Some(_), Some(block)) => found.push(block),
            (Some(label), None) => current = Some((label.trim().to_owned(), String::new())),
            (None, Some((label, mut body))) => {
                body.push_str(line);
                body.push('\n');
                current = Some((label, body));
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed fenced block in OPERATIONS.md");
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sh_command_of_the_operations_guide_runs() {
    let guide = std::fs::read_to_string(repository().join("OPERATIONS.md")).unwrap();
    for (label, body) in blocks(&guide) {
        assert!(LABELS.contains(&label.as_str()), "unknown block label {label:?}:\n{body}");
    }
    let script = guide_script("sh");
    assert!(script.lines().count() > 20, "{script}");

    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "data");
    let (pg_url, _db) = fresh_database_url().await;
    let fixture = scratch.path("fixture.jsonl");
    crate::common::write_fixture(&fixture);
    ok(&["--store", &pg_url, "import", "--in", fixture.to_str().unwrap()]);
    let backups = scratch.path("backups");
    std::fs::create_dir(&backups).unwrap();
    let env = [
        ("MINITWIT_STORE", store.as_str()),
        ("PG_URL", pg_url.as_str()),
        ("BACKUP_DIR", backups.to_str().unwrap()),
    ];
    run_script(&script, &scratch, &env);
}

#[test]
fn the_kubernetes_manifests_are_safe_by_default() {
    let k8s = repository().join("deploy/k8s");
    let app = std::fs::read_to_string(k8s.join("minitwit.yaml")).unwrap();
    let db = std::fs::read_to_string(k8s.join("postgres.yaml")).unwrap();
    for (what, needle) in [
        ("a startup probe", "startupProbe:"),
        ("migrations as their own step", "args: [\"migrate\"]"),
        ("a CPU limit", "limits: { cpu: \"2\", memory: 256Mi }"),
        ("a pinned image", "image: minitwit:0.1.0"),
        ("the drain delay", "MINITWIT_DRAIN_DELAY_SECS, value: \"10\""),
        ("the pool size of the budget", "MINITWIT_PG_MAX_CONNECTIONS, value: \"8\""),
        ("the replicas of the budget", "maxReplicas: 8"),
        ("the session key from the Secret", "key: session-key"),
        ("the simulator password from the Secret", "key: sim-password"),
    ] {
        assert!(app.contains(needle), "minitwit.yaml lacks {what} ({needle})");
    }
    for (what, needle) in [
        ("a NetworkPolicy", "kind: NetworkPolicy"),
        ("ingress from the app only", "matchLabels: { app: minitwit }"),
        ("the password from a Secret", "secretKeyRef: { name: minitwit-postgres, key: password }"),
    ] {
        assert!(db.contains(needle), "postgres.yaml lacks {what} ({needle})");
    }
    for text in [&app, &db] {
        assert!(!text.contains(":latest") && !text.contains("optional: true"), "{text}");
        assert!(!text.contains("NodePort") && !text.contains("LoadBalancer"), "{text}");
    }
}
