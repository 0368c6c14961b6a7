//! Imports are all or nothing on both stores, with a real store failure in the middle:
//! PostgreSQL with a trigger that raises on one row of a later batch (the import undoes
//! itself), sled with an injected sync failure (the store stops, so the mark of the
//! import stays; the store is not served until `import --undo`).

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, fails, minitwit, ok, run_with_stdin};
use minitwit_core::Store;
use minitwit_core::transfer::{Fingerprint, fingerprint};
use minitwit_store_pg::testkit::{connect, execute, fresh_database_url};
use minitwit_store_sled::{SledOptions, SledStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An export of 1,500 users, 2,500 messages and 3,000 follows: seven batches of 1,000.
fn large_export(scratch: &Scratch) -> PathBuf {
    let source = scratch.sled("source");
    ok(&[
        "--store",
        &source,
        "generate",
        "--users",
        "1500",
        "--follows",
        "2",
        "--messages",
        "2500",
    ]);
    let file = scratch.path("large.jsonl");
    ok(&["--store", &source, "export", "--out", file.to_str().unwrap()]);
    file
}

/// What a sled store holds, read in this process (the store is closed again after).
async fn sled_fingerprint(dir: &Path) -> Fingerprint {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir, SledOptions::default()).unwrap());
    fingerprint(&store).await.unwrap()
}

/// What a PostgreSQL store holds.
async fn pg_fingerprint(url: &str) -> Fingerprint {
    let store: Arc<dyn Store> = Arc::new(connect(url).await);
    fingerprint(&store).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_import_failing_midway_leaves_the_target_as_it_was() {
    let scratch = Scratch::new();
    let file = large_export(&scratch);
    let (url, _db) = fresh_database_url().await;
    // The target holds data of its own (ids far above the file's), imported with --force.
    execute(&url, "SELECT setval(pg_get_serial_sequence('users', 'id'), 100000)").await;
    let create = ["--store", &url, "user", "create", "zed", "zed@example.com", "--password-stdin"];
    assert!(run_with_stdin(&create, "zed-password\n").status.success());
    execute(
        &url,
        "CREATE FUNCTION fail_once() RETURNS TRIGGER LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'injected failure on message %', NEW.id; END $$;
         CREATE TRIGGER fail_once BEFORE INSERT ON messages
           FOR EACH ROW WHEN (NEW.id = 2000) EXECUTE FUNCTION fail_once();",
    )
    .await;
    let before = pg_fingerprint(&url).await;

    let args = ["--store", &url, "import", "--in", file.to_str().unwrap(), "--force"];
    let line = fails(&args);
    assert!(line.contains("injected failure on message 2000"), "{line}");
    assert!(line.contains("nothing was imported"), "{line}");
    assert_eq!(pg_fingerprint(&url).await, before, "the failed import left records behind");
    // No mark is left: the store is served and administered as before.
    assert!(ok(&["--store", &url, "stats"]).contains("users"));

    execute(&url, "DROP TRIGGER fail_once ON messages").await;
    let imported = ok(&args);
    assert!(imported.starts_with("imported and verified"), "{imported}");
    assert_eq!(pg_fingerprint(&url).await.counts.messages, before.counts.messages + 2500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_import_stopped_by_a_failed_sync_is_not_served_until_undone() {
    let scratch = Scratch::new();
    let file = large_export(&scratch);
    let target = scratch.sled("target");
    let dir = scratch.path("target");
    ok(&["--store", &target, "migrate"]);
    let before = sled_fingerprint(&dir).await;

    // Sync 1 is the mark, sync 2 the first batch: the second batch's sync fails.
    let output = minitwit(&["--store", &target, "import", "--in", file.to_str().unwrap()])
        .env("MINITWIT_FAULT_FAIL_SYNC", "3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("injected sync failure"), "{stderr}");
    assert!(stderr.contains("--undo"), "the message names the fix: {stderr}");

    // Reopened, the store holds part of the file: every command but import refuses.
    for args in [&["stats"][..], &["export", "--out", "-"], &["serve", "--web-addr", "127.0.0.1:0"]]
    {
        let line = fails(&[&["--store", target.as_str()][..], args].concat());
        assert!(line.contains("did not finish") && line.contains("--undo"), "{args:?}: {line}");
    }
    let line = fails(&["--store", &target, "import", "--in", file.to_str().unwrap()]);
    assert!(line.contains("did not finish"), "{line}");

    let undone = ok(&["--store", &target, "import", "--in", file.to_str().unwrap(), "--undo"]);
    assert!(undone.starts_with("removed the records"), "{undone}");
    assert_eq!(sled_fingerprint(&dir).await, before, "the undo left records behind");
    let line = fails(&["--store", &target, "import", "--in", file.to_str().unwrap(), "--undo"]);
    assert!(line.contains("nothing to undo"), "{line}");

    let imported = ok(&["--store", &target, "import", "--in", file.to_str().unwrap()]);
    assert!(imported.starts_with("imported and verified"), "{imported}");
    assert_eq!(sled_fingerprint(&dir).await.counts.messages, 2500);
}
