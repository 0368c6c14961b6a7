//! Request handlers: each turns one route's input into service calls and a page or a
//! redirect, and nothing else (every rule lives in the core).
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
use crate::site::Site;
use percent_encoding::percent_decode_str;
use warp::Rejection;
use warp::reply::Response;

/// What every handler returns to warp.
pub(crate) type Reply = Result<Response, Rejection>;

/// Answers a handler's failure with its error page at once: a rejection would let warp
/// try the remaining routes, which could run for a request already handled.
pub(crate) fn finish(site: &Site, result: Result<Response, WebError>) -> Reply {
    Ok(result.unwrap_or_else(|err| site.error_response(&err)))
}

/// A username from a path segment (percent-decoded); not UTF-8 means no such user.
pub(crate) fn username_from_segment(segment: &str) -> Result<String, WebError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|name| name.into_owned())
        .map_err(|_| WebError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(username_from_segment("Roger%20Histand").unwrap(), "Roger Histand");
        assert_eq!(username_from_segment("%FF"), Err(WebError::NotFound));
    }
}
