//! Idempotency keys on the site's writes (sign-up, posting, follow and unfollow): the key
//! a request carries (sent by a client, or set by the proxy in front, CONTRACT.md §4.5),
//! and the answer a retry gets, the first attempt's redirect and flash, replayed from its
//! receipt.

use crate::site::{Site, Visit};
use minitwit_core::User;
use minitwit_core::idempotency::REPLAYED_HEADER;
use minitwit_core::idempotency::{IdempotencyKey, Keyed, Outcome, Receipt};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// The receipt status of every keyed write of the site: its redirect.
const REDIRECT: u16 = StatusCode::FOUND.as_u16();

/// A write request's key and what tells the request apart (method, path, query and
/// body), before the caller and the answer are known.
pub(crate) struct KeyedRequest {
    key: IdempotencyKey,
    parts: [Vec<u8>; 3],
}

impl KeyedRequest {
    /// The request `method path?query` with `body`, carrying `key`.
    pub(crate) fn new(key: IdempotencyKey, method: &str, target: &str, body: Vec<u8>) -> Self {
        Self { key, parts: [method.as_bytes().to_vec(), target.as_bytes().to_vec(), body] }
    }

    /// The request as the core takes it: sent by `caller` (anonymous when signed out),
    /// answered, when applied, by a redirect to `location` with `flash`.
    pub(crate) fn keyed(self, caller: Option<&User>, location: &str, flash: &str) -> Keyed {
        let scope =
            caller.map_or_else(|| "web:anonymous".to_owned(), |u| format!("web:user:{}", u.id));
        let [method, target, body] = &self.parts;
        let answer = format!("{location}\n{flash}").into_bytes();
        Keyed::new(scope, self.key, &[method, target, body], REDIRECT, answer)
    }
}

/// The answer to a write that went through: a redirect to `location` with `flash`; or,
/// for a retry of a keyed write, the redirect and flash its first attempt got, marked
/// replayed.
pub(crate) fn redirect_after(
    site: &Site,
    mut visit: Visit,
    outcome: Outcome,
    location: &str,
    flash: &str,
) -> Response {
    let Outcome::Replayed(receipt) = outcome else {
        visit.session.flash(flash);
        return site.redirect(visit, location);
    };
    let (location, flash) = recorded_redirect(&receipt);
    visit.session.flash(flash);
    let mut response = site.redirect(visit, &location);
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// The redirect location and flash a receipt recorded (see [`KeyedRequest::keyed`]).
fn recorded_redirect(receipt: &Receipt) -> (String, String) {
    let answer = String::from_utf8_lossy(&receipt.body);
    let (location, flash) = answer.split_once('\n').unwrap_or(("/", ""));
    (location.to_owned(), flash.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_holds_the_redirect_and_its_flash() {
        let key = IdempotencyKey::parse("k").unwrap();
        let request = KeyedRequest::new(key, "POST", "/alice/follow", Vec::new());
        let keyed = request.keyed(None, "/alice", "You are now following \"alice\"");
        assert_eq!(keyed.key.scope, "web:anonymous");
        assert_eq!(keyed.receipt.status, 302);
        let (location, flash) = recorded_redirect(&keyed.receipt);
        assert_eq!(
            (location.as_str(), flash.as_str()),
            ("/alice", "You are now following \"alice\"")
        );
    }
}
