//! MiniTwit's HTML site (warp + handlebars). Being built: issue 5.
//!
//! Interface the CLI composes: [`routes`] builds the whole site as one warp filter over
//! the core service; [`route_label`] names the route a path belongs to, for metrics.

use minitwit_core::MiniTwit;
use warp::Filter;
use warp::filters::BoxedFilter;

/// What the site needs besides the service.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The key that signs/encrypts session cookies (at least 64 bytes).
    pub session_key: Vec<u8>,
    /// Mark cookies `Secure` (when served over HTTPS).
    pub secure_cookies: bool,
}

/// The whole site as one filter.
pub fn routes(_service: MiniTwit, _config: WebConfig) -> BoxedFilter<(warp::reply::Response,)> {
    warp::any().map(|| warp::reply::Response::new("MiniTwit site: not built yet".into())).boxed()
}

/// The route template a request path belongs to (`"/{username}"`, `"/public"`, …), so
/// metrics labels stay bounded whatever users are called.
pub fn route_label(_path: &str) -> &'static str {
    "other"
}
