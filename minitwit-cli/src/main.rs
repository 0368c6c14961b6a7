//! The `minitwit` binary: the composition root of MiniTwit. It picks the store from a
//! URL, serves both front ends, and runs the administration and data commands.
//!
//! Layout:
//! - [`cli`]: the command line (clap), every flag also an environment variable.
//! - [`store_url`]: `sled:PATH` / `postgres://…` to an opened store.
//! - [`admin`]: `user …`, `message …`, `stats`.
//! - [`data`]: `export`, `import`, `copy`, `verify`.
//! - [`generate`]: `generate`, a synthetic data set.
//! - [`serve_command`]: `serve`, the library's server assembly run until a signal.
//! - [`replay`]: `replay`, the simulator client.
//! - [`health`]: `health`, the container health check.
//! - [`logging`]: the tracing subscriber.
//!
//! Every failure ends as one line on stderr (`error: …`) and exit status 1; nothing
//! panics on bad input.

mod admin;
mod cli;
mod data;
mod generate;
mod health;
mod logging;
mod replay;
mod serve_command;
mod store_url;

use anyhow::Result;
use cli::{CheckArgs, Cli, Command, MigrateArgs, StoreCommand};
use minitwit_core::{MiniTwit, Store, transfer};
use std::process::ExitCode;
use std::sync::Arc;
use store_url::StoreUrl;

/// Threads for blocking work (sled writes, password hashing): writes take one lock and
/// hashing its own bounded pool, so more would only queue, each thread keeping a malloc
/// arena of its own (tokio's default is 512).
const BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    let cli = cli::parse();
    let serving = matches!(cli.command, Command::OnStore(StoreCommand::Serve(_)));
    // Dropped last: reports counted log lines and flushes the buffered ones.
    let _logs = logging::init(&cli.log, if serving { "info" } else { "warn" });
    // Installed before the store opens, so that the store can describe its own metrics.
    if let Err(err) = serving.then(minitwit_cli::serve::metrics::handle).transpose() {
        return fail(&err);
    }
    let runtime = match runtime_for(&cli.command) {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::Error::new(err).context("starting the runtime")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// The runtime a command runs on. `replay` gets one thread: its requests wait on the
/// server, not on the CPU, and on one thread each answer wakes the next request without a
/// hand-over between threads (the client's CPU over the scenario at concurrency 8:
/// 1.7 → 1.2 s, BENCHMARKS.md), which leaves the cores to the server it measures.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match command {
        Command::Replay(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().max_blocking_threads(BLOCKING_THREADS).build()
}

/// Prints the error and its causes on one line.
fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> Result<()> {
    // Not locked for the whole run: `export --out -` writes through tokio's stdout.
    let mut out = std::io::stdout();
    let out = &mut out;
    match cli.command {
        Command::Copy(args) => data::copy(&args, cli.store_options, out).await,
        Command::Replay(args) => replay::run(&args, out).await,
        Command::Health(args) => health::run(&args, out).await,
        Command::Verify(args) => data::verify(&args, out).await,
        Command::OnStore(StoreCommand::Migrate(MigrateArgs { check: true })) => {
            check_migrations(&StoreUrl::parse(&cli.store)?, cli.store_options, out).await
        }
        Command::Check(args) => {
            check(&StoreUrl::parse(&cli.store)?, cli.store_options, &args, out).await
        }
        Command::OnStore(command) => {
            let url = StoreUrl::parse(&cli.store)?;
            let store = url.open_with_replicas(cli.store_options, &cli.replicas).await?;
            if !matches!(command, StoreCommand::Import(_) | StoreCommand::Migrate(_)) {
                // A store holding part of an import is not served, exported or changed.
                transfer::refuse_unfinished_import(&store).await?;
            }
            let result = on_store(Arc::clone(&store), command, out).await;
            // Flush even after a failure: whatever was acknowledged must be on disk.
            let flushed = store.flush().await;
            result?;
            Ok(flushed?)
        }
    }
}

/// `migrate --check`: lists the pending migrations, failing if there are any.
async fn check_migrations(
    url: &StoreUrl,
    options: cli::StoreOptions,
    out: &mut impl std::io::Write,
) -> Result<()> {
    let pending = url.pending_migrations(options).await?;
    for migration in &pending {
        writeln!(out, "pending\t{migration}")?;
    }
    if !pending.is_empty() {
        anyhow::bail!("{} migration(s) pending on {url}; run `minitwit migrate`", pending.len());
    }
    writeln!(out, "no pending migrations on {url}")?;
    Ok(())
}

/// `check`: prints what was counted and the problems found, failing if there are any.
async fn check(
    url: &StoreUrl,
    options: cli::StoreOptions,
    args: &CheckArgs,
    out: &mut impl std::io::Write,
) -> Result<()> {
    let found = url.check(options, args.rebuild_home).await?;
    for (name, count) in &found.counts {
        writeln!(out, "{name}\t{count}")?;
    }
    for problem in &found.problems {
        writeln!(out, "problem\t{problem}")?;
    }
    if found.problem_count > 0 {
        anyhow::bail!("{} problem(s) found in {url}", found.problem_count);
    }
    writeln!(out, "{url} is consistent")?;
    Ok(())
}

/// Runs a command on the one store named by `--store`.
async fn on_store(
    store: Arc<dyn Store>,
    command: StoreCommand,
    out: &mut impl std::io::Write,
) -> Result<()> {
    let service = MiniTwit::new(Arc::clone(&store));
    match command {
        StoreCommand::Serve(args) => serve_command::run(store, &args, out).await,
        StoreCommand::Migrate(_) => {
            writeln!(out, "store is up to date ({} backend)", store.backend())?;
            Ok(())
        }
        StoreCommand::User(command) => admin::user(&service, command, out).await,
        StoreCommand::Message(command) => admin::message(&service, command, out).await,
        StoreCommand::Stats(flag) => admin::stats(&service, flag.json, out).await,
        StoreCommand::Export(args) => data::export(&store, &args, out).await,
        StoreCommand::Import(args) => data::import(&store, &args, out).await,
        StoreCommand::Generate(args) => generate::run(store.as_ref(), args, out).await,
    }
}
