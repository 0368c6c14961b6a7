//! MiniTwit's HTML site: the original Flask app's pages, texts, redirects and statuses
//! (CONTRACT.md §3) over the core service, with stateless encrypted-cookie sessions and the
//! protections of CONTRACT.md §7. Templates and static files are embedded in the binary.
//!
//! The CLI composes it: [`Website`] is the site built once from a [`WebConfig`], with its
//! routes as one warp filter ([`routes`] for short) and its error page for failures met
//! outside them (the server's request deadline); [`route_label`] names the route a path
//! belongs to, for metrics. The client's address, which the throttles count by, is the
//! `minitwit_core::rate_limit::ClientAddress` request extension the server sets
//! (`minitwit_cli::serve`); without it (served as below, say), throttling is per account
//! only.
//!
//! Layout:
//! - `config`: [`WebConfig`] and its defaults.
//! - `route_table`: each route's path and metrics label ([`route_label`]).
//! - `filters`: the routes as warp filters.
//! - `handlers`: one function per route, calling the service.
//! - `live`: live timelines, each timeline page as a stream of server-sent events, and
//!   their limits.
//! - `idempotency`: the keys the site's writes carry, and the answers replayed to retries.
//! - `site`: shared state, per-request readers, responses with the session cookie.
//! - `session`: the encrypted session cookie.
//! - `views`: templates, MarkupSafe escaping, view models.
//! - `entries`: timeline entries rendered once, shared by every page and stream.
//! - `security`: cross-site check, security headers.
//! - `throttle`: login throttling.
//! - `assets`: static files with caching headers.
//! - `error`: [`WebError`] and the error pages' texts.
//! - `rejection`: the one rejection handler, every failure to an error page.
//!
//! ```no_run
//! # async fn demo(service: minitwit_core::MiniTwit) -> Result<(), Box<dyn std::error::Error>> {
//! let key = service.session_key().await?;
//! let site = minitwit_web::routes(service, minitwit_web::WebConfig::new(key)?);
//! warp::serve(site).run(([127, 0, 0, 1], 5000)).await;
//! # Ok(()) }
//! ```

#![deny(rustdoc::broken_intra_doc_links)]
#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap: a panic is a failure

mod assets;
mod config;
mod entries;
mod error;
mod filters;
mod handlers;
mod idempotency;
mod live;
mod rejection;
mod route_table;
mod security;
mod session;
mod site;
mod throttle;
mod views;

pub use config::{ConfigError, LiveConfig, MIN_SESSION_KEY_LEN, SessionKey, Throttle, WebConfig};
pub use error::WebError;
pub use live::{
    EVENT_STREAM, EVENTS_SENT, SLOW_READERS_DROPPED, STREAMS_OPEN, STREAMS_REFUSED, StreamRuntime,
    describe_metrics,
};
pub use route_table::route_label;
pub use security::add_security_headers;

use minitwit_core::{MiniTwit, ServiceError};
use std::sync::Arc;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// The whole site as one filter: every route of CONTRACT.md §3, one rejection handler that
/// renders HTML error pages (400/401/403/404/405/413/429/500/503) leaking nothing, and
/// the security headers on every response.
pub fn routes(service: MiniTwit, config: WebConfig) -> BoxedFilter<(Response,)> {
    Website::new(service, config).routes()
}

/// The site, built once (templates compiled, static files indexed).
#[derive(Clone)]
pub struct Website(Arc<site::Site>);

impl Website {
    /// The site over `service` with `config`.
    pub fn new(service: MiniTwit, config: WebConfig) -> Self {
        Self(Arc::new(site::Site::new(service, config)))
    }

    /// Every route as one filter (see [`routes`]).
    pub fn routes(&self) -> BoxedFilter<(Response,)> {
        filters::site(Arc::clone(&self.0))
    }

    /// For route labels ([`route_label`]), the filter that answers a path with that
    /// label exactly as [`Self::routes`] would, without trying every route in turn. Paths
    /// whose label has no entry are for [`Self::routes`].
    pub fn routes_by_label(&self) -> Vec<(&'static str, BoxedFilter<(Response,)>)> {
        filters::site_by_label(&self.0)
    }

    /// Ends every live timeline stream at once, each with a retry hint so that browsers
    /// reconnect (elsewhere, behind a balancer), and refuses new ones with 503: the
    /// first step of shutting down.
    pub fn end_streams(&self) {
        self.0.streams.end_all();
    }

    /// The error page for a service failure met outside the routes (the server giving up
    /// on a request at its deadline, [`ServiceError::TimedOut`]).
    pub fn failure_response(&self, err: ServiceError) -> Response {
        let mut response = self.0.error_response(&WebError::Service(err));
        security::add_site_headers(response.headers_mut(), self.0.config.secure_cookies);
        response
    }
}
