//! `minitwit export`, `import` and `copy` as the real binary on scratch sled stores: round
//! trips are exact, files are never overwritten or half-written, bad files and non-empty
//! targets are refused with one line and nothing written; `check` reads a whole store.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, fails, fixture_store, ok};

fn export(store: &str, file: &std::path::Path) -> String {
    ok(&["--store", store, "export", "--out", file.to_str().unwrap()])
}

fn stats(store: &str) -> String {
    ok(&["--store", store, "stats"])
}

#[test]
fn export_then_import_round_trips_exactly() {
    let scratch = Scratch::new();
    let source = fixture_store(&scratch, "source");
    ok(&["--store", &source, "message", "flag", "3"]);
    ok(&["--store", &source, "user", "disable", "bob"]);
    let file = scratch.path("export.jsonl");
    let exported = export(&source, &file);
    assert!(
        exported.contains("3 users, 6 messages (1 flagged), 1 follows, latest 42"),
        "{exported}"
    );

    let target = scratch.sled("target");
    let imported = ok(&["--store", &target, "import", "--in", file.to_str().unwrap()]);
    assert!(imported.starts_with("imported and verified"), "{imported}");
    let checksum = |s: &str| s.rsplit("sha256 ").next().unwrap().trim().to_owned();
    assert_eq!(checksum(&exported), checksum(&imported));

    // Exported again, the copy gives the same records (the header's time aside).
    let again = scratch.path("again.jsonl");
    export(&target, &again);
    let body = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap().lines().skip(1).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(body(&file), body(&again));
    assert_eq!(stats(&source), stats(&target));
    assert!(ok(&["--store", &target, "user", "show", "bob"]).ends_with("\tdisabled\n"));
}

#[test]
fn exports_never_overwrite_or_leave_partial_files() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let file = scratch.path("out.jsonl");
    std::fs::write(&file, "precious").unwrap();
    let line = fails(&["--store", &store, "export", "--out", file.to_str().unwrap()]);
    assert!(line.contains("exists; pass --force"), "{line}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    export_forced(&store, &file);
    assert!(std::fs::read_to_string(&file).unwrap().starts_with("{\"format\":\"minitwit-export\""));

    let missing_dir = scratch.path("no/such/dir/out.jsonl");
    let line = fails(&["--store", &store, "export", "--out", missing_dir.to_str().unwrap()]);
    assert!(line.contains("creating"), "{line}");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn export_forced(store: &str, file: &std::path::Path) {
    ok(&["--store", store, "export", "--out", file.to_str().unwrap(), "--force"]);
}

#[test]
fn bad_files_are_refused_and_write_nothing() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let file = scratch.path("good.jsonl");
    export(&store, &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let cut = &text[..text.len() * 2 / 3];
    let garbled = text.replacen("message 1", "MESSAGE 1", 1);
    let cases = [
        ("truncated.jsonl", cut.to_owned(), "truncated"),
        ("garbled.jsonl", garbled, "malformed at line"),
        ("foreign.csv", "id,name\n1,x\n".to_owned(), "not a minitwit export"),
        ("empty.jsonl", String::new(), "the file is empty"),
    ];
    for (name, content, expected) in cases {
        let path = scratch.path(name);
        std::fs::write(&path, content).unwrap();
        let target = scratch.sled(&format!("target-{name}"));
        let line = fails(&["--store", &target, "import", "--in", path.to_str().unwrap()]);
        assert!(line.contains(expected), "{name}: {line}");
        assert!(stats(&target).starts_with("users\t0\nmessages\t0\n"), "{name}: nothing written");
    }
    let missing = scratch.path("missing.jsonl");
    let line = fails(&["--store", &scratch.sled("t"), "import", "--in", missing.to_str().unwrap()]);
    assert!(line.contains("missing.jsonl") && line.contains("No such file"), "{line}");
}

#[test]
fn a_non_empty_target_is_refused() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let file = scratch.path("export.jsonl");
    export(&store, &file);
    let before = stats(&store);
    let line = fails(&["--store", &store, "import", "--in", file.to_str().unwrap()]);
    assert!(line.contains("not empty"), "{line}");
    let line = fails(&["copy", "--from", &store, "--to", &fixture_store(&scratch, "other")]);
    assert!(line.contains("not empty"), "{line}");
    assert_eq!(stats(&store), before);
}

#[test]
fn copy_between_sled_stores_is_verified() {
    let scratch = Scratch::new();
    let source = fixture_store(&scratch, "source");
    let target = scratch.sled("target");
    let copied = ok(&["copy", "--from", &source, "--to", &target, "--batch-size", "2"]);
    assert!(
        copied.contains("verified: 3 users, 6 messages (0 flagged), 1 follows, latest 42"),
        "{copied}"
    );
    assert_eq!(stats(&source), stats(&target));

    let line = fails(&["copy", "--from", &source, "--to", &source]);
    assert!(line.contains("same store"), "{line}");
    let line = fails(&["copy", "--from", "ftp://x", "--to", &target]);
    assert!(line.contains("unknown store URL"), "{line}");
}

#[test]
fn check_reads_a_whole_sled_store() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "checked");
    assert_eq!(
        ok(&["--store", &store, "check"]),
        format!("users\t3\nmessages\t6\nfollows\t1\nflagged\t0\n{store} is consistent\n")
    );
    let line = fails(&["--store", &store, "check", "--rebuild-home"]);
    assert!(line.contains("nothing to rebuild"), "{line}");
}
