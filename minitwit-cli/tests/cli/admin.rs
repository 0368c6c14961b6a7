//! `minitwit user …`, `message …`, `stats` and `migrate` run as the real binary on a
//! scratch sled store: their success paths, and their failures (unknown names, bad and
//! unknown ids, unknown store schemes) as one line on stderr with nothing changed.

#![allow(clippy::unwrap_used)]

use crate::common::{Scratch, fails, fixture_store, ok, run, run_with_stdin};

#[test]
fn users_are_created_listed_disabled_and_deleted() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    let created = run_with_stdin(
        &["--store", &store, "user", "create", "carol", "c@x.org", "--password-stdin"],
        "pw\n",
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("created user 1 (carol)"));
    ok(&["--store", &store, "user", "create", "Åse Ødegård", "a@x.org", "--password", "pw2"]);

    let list = ok(&["--store", &store, "user", "list"]);
    assert_eq!(list, "1\tcarol\tc@x.org\tactive\n2\tÅse Ødegård\ta@x.org\tactive\n");
    assert!(!list.contains("argon2"), "hashes are never shown");
    assert_eq!(
        ok(&["--store", &store, "user", "list", "--limit", "1", "--after", "1"]).lines().count(),
        1
    );

    ok(&["--store", &store, "user", "disable", "carol"]);
    assert!(ok(&["--store", &store, "user", "show", "carol"]).ends_with("\tdisabled\n"));
    ok(&["--store", &store, "user", "enable", "carol"]);
    assert!(ok(&["--store", &store, "user", "show", "carol"]).ends_with("\tactive\n"));
    ok(&["--store", &store, "user", "password", "carol", "--password", "new-pw"]);

    ok(&["--store", &store, "user", "delete", "carol", "--yes"]);
    let line = fails(&["--store", &store, "user", "show", "carol"]);
    assert_eq!(line, r#"error: no user named "carol""#);
    assert!(ok(&["--store", &store, "stats"]).starts_with("users\t1\n"));
}

#[test]
fn user_commands_refuse_bad_input() {
    let scratch = Scratch::new();
    let store = scratch.sled("db");
    ok(&["--store", &store, "user", "create", "dave", "d@x.org", "--password", "pw"]);
    let taken =
        fails(&["--store", &store, "user", "create", "dave", "e@x.org", "--password", "pw"]);
    assert_eq!(taken, "error: The username is already taken");
    let bad_email = fails(&["--store", &store, "user", "create", "eve", "nope", "--password", "p"]);
    assert_eq!(bad_email, "error: You have to enter a valid email address");
    let no_password = run_with_stdin(
        &["--store", &store, "user", "create", "eve", "e@x", "--password-stdin"],
        "",
    );
    assert_eq!(crate::common::failure_line(&no_password, &[]), "error: no password on stdin");
    for command in [&["disable"][..], &["enable"], &["delete", "--yes"]] {
        let args = [&["--store", &store, "user"], command, &["nobody"]].concat();
        assert_eq!(fails(&args), r#"error: no user named "nobody""#);
    }
    // A password is required, from exactly one source: a usage error (clap's status 2).
    let output = run(&["--store", &store, "user", "create", "eve", "e@x.org"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(ok(&["--store", &store, "user", "list"]).lines().count(), 1);
}

#[test]
fn messages_are_listed_flagged_and_unflagged_by_id() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let all = ok(&["--store", &store, "message", "list"]);
    assert_eq!(all.lines().count(), 6);
    assert!(all.lines().next().unwrap().starts_with("6\t"), "newest first: {all}");
    assert!(all.contains("\tGrüße, 世界"), "{all}");

    assert_eq!(ok(&["--store", &store, "message", "flag", "2", "4"]), "flagged 2 message(s)\n");
    let flagged = ok(&["--store", &store, "message", "list", "--flagged"]);
    let ids: Vec<&str> = flagged.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(ids, ["4", "2"]);
    assert!(flagged.lines().all(|l| l.contains("\tflagged\t")));
    let bobs = ok(&["--store", &store, "message", "list", "--user", "bob", "--limit", "2"]);
    assert_eq!(bobs.lines().count(), 2);
    assert!(bobs.lines().all(|l| l.split('\t').nth(2) == Some("bob")), "{bobs}");
    assert_eq!(ok(&["--store", &store, "message", "list", "--unflagged"]).lines().count(), 4);

    ok(&["--store", &store, "message", "unflag", "4"]);
    assert!(ok(&["--store", &store, "stats"]).contains("flagged\t1\n"));
}

#[test]
fn unknown_or_malformed_message_ids_change_nothing() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    let line = fails(&["--store", &store, "message", "flag", "1", "999", "2"]);
    assert_eq!(line, "error: no message with id 999; nothing was changed");
    assert!(ok(&["--store", &store, "stats"]).contains("flagged\t0\n"), "nothing partial");
    let line = fails(&["--store", &store, "message", "unflag", "998", "1", "999"]);
    assert_eq!(line, "error: no messages with ids 998, 999; nothing was changed");

    // The original flag_tool pasted its arguments into SQL; here they must be integers.
    for bad in ["1;DROP TABLE message", "abc", "1.5"] {
        let output = run(&["--store", &store, "message", "flag", bad]);
        assert_eq!(output.status.code(), Some(2), "usage error for {bad:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value"));
    }
    assert_eq!(run(&["--store", &store, "message", "flag"]).status.code(), Some(2));
    let unknown_user = fails(&["--store", &store, "message", "list", "--user", "nobody"]);
    assert_eq!(unknown_user, r#"error: no user named "nobody""#);
}

#[test]
fn stats_and_migrate_report_the_store() {
    let scratch = Scratch::new();
    let store = fixture_store(&scratch, "db");
    assert_eq!(
        ok(&["--store", &store, "stats"]),
        "users\t3\nmessages\t6\nfollows\t1\nflagged\t0\nlatest\t42\n"
    );
    assert!(ok(&["--store", &store, "migrate"]).contains("up to date"));
}

#[test]
fn unknown_store_urls_fail_with_one_line() {
    for url in ["mysql://user:secret@host/db", "./just-a-path", "sled:"] {
        let line = fails(&["--store", url, "stats"]);
        assert!(line.contains("sled:PATH") || line.contains("needs a directory"), "{line}");
        assert!(!line.contains("secret"), "passwords are never printed: {line}");
    }
    let env_url =
        crate::common::minitwit(&["stats"]).env("MINITWIT_STORE", "redis://x").output().unwrap();
    assert!(crate::common::failure_line(&env_url, &[]).contains("redis://x"));
}
