//! `minitwit replay`: the simulator client ([`minitwit_cli::simulator`]) run against a live
//! API. The report goes to stdout; any failed action makes the exit status non-zero (so CI
//! notices) unless `--allow-errors`.

use crate::cli::ReplayArgs;
use anyhow::{Context, Result, bail};
use minitwit_cli::simulator::{self, ReplayOptions};
use std::io::Write;
use std::time::Duration;

/// Replays the scenario and prints the report.
pub async fn run(args: &ReplayArgs, out: &mut impl Write) -> Result<()> {
    let options = ReplayOptions {
        base_url: args.base_url.clone(),
        username: args.simulator.sim_user.clone(),
        password: args.simulator.sim_password.expose().to_owned(),
        limit: args.limit,
        rate: args.rate,
        concurrency: args.concurrency.max(1),
        timeout: Duration::from_millis(args.timeout_ms),
        close_connections: args.close_connections,
        progress: true,
        idempotency_keys: !args.no_idempotency_keys,
        retries: args.retries,
    };
    let report = simulator::run_file(&args.csv, &options)
        .await
        .with_context(|| format!("replaying {}", args.csv.display()))?;
    writeln!(out, "{report}")?;
    out.flush()?;
    let errors = report.error_count();
    if errors > 0 && !args.allow_errors {
        bail!(
            "{errors} of {} actions failed (see the report; --allow-errors to accept)",
            report.sent
        );
    }
    Ok(())
}
