//! `pg-cluster`: a throwaway PostgreSQL ([`TestCluster`]) for scripts, so that the
//! benchmarks start their servers as the tests do. `pg-cluster --help` ([`HELP`]) says
//! how to drive it: URLs on standard output, requests for databases on standard input,
//! and standard input closing to stop.

use minitwit_test_support::TestCluster;
use std::io::BufRead;
use std::process::ExitCode;

/// The one-line usage.
const USAGE: &str = "usage: pg-cluster [--durable] [--standby] [--database NAME]";

/// What `--help` prints after the usage.
const HELP: &str = "Starts a throwaway PostgreSQL primary (test settings; --durable: commits
durable as in production), creates database NAME on it when given, and with --standby a
streaming hot standby of it. Prints `primary URL` (and `standby URL`), one line each,
naming NAME (or `postgres`). Each line then read from standard input names another
database to create on the primary, answered by its URL on a line. When standard input
closes, the servers stop and their files are deleted (killed, the same happens).";

/// What to start.
#[derive(Debug, Default)]
struct Request {
    help: bool,
    durable: bool,
    standby: bool,
    database: Option<String>,
}

fn main() -> ExitCode {
    let request = match parse(std::env::args().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("pg-cluster: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if request.help {
        println!("{USAGE}\n\n{HELP}");
        return ExitCode::SUCCESS;
    }
    match serve(&request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pg-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Request, String> {
    let mut request = Request::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--durable" => request.durable = true,
            "--standby" => request.standby = true,
            "--database" => {
                let name = args.next().ok_or("--database needs a name")?;
                request.database = Some(checked_name(name)?);
            }
            "-h" | "--help" => request.help = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(request)
}

/// `name` when it is a plain database name (it goes into URLs as it is).
fn checked_name(name: String) -> Result<String, String> {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain && !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) {
        Ok(name)
    } else {
        Err(format!("{name:?} is not a plain database name (letters, digits, _)"))
    }
}

/// Starts the servers, prints their URLs and answers requests for databases until
/// standard input closes; the clusters are dropped (stopped, deleted) on return. A
/// request that cannot be answered ends it too: the caller sees standard output close.
fn serve(request: &Request) -> Result<(), Box<dyn std::error::Error>> {
    let primary =
        if request.durable { TestCluster::start_durable()? } else { TestCluster::start()? };
    let database = request.database.as_deref().unwrap_or("postgres");
    if request.database.is_some() {
        primary.create_database(database)?;
    }
    println!("primary {}", primary.url(database));
    let standby = request.standby.then(|| primary.start_standby()).transpose()?;
    if let Some(standby) = &standby {
        println!("standby {}", standby.url(database));
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        let name = checked_name(name.to_owned())?;
        println!("{}", primary.create_database(&name)?);
    }
    // The standby first: it streams from the primary.
    drop(standby);
    Ok(())
}
