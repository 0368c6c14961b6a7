//! The binary against real PostgreSQL (a throwaway server from minitwit-store-pg's
//! testkit): unreachable databases fail with one line, migrations, admin commands and
//! `serve` work, `check` finds a wrong kept home timeline and `--rebuild-home` mends it,
//! and the full simulator scenario (replayed through `minitwit serve`)
//! survives sled → PostgreSQL → sled exactly, with users still able to log in.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, fails, fixture_store, ok, scenario_replay, scenario_text, succeeds};
use minitwit_core::transfer::fingerprint;
use minitwit_core::{MiniTwit, PageSize, ServiceError, Store, Timeline};
use minitwit_store_pg::testkit::fresh_database_url;
use minitwit_store_sled::{SledOptions, SledStore};
use std::path::Path;
use std::sync::Arc;

#[test]
fn an_unreachable_database_fails_with_one_line() {
    let url = "postgres://minitwit:s3cret-pass@127.0.0.1:1/minitwit";
    let line = fails(&["--store", url, "stats"]);
    assert!(
        line.contains("cannot open the PostgreSQL store at postgres://minitwit:***@"),
        "{line}"
    );
    assert!(!line.contains("s3cret-pass"), "{line}");
    let scratch = Scratch::new();
    let line = fails(&["copy", "--from", &scratch.sled("a"), "--to", url]);
    assert!(line.contains("opening --to") && !line.contains("s3cret-pass"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_administer_a_postgres_store() {
    let (url, _db) = fresh_database_url().await;
    assert!(ok(&["--store", &url, "migrate"]).contains("postgres"));
    let scratch = Scratch::new();
    let file = scratch.path("fixture.jsonl");
    crate::common::write_fixture(&file);
    ok(&["--store", &url, "import", "--in", file.to_str().unwrap()]);
    ok(&["--store", &url, "message", "flag", "1", "2"]);
    let line = fails(&["--store", &url, "message", "unflag", "1", "77"]);
    assert!(line.contains("no message with id 77"), "{line}");
    assert_eq!(
        ok(&["--store", &url, "stats"]),
        "users\t3\nmessages\t6\nfollows\t1\nflagged\t2\nlatest\t42\n"
    );
    ok(&["--store", &url, "user", "disable", "bob"]);
    assert!(ok(&["--store", &url, "user", "list"]).contains("\tbob\tbob@example.com\tdisabled"));

    // And back to sled, exactly.
    let sled = fixture_store(&scratch, "unused");
    let line = fails(&["copy", "--from", &url, "--to", &sled]);
    assert!(line.contains("not empty"), "{line}");
    let copied = ok(&["copy", "--from", &url, "--to", &scratch.sled("copy")]);
    assert!(copied.contains("verified: 3 users, 6 messages (2 flagged), 1 follows"), "{copied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_wrong_kept_home_timeline_and_rebuild_home_mends_it() {
    let (url, _db) = fresh_database_url().await;
    let scratch = Scratch::new();
    let file = scratch.path("fixture.jsonl");
    crate::common::write_fixture(&file);
    ok(&["--store", &url, "import", "--in", file.to_str().unwrap()]);
    // alice's first home page starts keeping her home timeline: her and bob's 6 messages.
    let store = minitwit_store_pg::testkit::connect(&url).await;
    let alice = store.user_by_name("alice").await.unwrap().unwrap();
    store.timeline(Timeline::Home(alice.id), None, 30).await.unwrap();
    let clean = "home_entries_missing\t0\nhome_entries_extra\t0\nhome_follow_lists_wrong\t0\n";
    assert!(ok(&["--store", &url, "check"]).starts_with(clean));

    minitwit_store_pg::testkit::execute(
        &url,
        "DELETE FROM home_entries WHERE message_id IN (1, 2); DELETE FROM home_active_follows",
    )
    .await;
    let output = crate::common::run(&["--store", &url, "check"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("home_entries_missing\t2\n"), "{printed}");
    assert!(printed.contains("home_follow_lists_wrong\t1\n"), "{printed}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 problem(s) found"));
    assert!(ok(&["--store", &url, "check", "--rebuild-home"]).starts_with(clean));
}

/// Loads the whole scenario into a new sled store through the real thing: `minitwit
/// serve` on the store and `minitwit replay` of every action against it (about half a
/// minute in a debug build). Flags three messages so flags travel too. Returns the
/// registered users with their scenario passwords.
fn load_scenario(store: &str) -> Vec<(String, String)> {
    let server = crate::common::Server::start(store, &[]);
    let flags = ["--concurrency", "4", "--timeout-ms", "30000"];
    let report = succeeds(scenario_replay(&server.api, &flags));
    assert!(
        report.contains("actions sent:  25922") && report.contains("errors:        0"),
        "{report}"
    );
    let (status, _) = server.stop();
    assert!(status.success());
    ok(&["--store", store, "message", "flag", "3", "500", "11306"]);
    scenario_text()
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|fields| fields.get(3) == Some(&"register"))
        .map(|fields| (fields[4].to_owned(), fields[6].to_owned()))
        .collect()
}

fn open_sled(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir, SledOptions::default()).unwrap())
}

/// The `sha256 …` at the end of a copy's report.
fn checksum(report: &str) -> String {
    report.rsplit("sha256 ").next().unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_scenario_survives_sled_to_postgres_to_sled() {
    let scratch = Scratch::new();
    let (source_dir, target_dir) = (scratch.path("source"), scratch.path("target"));
    let source_url = scratch.sled("source");
    let users = load_scenario(&source_url);
    assert_eq!(users.len(), 200);
    let (pg, _db) = fresh_database_url().await;

    let there = ok(&["copy", "--from", &source_url, "--to", &pg]);
    let back = ok(&["copy", "--from", &pg, "--to", &scratch.sled("target")]);
    assert!(there.contains("verified: 200 users, 11306 messages (3 flagged)"), "{there}");
    assert_eq!(checksum(&there), checksum(&back), "{there}\n{back}");
    assert_eq!(ok(&["--store", &source_url, "stats"]), ok(&["--store", &pg, "stats"]));
    assert!(ok(&["--store", &pg, "stats"]).ends_with("latest\t25921\n"));

    // Independently of the copy's own verification: the same records in the same order.
    let source = open_sled(&source_dir);
    let target = open_sled(&target_dir);
    assert_eq!(fingerprint(&source).await.unwrap(), fingerprint(&target).await.unwrap());
    let page = |store: &Arc<dyn Store>| {
        let twit = MiniTwit::new(Arc::clone(store));
        async move { twit.timeline(Timeline::Public, None, PageSize::PER_PAGE).await.unwrap() }
    };
    assert_eq!(page(&source).await, page(&target).await);

    // The copied users log in with their scenario passwords.
    let twit = MiniTwit::new(Arc::clone(&target));
    for (name, password) in [&users[0], &users[99], &users[199]] {
        let user = twit.authenticate(name, password).await.unwrap();
        assert_eq!(&user.username, name);
    }
    let wrong = twit.authenticate(&users[0].0, "not-the-password").await;
    assert_eq!(wrong.unwrap_err(), ServiceError::InvalidPassword);

    // And through the web site served from the copy.
    drop((twit, source, target));
    let server = crate::common::Server::start(&scratch.sled("target"), &[]);
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (name, password) = &users[42];
    let login = client
        .post(format!("{}/login", server.web))
        .form(&[("username", name.as_str()), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 302, "{name} logs in on the copy");
    assert_eq!(login.headers()["location"], "/");
    let (status, _) = server.stop();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_postgres() {
    let (url, _db) = fresh_database_url().await;
    let server = crate::common::Server::start(&url, &["--pg-max-connections", "3"]);
    let client = crate::common::http();
    let ready = client.get(format!("{}/ready", server.web)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = client.get(format!("{}/metrics", server.api)).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains(r#"backend="postgres",operation="ping",outcome="ok""#), "{text}");
    let (status, _) = server.stop();
    assert!(status.success());
}
