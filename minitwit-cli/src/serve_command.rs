//! `minitwit serve`: the command line turned into the assembly's [`Settings`], and the
//! signals that end it. Serves until SIGTERM or SIGINT; on SIGTERM `/ready` turns 503
//! while both listeners keep serving for the drain delay (`--drain-delay-secs`), then the
//! server stops gracefully (see [`minitwit_cli::serve`]). SIGINT (or a second signal)
//! skips the delay.

use crate::cli::{ListenerLimits, LiveArgs, ServeArgs};
use anyhow::{Context, Result};
use minitwit_cli::serve::{self, Limits, Settings};
use minitwit_core::password_hash::{HashPool, Hasher};
use minitwit_core::{HashCost, Store};
use minitwit_web::LiveConfig;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(store: Arc<dyn Store>, args: &ServeArgs, out: &mut impl Write) -> Result<()> {
    // Caught from the start: a signal during startup must not kill the process outright.
    let mut signals = Signals::install()?;
    let server = serve::start(store, settings(args)).await?;
    let (web_addr, api_addr) = (server.web_addr(), server.api_addr());
    writeln!(out, "web site listening on http://{web_addr}")?;
    writeln!(out, "simulator API listening on http://{api_addr}")?;
    out.flush()?;
    let backend = server.service().store().backend();
    tracing::info!(%web_addr, %api_addr, backend, "serving");

    let signal = signals.next().await;
    server.begin_shutdown();
    if signal == "SIGTERM" && args.drain_delay_secs > 0 {
        tracing::info!(signal, seconds = args.drain_delay_secs, "not ready; draining");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.drain_delay_secs)) => {}
            again = signals.next() => tracing::info!(signal = again, "drain delay cut short"),
        }
    }
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    server.stop().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The assembly's settings from the command line.
fn settings(args: &ServeArgs) -> Settings {
    Settings {
        web_addr: args.web_addr,
        api_addr: args.api_addr,
        session_key: args.session_key.as_ref().map(|key| key.expose().as_bytes().to_vec()),
        secure_cookies: args.secure_cookies,
        trust_forwarded_for: args.trust_forwarded_for,
        sim_user: args.simulator.sim_user.clone(),
        sim_password: args.simulator.sim_password.expose().to_owned(),
        limits: limits(&args.limits),
        hasher: hasher(args),
        gauge_interval: Duration::from_secs(args.gauge_interval),
        idempotency_window: Duration::from_secs(args.idempotency_window_secs),
        live: live(&args.live),
        site: |_| {},
    }
}

/// The password hasher: recommended cost, pool as configured.
fn hasher(args: &ServeArgs) -> Hasher {
    let mut pool = match args.hash_workers {
        0 => HashPool::for_this_process(),
        workers => HashPool::with_workers(workers),
    };
    if args.hash_queue > 0 {
        pool.queue = args.hash_queue;
    }
    tracing::debug!(workers = pool.workers, queue = pool.queue, "password hashing pool");
    Hasher::with_pool(HashCost::Recommended, pool)
}

/// The listeners' limits from the command line.
fn limits(args: &ListenerLimits) -> Limits {
    Limits {
        header_read: Duration::from_secs(args.header_timeout_secs.max(1)),
        idle: Duration::from_secs(args.idle_timeout_secs.max(1)),
        body_read: Duration::from_secs(args.body_timeout_secs.max(1)),
        request: Duration::from_secs(args.request_timeout_secs.max(1)),
        max_connections: args.max_connections.max(1),
        grace: Duration::from_secs(args.shutdown_grace_secs),
        write_stall: Duration::from_secs(args.write_stall_secs.max(1)),
    }
}

/// Live timelines' limits from the command line.
fn live(args: &LiveArgs) -> LiveConfig {
    LiveConfig {
        max_streams: args.max_streams,
        max_streams_per_address: args.max_streams_per_address,
        idle: Duration::from_secs(args.stream_idle_secs.max(1)),
        write_window: Duration::from_millis(args.stream_write_window_ms),
        ..LiveConfig::default()
    }
}

/// SIGTERM and SIGINT, caught from startup on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
