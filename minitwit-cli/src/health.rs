//! `minitwit health`: one `GET /ready` against a running server, as a container health
//! check wants it: exit status 0 when ready, 1 (with the reason on stderr) otherwise.

use crate::cli::HealthArgs;
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Asks the server whether it is ready; fails unless it answers 200.
pub async fn run(args: &HealthArgs, out: &mut impl Write) -> Result<()> {
    let base = args.url.clone().unwrap_or_else(|| local_url(args.web_addr));
    let url = format!("{}/ready", base.trim_end_matches('/'));
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

/// The URL of a listener on `addr` as seen from this host: a wildcard address (`0.0.0.0`,
/// `::`) is reached on loopback.
fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn wildcard_listeners_are_checked_on_loopback() {
        let url = |addr: &str| local_url(addr.parse().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("[::]:5000"), "http://[::1]:5000");
        assert_eq!(url("10.0.0.7:5000"), "http://10.0.0.7:5000");
    }
}
