//! MiniTwit's simulator API (CONTRACT.md §4) and its OpenAPI document. (The simulator's
//! client, `minitwit replay`, lives in minitwit-cli: a server needs none of it.)
//!
//! The CLI composes [`routes`] (the whole API as one warp filter over the core service) and
//! [`route_label`] (the route a path belongs to, for bounded metrics labels).
//!
//! Layout:
//! - [`auth`]: the simulator's credentials ([`SimConfig`]) and their constant-time check.
//! - `route_table`: the route table: each route's path, metrics label and allowed methods.
//! - `filters`: the endpoints, one filter per route and method, composed by [`routes`].
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
pub use route_table::route_label;

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
