//! `minitwit serve`: the web site and the simulator API on their own listeners, each
//! wrapped by the same [`layers`], over one store wrapped by a [`MeteredStore`] (and, when
//! only this process writes it, a [`CachedStore`]).
//!
//! - [`layers`]: request ids, logs, request metrics, `/health`, `/ready`, `/metrics`.
//! - [`metrics`]: the Prometheus recorder, metric names, business gauges.
//! - [`listener`]: the accept loop, with its timeouts and connection cap.
//! - [`metered_store`]: store operation latency.
//! - [`receipts`]: the sweep of expired idempotency receipts.
//!
//! Shutdown, for rolling updates without refused connections: on SIGTERM `/ready` turns
//! 503 while both listeners keep serving for the drain delay (`--drain-delay-secs`), so
//! load balancers stop routing here; then both listeners stop accepting, in-flight
//! requests finish (within the grace period; what is still open
//! then is dropped), and the store is flushed. SIGINT (or a second signal) skips the
//! delay.
//!
//! Behind HTTPS (`--secure-cookies`), the web site's responses carry
//! `Strict-Transport-Security`.

pub mod layers;
pub mod listener;
pub mod metered_store;
pub mod metrics;
pub mod receipts;

use crate::cli::{ListenerLimits, ServeArgs};
use anyhow::{Context, Result};
use layers::{Front, Instrumented, Ops};
use metered_store::MeteredStore;
use minitwit_core::{CachedStore, HashCost, HashPool, Hasher, MiniTwit, Store};
use minitwit_sim::SimConfig;
use minitwit_web::WebConfig;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// Serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(store: Arc<dyn Store>, args: &ServeArgs, out: &mut impl Write) -> Result<()> {
    // Caught from the start: a signal during startup must not kill the process outright.
    let mut signals = Signals::install()?;
    let handle = metrics::handle()?;
    metrics::describe();
    let single_process = store.single_process();
    let mut store: Arc<dyn Store> = Arc::new(MeteredStore::new(store));
    if single_process {
        store = Arc::new(CachedStore::new(store));
    }
    let service = MiniTwit::with_hasher(Arc::clone(&store), hasher(args))
        .keeping_receipts_for(Duration::from_secs(args.idempotency_window_secs));
    let ops = Ops::new(service.clone(), handle.clone());
    let (web, api) = front_ends(&service, args, &ops).await?;
    let web_listener = bind(args.web_addr, "web site").await?;
    let api_listener = bind(args.api_addr, "simulator API").await?;
    let (web_addr, api_addr) = (web_listener.local_addr()?, api_listener.local_addr()?);

    metrics::refresh_gauges(&service).await;
    let every = Duration::from_secs(args.gauge_interval);
    let sweep = tokio::spawn(receipts::sweep(service.clone(), receipts::SWEEP_EVERY));
    let maintenance = tokio::spawn(metrics::maintain(service, handle, every));
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = limits(&args.limits);
    let web_server = tokio::spawn(listener::serve(web, web_listener, limits, stop_rx.clone()));
    let api_server = tokio::spawn(listener::serve(api, api_listener, limits, stop_rx));
    writeln!(out, "web site listening on http://{web_addr}")?;
    writeln!(out, "simulator API listening on http://{api_addr}")?;
    out.flush()?;
    tracing::info!(%web_addr, %api_addr, backend = store.backend(), "serving");

    let signal = signals.next().await;
    ops.begin_shutdown();
    if signal == "SIGTERM" && args.drain_delay_secs > 0 {
        tracing::info!(signal, seconds = args.drain_delay_secs, "not ready; draining");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(args.drain_delay_secs)) => {}
            again = signals.next() => tracing::info!(signal = again, "drain delay cut short"),
        }
    }
    tracing::info!(signal, "shutting down: finishing in-flight requests");
    // Nobody listens any more once both servers have stopped; that is fine.
    let _ = stop_tx.send(true);
    let (web_done, api_done) = tokio::join!(web_server, api_server);
    maintenance.abort();
    sweep.abort();
    web_done.context("the web server task failed")?;
    api_done.context("the API server task failed")?;
    store.flush().await.context("flushing the store")?;
    tracing::info!("stopped");
    Ok(())
}

/// Both front ends, configured and wrapped by the same layers.
async fn front_ends(
    service: &MiniTwit,
    args: &ServeArgs,
    ops: &Ops,
) -> Result<(Arc<Instrumented>, Arc<Instrumented>)> {
    let mut web_config = WebConfig::new(session_key(service, args).await?)
        .context("MINITWIT_SESSION_KEY is not usable")?;
    web_config.secure_cookies = args.secure_cookies;
    web_config.trust_forwarded_for = args.trust_forwarded_for;
    let sim_config = SimConfig {
        username: args.simulator.sim_user.clone(),
        password: args.simulator.sim_password.expose().to_owned(),
        trust_forwarded_for: args.trust_forwarded_for,
        ..SimConfig::default()
    };
    let website = minitwit_web::Website::new(service.clone(), web_config);
    let (mut site, secure) = (website.routes(), args.secure_cookies);
    if secure {
        site = with_hsts(site);
    }
    let web = Front {
        name: "web",
        route_label: minitwit_web::route_label,
        failure: Box::new(move |err| {
            let page = website.failure_response(err);
            if secure { hsts(page) } else { page }
        }),
    };
    let api = Front {
        name: "api",
        route_label: minitwit_sim::route_label,
        failure: Box::new(minitwit_sim::failure_response),
    };
    let api_routes = minitwit_sim::routes(service.clone(), sim_config);
    Ok((
        Arc::new(Instrumented::new(web, site, ops.clone())),
        Arc::new(Instrumented::new(api, api_routes, ops.clone())),
    ))
}

/// What browsers are told to remember: HTTPS only, for a year.
const HSTS: &str = "max-age=31536000";

/// `routes` with `Strict-Transport-Security` on every response.
fn with_hsts(routes: BoxedFilter<(Response,)>) -> BoxedFilter<(Response,)> {
    routes.map(hsts).boxed()
}

/// `response` with `Strict-Transport-Security`.
fn hsts(mut response: Response) -> Response {
    response.headers_mut().insert(
        warp::http::header::STRICT_TRANSPORT_SECURITY,
        warp::http::HeaderValue::from_static(HSTS),
    );
    response
}

/// The configured session key, or the one kept in the store.
async fn session_key(service: &MiniTwit, args: &ServeArgs) -> Result<Vec<u8>> {
    match &args.session_key {
        Some(key) => Ok(key.expose().as_bytes().to_vec()),
        None => Ok(service.session_key().await.context("reading the session key")?),
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for the {what}"))
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
fn limits(args: &ListenerLimits) -> listener::Limits {
    listener::Limits {
        header_read: Duration::from_secs(args.header_timeout_secs.max(1)),
        idle: Duration::from_secs(args.idle_timeout_secs.max(1)),
        body_read: Duration::from_secs(args.body_timeout_secs.max(1)),
        request: Duration::from_secs(args.request_timeout_secs.max(1)),
        max_connections: args.max_connections.max(1),
        grace: Duration::from_secs(args.shutdown_grace_secs),
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
