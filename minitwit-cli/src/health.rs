//! `minitwit health`: one `GET /ready` against a running server, as a container health
//! check wants it: exit status 0 when ready, 1 (with the reason on stderr) otherwise.

use crate::cli::HealthArgs;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::time::Duration;

/// Asks `args.url` whether it is ready; fails unless it answers 200.
pub async fn run(args: &HealthArgs, out: &mut impl Write) -> Result<()> {
    let url = format!("{}/ready", args.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .context("building the HTTP client")?;
    let response = client.get(&url).send().await.with_context(|| format!("{url} is down"))?;
    let status = response.status();
    // The body is a short reason ("ready", "shutting down", "store unavailable").
    let reason = response.text().await.unwrap_or_default();
    let reason = reason.trim();
    if !status.is_success() {
        bail!("{url} is not ready: {status} {reason}");
    }
    writeln!(out, "{url}: {reason}")?;
    Ok(())
}
