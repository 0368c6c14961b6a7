//! The `pg-cluster` program as the scripts drive it: a durable primary with a database
//! and a standby, their URLs on standard output, one more database asked for on
//! standard input; closing standard input stops both servers and deletes their files.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The directory (a server's socket and files) named by `url`'s `host=` parameter.
fn directory(url: &str) -> PathBuf {
    let (_, host) = url.split_once("?host=").unwrap_or_else(|| panic!("no host in {url}"));
    PathBuf::from(host)
}

#[test]
fn serves_urls_and_databases_until_standard_input_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pg-cluster"))
        .args(["--durable", "--standby", "--database", "bench"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg-cluster starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut line = || lines.next().expect("a line").expect("text");
    let (primary, standby) = (line(), line());
    let primary = primary.strip_prefix("primary ").expect("the primary first");
    let standby = standby.strip_prefix("standby ").expect("then the standby");
    assert!(primary.starts_with("postgres://postgres@localhost:5432/bench?host=/"), "{primary}");
    assert!(standby.contains("/bench?host=/"), "{standby}");
    let directories = [directory(primary), directory(standby)];
    assert_ne!(directories[0], directories[1]);
    assert!(directories.iter().all(|dir| dir.join(".s.PGSQL.5432").exists()), "sockets");

    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "another").expect("asking for a database");
    let another = line();
    assert_eq!(another, primary.replace("/bench?", "/another?"));

    drop(stdin);
    assert!(child.wait().expect("pg-cluster exits").success());
    assert!(directories.iter().all(|dir| !dir.exists()), "both servers' files are deleted");
}

#[test]
fn refuses_a_database_name_it_cannot_put_in_a_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_pg-cluster"))
        .args(["--database", "a/b"])
        .stdin(Stdio::null())
        .output()
        .expect("pg-cluster runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a plain database name") && stderr.contains("usage"), "{stderr}");
}
