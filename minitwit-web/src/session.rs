//! Stateless sessions: who is signed in, the pending flash messages and the position of
//! the browser's latest write (read-your-writes over read replicas), kept in one
//! encrypted, authenticated cookie (AES-256-GCM via the `cookie` crate's private jar), so
//! any replica with the same key can serve any request and the server keeps no memory.

use crate::config::WebConfig;
use cookie::{Cookie, CookieJar, Key, SameSite};
use minitwit_core::{UserId, unix_now};
use serde::{Deserialize, Serialize};

/// The cookie's name.
const COOKIE_NAME: &str = "session";
/// At most this many flashes are kept; older ones are dropped (keeps the cookie small).
const MAX_FLASHES: usize = 5;

/// What a session holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    /// The signed-in user.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// When the user signed in (Unix seconds), to end old sign-ins.
    #[serde(rename = "t", default)]
    pub signed_in_at: i64,
    /// Messages to show once on the next page.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub flashes: Vec<String>,
    /// The store position of this browser's latest write (0: none yet): pages are read
    /// from a replica only once it has replayed that write (see `minitwit_core::ReadToken`).
    #[serde(rename = "w", default, skip_serializing_if = "is_zero")]
    pub wrote_at: u64,
}

fn is_zero(position: &u64) -> bool {
    *position == 0
}

impl Session {
    /// Queues a message for the next page shown.
    pub fn flash(&mut self, message: impl Into<String>) {
        self.flashes.push(message.into());
        let excess = self.flashes.len().saturating_sub(MAX_FLASHES);
        self.flashes.drain(..excess);
    }

    /// Signs `user` in.
    pub fn sign_in(&mut self, user: UserId) {
        self.user_id = Some(user);
        self.signed_in_at = unix_now();
    }

    /// Signs out, keeping the flashes.
    pub fn sign_out(&mut self) {
        self.user_id = None;
        self.signed_in_at = 0;
    }

    fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.flashes.is_empty() && self.wrote_at == 0
    }
}

/// Reads and writes session cookies with the configured key.
pub(crate) struct SessionCodec {
    key: Key,
    secure: bool,
    max_age_secs: i64,
}

impl SessionCodec {
    /// A codec for `config`'s key and cookie settings.
    pub fn new(config: &WebConfig) -> Self {
        Self {
            // WebConfig::new refuses keys shorter than derive_from needs.
            key: Key::derive_from(config.session_key().expose()),
            secure: config.secure_cookies,
            max_age_secs: i64::try_from(config.session_max_age.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// The session in a `Cookie` header; an empty one when it is missing, forged,
    /// unreadable or expired.
    pub fn read(&self, cookie_header: Option<&str>) -> Session {
        let Some(header) = cookie_header else { return Session::default() };
        let mut jar = CookieJar::new();
        Cookie::split_parse(header.to_owned())
            .filter_map(Result::ok)
            .filter(|c| c.name() == COOKIE_NAME)
            .for_each(|c| jar.add_original(c));
        let Some(cookie) = jar.private(&self.key).get(COOKIE_NAME) else {
            return Session::default();
        };
        let mut session: Session = serde_json::from_str(cookie.value()).unwrap_or_default();
        if session.user_id.is_some() && unix_now() - session.signed_in_at > self.max_age_secs {
            session.sign_out();
        }
        session
    }

    /// The `Set-Cookie` value that stores `session` (or removes the cookie when the
    /// session holds nothing).
    pub fn write(&self, session: &Session) -> String {
        let mut jar = CookieJar::new();
        let value = if session.is_empty() {
            String::new()
        } else {
            serde_json::to_string(session).unwrap_or_default()
        };
        let mut cookie = Cookie::build((COOKIE_NAME, value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .build();
        if session.is_empty() {
            cookie.make_removal();
            return cookie.to_string();
        }
        jar.private_mut(&self.key).add(cookie);
        jar.get(COOKIE_NAME).map(ToString::to_string).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(key_byte: u8) -> SessionCodec {
        SessionCodec::new(&WebConfig::new(vec![key_byte; 64]).unwrap())
    }

    fn cookie_pair(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn round_trips_and_is_unreadable_without_the_key() {
        let mut session = Session::default();
        session.sign_in(42);
        session.flash("You were logged in");
        let set_cookie = codec(1).write(&session);
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
        assert!(!set_cookie.contains("logged"), "the cookie is encrypted");
        let pair = cookie_pair(&set_cookie);
        assert_eq!(codec(1).read(Some(&pair)), session);
        assert_eq!(codec(2).read(Some(&pair)), Session::default());
        assert_eq!(codec(1).read(Some("session=forged")), Session::default());
    }

    #[test]
    fn empty_sessions_remove_the_cookie_and_flashes_are_bounded() {
        assert!(codec(1).write(&Session::default()).contains("Max-Age=0"));
        let mut session = Session::default();
        (0..9).for_each(|i| session.flash(i.to_string()));
        assert_eq!(session.flashes, ["4", "5", "6", "7", "8"]);
    }
}
