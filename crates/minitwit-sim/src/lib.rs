//! MiniTwit's simulator API and the simulator's replay client. Being built: issue 4.
//!
//! Interface the CLI composes: [`routes`] builds the API as one warp filter over the core
//! service; [`route_label`] names the route a path belongs to, for metrics.

use minitwit_core::MiniTwit;
use warp::Filter;
use warp::filters::BoxedFilter;

/// What the API needs besides the service.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The `Authorization` header value the simulator must send (user `simulator`,
    /// password `super_safe!` by default).
    pub username: String,
    /// The simulator's password.
    pub password: String,
}

/// The whole API as one filter.
pub fn routes(_service: MiniTwit, _config: SimConfig) -> BoxedFilter<(warp::reply::Response,)> {
    warp::any().map(|| warp::reply::Response::new("MiniTwit API: not built yet".into())).boxed()
}

/// The route template a request path belongs to (`"/msgs/{username}"`, …), for metrics.
pub fn route_label(_path: &str) -> &'static str {
    "other"
}
