//! The server assembly: what turns [`Settings`] and a store into both front ends running,
//! [`start`]ed by `minitwit serve` and by the end-to-end tests alike, so that the tests
//! drive exactly what ships. The web site and the simulator API run on their own
//! listeners, each wrapped by the same [`layers`], over one store wrapped by a
//! [`MeteredStore`] (and, when only this process writes it, a [`CachedStore`]).
//!
//! - [`layers`]: request ids, logs, request metrics, `/health`, `/ready`, `/metrics`.
//! - [`metrics`]: the Prometheus recorder, metric names, business gauges.
//! - [`listener`]: the accept loop, with its timeouts and connection cap.
//! - [`stream_lane`]: the low-priority runtime the web site's live streams are served on.
//! - [`metered_store`]: store operation latency.
//! - [`receipts`]: the sweep of expired idempotency receipts.
//!
//! Shutdown, for rolling updates without refused connections: [`Server::begin_shutdown`]
//! turns `/ready` 503 while both listeners keep serving, so load balancers stop routing
//! here; [`Server::stop`] then stops both listeners accepting, lets in-flight requests
//! finish (within the grace period; what is still open then is dropped), and flushes the
//! store. When to call them (signals, the drain delay) is the caller's choice.
//!
//! Behind HTTPS ([`Settings::secure_cookies`]), the web site's responses carry
//! `Strict-Transport-Security` (the site sets it, with its other security headers).

pub mod layers;
pub mod listener;
pub mod metered_store;
pub mod metrics;
pub mod receipts;
mod stall;
pub mod stream_lane;

pub use layers::ACCESS_TARGET;
pub use listener::Limits;

use anyhow::{Context, Result};
use layers::{Front, Instrumented, Ops};
use listener::Clients;
use metered_store::MeteredStore;
use minitwit_core::cache::CachedStore;
use minitwit_core::password_hash::Hasher;
use minitwit_core::{MiniTwit, Store};
use minitwit_sim::SimConfig;
use minitwit_web::WebConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stream_lane::StreamLane;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the assembly is configured with.
pub struct Settings {
    /// Address of the web site (port 0: any free one, see [`Server::web_addr`]).
    pub web_addr: SocketAddr,
    /// Address of the simulator API (port 0: any free one, see [`Server::api_addr`]).
    pub api_addr: SocketAddr,
    /// Key of the session cookies; `None`: the one kept in the store (generated once).
    pub session_key: Option<Vec<u8>>,
    /// Served over HTTPS: `Secure` cookies and `Strict-Transport-Security`.
    pub secure_cookies: bool,
    /// Client addresses (for throttling) from the last `X-Forwarded-For` entry.
    pub trust_forwarded_for: bool,
    /// The simulator's HTTP Basic user name.
    pub sim_user: String,
    /// The simulator's HTTP Basic password.
    pub sim_password: String,
    /// What each listener allows a client (timeouts, connections).
    pub limits: Limits,
    /// The password hasher (its cost and pool).
    pub hasher: Hasher,
    /// Time between refreshes of the business gauges.
    pub gauge_interval: Duration,
    /// How long a keyed write's receipt answers its retries (CONTRACT.md §4.5).
    pub idempotency_window: Duration,
    /// Live timelines' limits (CONTRACT.md §3.6).
    pub live: minitwit_web::LiveConfig,
    /// Adjusts the site's configuration once the above is applied (its throttles, say).
    pub site: fn(&mut WebConfig),
}

/// Both front ends, serving until [`Server::stop`] (or until dropped, which stops the
/// listeners the same way but neither waits for them nor flushes the store).
pub struct Server {
    web_addr: SocketAddr,
    api_addr: SocketAddr,
    service: MiniTwit,
    ops: Ops,
    website: minitwit_web::Website,
    stop: watch::Sender<bool>,
    listeners: [JoinHandle<()>; 2],
    _maintenance: [AbortOnDrop; 2],
}

/// Wraps `store` as it ships, binds both listeners and starts serving on them.
pub async fn start(store: Arc<dyn Store>, settings: Settings) -> Result<Server> {
    let handle = metrics::handle()?;
    metrics::describe();
    let service = MiniTwit::with_hasher(layered(store), settings.hasher.clone())
        .keeping_receipts_for(settings.idempotency_window);
    let ops = Ops::new(service.clone(), handle.clone());
    let (website, web, api) = front_ends(&service, &settings, &ops).await?;
    let web_listener = bind(settings.web_addr, "web site").await?;
    let api_listener = bind(settings.api_addr, "simulator API").await?;
    let (web_addr, api_addr) = (web_listener.local_addr()?, api_listener.local_addr()?);

    metrics::refresh_gauges(&service).await;
    let gauges = metrics::maintain(service.clone(), handle, settings.gauge_interval);
    let (stop, stopped) = watch::channel(false);
    let clients = Clients { trust_forwarded_for: settings.trust_forwarded_for };
    let limits = settings.limits;
    let lane = Some(Arc::new(StreamLane::start().context("starting the live streams' threads")?));
    let listeners = [
        tokio::spawn(listener::serve(web, web_listener, limits, clients, lane, stopped.clone())),
        tokio::spawn(listener::serve(api, api_listener, limits, clients, None, stopped)),
    ];
    let sweep = receipts::sweep(service.clone(), receipts::SWEEP_EVERY);
    let _maintenance = [AbortOnDrop(tokio::spawn(gauges)), AbortOnDrop(tokio::spawn(sweep))];
    Ok(Server { web_addr, api_addr, service, ops, website, stop, listeners, _maintenance })
}

impl Server {
    /// Where the web site listens.
    pub fn web_addr(&self) -> SocketAddr {
        self.web_addr
    }

    /// Where the simulator API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The service both front ends call, over the wrapped store.
    pub fn service(&self) -> &MiniTwit {
        &self.service
    }

    /// From now on `/ready` answers 503; everything else is still served, but live
    /// timeline streams end at once (with a retry hint, so browsers reconnect elsewhere)
    /// and new ones are refused.
    pub fn begin_shutdown(&self) {
        self.ops.begin_shutdown();
        self.website.end_streams();
    }

    /// Stops accepting, waits for the requests in flight (within the grace period), and
    /// flushes the store.
    pub async fn stop(self) -> Result<()> {
        self.begin_shutdown();
        let Self { service, stop, listeners: [web, api], _maintenance: maintenance, .. } = self;
        // Nobody listens any more once both listeners have stopped; that is fine.
        let _ = stop.send(true);
        let (web_done, api_done) = tokio::join!(web, api);
        drop(maintenance);
        web_done.context("the web server task failed")?;
        api_done.context("the API server task failed")?;
        service.store().flush().await.context("flushing the store")
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop<T = ()>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task to end: its output, or `None` if it was cancelled. A panic in
    /// the task resumes here.
    async fn finished(mut self) -> Option<T> {
        match (&mut self.0).await {
            Ok(output) => Some(output),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => None,
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `store` timed, and cached when only this process writes it.
fn layered(store: Arc<dyn Store>) -> Arc<dyn Store> {
    let single_process = store.single_process();
    let metered: Arc<dyn Store> = Arc::new(MeteredStore::new(store));
    if single_process { Arc::new(CachedStore::new(metered)) } else { metered }
}

/// Both front ends, configured and wrapped by the same layers.
async fn front_ends(
    service: &MiniTwit,
    settings: &Settings,
    ops: &Ops,
) -> Result<(minitwit_web::Website, Arc<Instrumented>, Arc<Instrumented>)> {
    let website = minitwit_web::Website::new(service.clone(), web_config(service, settings).await?);
    let (site, site_by_label) = (website.routes(), website.routes_by_label());
    let failing = website.clone();
    let web = Front {
        name: "web",
        route_label: minitwit_web::route_label,
        failure: Box::new(move |err| failing.failure_response(err)),
    };
    let api = Front {
        name: "api",
        route_label: minitwit_sim::route_label,
        failure: Box::new(minitwit_sim::failure_response),
    };
    let sim_config = SimConfig {
        username: settings.sim_user.clone(),
        password: settings.sim_password.clone(),
        ..SimConfig::default()
    };
    let api_routes = minitwit_sim::routes_by_label(service.clone(), sim_config);
    Ok((
        website,
        Arc::new(Instrumented::new(web, site, site_by_label, ops.clone())),
        Arc::new(Instrumented::new(api, api_routes.all, api_routes.by_label, ops.clone())),
    ))
}

/// The site's configuration: the session key, the settings, then their adjustment.
async fn web_config(service: &MiniTwit, settings: &Settings) -> Result<WebConfig> {
    let key = match &settings.session_key {
        Some(key) => key.clone(),
        None => service.session_key().await.context("reading the session key")?,
    };
    let mut config = WebConfig::new(key).context("MINITWIT_SESSION_KEY is not usable")?;
    config.secure_cookies = settings.secure_cookies;
    config.live = settings.live;
    (settings.site)(&mut config);
    Ok(config)
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} for the {what}"))
}
