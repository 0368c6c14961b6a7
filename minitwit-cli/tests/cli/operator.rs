//! The operator's command line: empty environment variables count as unset, `--json`
//! on list, show and stats, `verify FILE`, export to stdout and to `.gz`, `migrate
//! --check`, and `--yes` on deleting.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, fails, failure_line, fixture_store, minitwit, ok};
use minitwit_store_pg::testkit::empty_database_url;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    let scratch = Scratch::new();
    // MINITWIT_STORE= is the default store in the working directory, not a bad URL.
    let output = minitwit(&["stats"])
        .current_dir(scratch.dir.path())
        .env("MINITWIT_STORE", "")
        .env("MINITWIT_PG_MAX_CONNECTIONS", "")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(scratch.path("minitwit-data").is_dir());

    // MINITWIT_SESSION_KEY= means "no key given" (one is kept in the store), so serve
    // starts instead of refusing a key of 0 bytes.
    let mut child = minitwit(&["serve", "--web-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"])
        .current_dir(scratch.dir.path())
        .env("MINITWIT_STORE", scratch.sled("served"))
        .env("MINITWIT_SESSION_KEY", "")
        .env("MINITWIT_DRAIN_DELAY_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    crate::common::signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    assert!(first.starts_with("web site listening"), "{first}{:?}", output);
    assert!(output.status.success());
}

#[test]
fn json_output_on_list_show_and_stats() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let users = json_lines(&ok(&["--store", &store, "user", "list", "--json"]));
    assert_eq!(users.len(), 3);
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[2]["username"], "Roger Histand");
    assert_eq!(users[0]["disabled"], false);
    assert!(users[0].get("pw_hash").is_none() && !users[0].to_string().contains("argon2"));

    let bob: Value =
        serde_json::from_str(&ok(&["--store", &store, "user", "show", "bob", "--json"])).unwrap();
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["id"], users[1]["id"]);

    ok(&["--store", &store, "message", "flag", "3"]);
    let messages = json_lines(&ok(&["--store", &store, "message", "list", "--json"]));
    assert_eq!(messages.len(), 6);
    assert_eq!(messages[0]["id"], 6, "newest first");
    let third = messages.iter().find(|m| m["id"] == 3).unwrap();
    assert_eq!(third["text"], "Grüße, 世界");
    assert_eq!(third["flagged"], true);
    assert!(third["pub_date"].is_i64() && third["author"].is_string());

    let stats: Value = serde_json::from_str(&ok(&["--store", &store, "stats", "--json"])).unwrap();
    let expected =
        serde_json::json!({"users": 3, "messages": 6, "follows": 1, "flagged": 1, "latest": 42});
    assert_eq!(stats, expected);
}

#[test]
fn exports_go_to_gzip_files_and_stdout_and_verify_checks_them() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let gz = scratch.path("backup.jsonl.gz");
    let exported = ok(&["--store", &store, "export", "--out", gz.to_str().unwrap()]);
    let bytes = std::fs::read(&gz).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip file");
    let verified = ok(&["verify", gz.to_str().unwrap()]);
    let checksum = |s: &str| s.rsplit("sha256 ").next().unwrap().trim().to_owned();
    assert_eq!(checksum(&exported), checksum(&verified), "{exported} / {verified}");

    // Restored from the .gz, the store is the same.
    let restored = scratch.sled("restored");
    ok(&["--store", &restored, "import", "--in", gz.to_str().unwrap()]);
    assert_eq!(ok(&["--store", &restored, "stats"]), ok(&["--store", &store, "stats"]));

    // To stdout: the export is all stdout holds, and verify reads it from stdin.
    let output = minitwit(&["--store", &store, "export", "--out", "-"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("exported to standard output"));
    let plain = String::from_utf8(output.stdout).unwrap();
    let from_stdin = crate::common::run_with_stdin(&["verify", "-"], &plain);
    assert!(from_stdin.status.success());
    assert_eq!(checksum(&String::from_utf8_lossy(&from_stdin.stdout)), checksum(&verified));

    // A truncated file is refused, by verify and by import alike.
    let cut = scratch.path("cut.jsonl");
    std::fs::write(&cut, &plain[..plain.len() - 40]).unwrap();
    let line = fails(&["verify", cut.to_str().unwrap()]);
    assert!(line.contains("is not a complete export"), "{line}");
    let cut_gz = scratch.path("cut.jsonl.gz");
    std::fs::write(&cut_gz, &bytes[..bytes.len() / 2]).unwrap();
    let line = fails(&["verify", cut_gz.to_str().unwrap()]);
    assert!(line.contains("is not a complete export"), "{line}");
    let line = fails(&["--store", &scratch.sled("other"), "import", "--in", "-"]);
    assert!(line.contains("save it to a file"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_check_tells_whether_migrations_are_pending() {
    let (url, _db) = empty_database_url().await;
    let output = minitwit(&["--store", &url, "migrate", "--check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.starts_with("pending\t") && stdout.contains("schema"), "{stdout}");
    let line = failure_line(&output, &[]);
    assert!(line.contains("pending") && line.contains("run `minitwit migrate`"), "{line}");

    ok(&["--store", &url, "migrate"]);
    assert!(ok(&["--store", &url, "migrate", "--check"]).starts_with("no pending migrations"));
    let scratch = Scratch::new();
    assert!(ok(&["--store", &scratch.sled("db"), "migrate", "--check"]).contains("no pending"));
}

#[test]
fn deleting_a_user_needs_yes_when_no_one_can_be_asked() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let line = fails(&["--store", &store, "user", "delete", "bob"]);
    assert!(line.contains("without --yes"), "{line}");
    assert!(ok(&["--store", &store, "user", "show", "bob"]).contains("\tbob\t"), "unchanged");
    ok(&["--store", &store, "user", "delete", "bob", "--yes"]);
    assert!(fails(&["--store", &store, "user", "show", "bob"]).contains("no user named"));
}
