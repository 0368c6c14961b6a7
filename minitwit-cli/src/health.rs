//! `minitwit health`: asks a running server whether it is ready (`GET /ready` answering
//! 200), for container health checks. Exit status 0 when ready, 1 otherwise.

use crate::cli::HealthArgs;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::time::Duration;

/// Checks readiness once and says so on stdout.
pub async fn run(args: &HealthArgs, out: &mut impl Write) -> Result<()> {
    let url = format!("{}/ready", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .context("building the HTTP client")?;
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url} answered {status}: not ready");
    }
    writeln!(out, "ready ({url} answered {status})")?;
    Ok(())
}
