//! MiniTwit's simulator API (CONTRACT.md §4) and its OpenAPI document. (The simulator's
//! client, `minitwit replay`, lives in minitwit-cli: a server needs none of it.)
//!
//! The CLI composes [`routes`] (the whole API as one warp filter over the core service) and
//! [`route_label`] (the route a path belongs to, for bounded metrics labels).
//!
//! Layout:
//! - [`auth`]: the simulator's credentials ([`SimConfig`]) and their constant-time check.
//! - `filters`: the routes, one filter per endpoint, composed by [`routes`].
//! - `handlers`: each endpoint's call into the [`MiniTwit`] service.
//! - `models`: the JSON bodies the API reads and writes.
//! - [`error`]: [`ApiError`], and the one rejection handler that renders every failure as
//!   `{"status":N,"error_msg":"…"}`.
//! - `openapi.yaml` (crate root): the API's OpenAPI 3 document, served at `GET /openapi.yaml`.

pub mod auth;
pub mod error;
mod filters;
mod handlers;
mod models;

pub use auth::SimConfig;
pub use error::{ApiError, failure_response};

use minitwit_core::MiniTwit;
use warp::Filter;
use warp::filters::BoxedFilter;

/// The OpenAPI 3 document describing this API, as served at `GET /openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The largest request body the API reads, in bytes; larger bodies get a 413.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The whole API as one filter: every endpoint of CONTRACT.md §4 and `GET /openapi.yaml`, with
/// every failure rendered as the JSON error shape.
pub fn routes(service: MiniTwit, config: SimConfig) -> BoxedFilter<(warp::reply::Response,)> {
    filters::api(service, config).recover(error::handle_rejection).unify().boxed()
}

/// The route template a request path belongs to (`"/msgs/{username}"`, …), for metrics
/// labels: any path outside the API is `"other"`, so the label set stays bounded.
pub fn route_label(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut segments = path.split('/');
    let first = segments.next().unwrap_or_default();
    let second = segments.next();
    if segments.next().is_some() {
        return "other";
    }
    match (first, second) {
        ("latest", None) => "/latest",
        ("register", None) => "/register",
        ("msgs", None) => "/msgs",
        ("openapi.yaml", None) => "/openapi.yaml",
        ("msgs", Some(name)) if !name.is_empty() => "/msgs/{username}",
        ("fllws", Some(name)) if !name.is_empty() => "/fllws/{username}",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn labels_are_route_templates() {
        assert_eq!(route_label("/latest"), "/latest");
        assert_eq!(route_label("/register"), "/register");
        assert_eq!(route_label("/msgs"), "/msgs");
        assert_eq!(route_label("/msgs/Roger%20Histand"), "/msgs/{username}");
        assert_eq!(route_label("/fllws/a"), "/fllws/{username}");
        assert_eq!(route_label("/openapi.yaml"), "/openapi.yaml");
        for other in ["/", "", "/msgs/", "/fllws", "/msgs/a/b", "/public", "/latest/x"] {
            assert_eq!(route_label(other), "other", "{other}");
        }
    }
}
