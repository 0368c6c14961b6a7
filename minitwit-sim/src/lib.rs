//! MiniTwit's simulator API (CONTRACT.md §4) and its OpenAPI document. (The simulator's
//! client, `minitwit replay`, lives in minitwit-cli: a server needs none of it.)
//!
//! The CLI composes [`routes_by_label`] (the whole API as one warp filter over the core
//! service, and each route's part of it by label) and [`route_label`] (the route a path
//! belongs to, for bounded metrics labels and for dispatch); [`routes`] is the whole API
//! alone.
//!
//! Layout:
//! - [`auth`]: the simulator's credentials ([`SimConfig`]) and their constant-time check.
//! - `route_table`: the route table: each route's path, metrics label and allowed methods.
//! - `filters`: the endpoints, one filter per route and method, composed by [`routes`] and
//!   [`routes_by_label`].
//! - `handlers`: each endpoint's call into the [`MiniTwit`] service.
//! - `models`: the JSON bodies the API reads and writes.
//! - [`error`]: [`ApiError`], and the one rejection handler that renders every failure as
//!   `{"status":N,"error_msg":"…"}`.
//! - `openapi.yaml` (crate root): the API's OpenAPI 3 document, served at `GET /openapi.yaml`.

#![deny(rustdoc::broken_intra_doc_links)]

pub mod auth;
pub mod error;
mod filters;
mod handlers;
mod models;
mod route_table;

pub use auth::SimConfig;
pub use error::{ApiError, failure_response};
pub use filters::Routes;
pub use route_table::route_label;

use minitwit_core::MiniTwit;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// The OpenAPI 3 document describing this API, as served at `GET /openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// The largest request body the API reads, in bytes; larger bodies get a 413.
pub const MAX_BODY_BYTES: u64 = 64 * 1024;

/// The whole API as one filter: every endpoint of CONTRACT.md §4 and `GET /openapi.yaml`, with
/// every failure rendered as the JSON error shape.
pub fn routes(service: MiniTwit, config: SimConfig) -> BoxedFilter<(Response,)> {
    filters::api(service, config).all
}

/// The API as a server dispatches it: [`routes`], and for each route label
/// ([`route_label`]) the filter that answers that route's paths exactly as [`routes`]
/// would, without trying every route in turn.
pub fn routes_by_label(service: MiniTwit, config: SimConfig) -> Routes {
    filters::api(service, config)
}
