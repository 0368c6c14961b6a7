//! Request handlers: each turns one route's input into service calls and a page or a
//! redirect, and nothing else (every rule lives in the core). Every handler returns
//! [`Handled`]; `filters` answers its failure at once with the error page.
//!
//! - [`timeline`]: the three timelines, with keyset pagination.
//! - [`account`]: sign up, sign in, sign out.
//! - [`actions`]: posting, following and unfollowing.
//! - [`statics`]: the embedded static files.

pub(crate) mod account;
pub(crate) mod actions;
pub(crate) mod statics;
pub(crate) mod timeline;

use crate::error::WebError;
use warp::reply::Response;

/// What a handler returns: a response, or why the request failed.
pub(crate) type Handled = Result<Response, WebError>;
