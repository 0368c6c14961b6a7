//! Stateless sessions: who is signed in, the pending flash messages and the position of
//! the browser's latest write (read-your-writes over read replicas), kept in one
//! encrypted, authenticated cookie (AES-256-GCM via the `cookie` crate's private jar), so
//! any replica with the same key can serve any request and the server keeps no memory.
//!
//! Sessions can still end: the cookie names the user by id, the user's session generation
//! (kept in the store, bumped by a password change, disabling, or "sign out everywhere")
//! and a stamp of the user's password hash (its salt is random, so a user restored under
//! a reused id, or given a new password, has another). Every signed-in request checks all
//! three against the store; a cookie that fails, or cannot be read at all, is cleared.

use crate::config::WebConfig;
use cookie::{Cookie, CookieJar, Key, SameSite};
use minitwit_core::model::unix_now;
use minitwit_core::{User, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

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
    /// The user's session generation when they signed in.
    #[serde(rename = "g", default)]
    pub generation: i64,
    /// [`stamp`] of the user's password hash when they signed in.
    #[serde(rename = "s", default, skip_serializing_if = "String::is_empty")]
    pub stamp: String,
    /// Set when the request carried a session cookie that could not be used (forged,
    /// unreadable, expired): the response clears it. Never stored.
    #[serde(skip)]
    pub stale: bool,
    /// Messages to show once on the next page.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub flashes: Vec<String>,
    /// The store position of this browser's latest write (0: none yet): pages are read
    /// from a replica only once it has replayed that write (see `minitwit_core::consistency::ReadToken`).
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

    /// Signs `user` in under their current session `generation`.
    pub fn sign_in(&mut self, user: &User, generation: i64) {
        self.user_id = Some(user.id);
        self.signed_in_at = unix_now();
        self.generation = generation;
        self.stamp = stamp(&user.pw_hash);
    }

    /// Signs out, keeping the flashes.
    pub fn sign_out(&mut self) {
        self.user_id = None;
        self.signed_in_at = 0;
        self.generation = 0;
        self.stamp.clear();
    }

    /// Whether this session still belongs to `user`, whose session generation is now
    /// `generation`.
    pub fn is_valid_for(&self, user: &User, generation: i64) -> bool {
        self.user_id == Some(user.id)
            && !user.disabled
            && self.generation == generation
            && self.stamp == stamp(&user.pw_hash)
    }

    fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.flashes.is_empty() && self.wrote_at == 0
    }
}

/// A short fingerprint of a password hash (whose salt is random per user and per
/// password): the cookie's proof that it was issued to this very user, not to an earlier
/// holder of the same id.
fn stamp(pw_hash: &str) -> String {
    let digest = Sha256::digest(pw_hash.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
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

    /// The session in a `Cookie` header; an empty one when it is missing, and an empty
    /// [`Session::stale`] one when it is forged, unreadable or expired.
    pub fn read(&self, cookie_header: Option<&str>) -> Session {
        let Some(header) = cookie_header else { return Session::default() };
        let mut jar = CookieJar::new();
        Cookie::split_parse(header.to_owned())
            .filter_map(Result::ok)
            .filter(|c| c.name() == COOKIE_NAME)
            .for_each(|c| jar.add_original(c));
        if jar.get(COOKIE_NAME).is_none() {
            return Session::default();
        }
        let stale = Session { stale: true, ..Session::default() };
        let Some(cookie) = jar.private(&self.key).get(COOKIE_NAME) else { return stale };
        let Ok(mut session) = serde_json::from_str::<Session>(cookie.value()) else {
            return stale;
        };
        if session.user_id.is_some() && unix_now() - session.signed_in_at > self.max_age_secs {
            session.sign_out();
            session.stale = true;
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
        session.sign_in(&user(42, "$argon2id$salt-a"), 3);
        session.flash("You were logged in");
        let set_cookie = codec(1).write(&session);
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
        assert!(!set_cookie.contains("logged"), "the cookie is encrypted");
        let pair = cookie_pair(&set_cookie);
        assert_eq!(codec(1).read(Some(&pair)), session);
        let stale = Session { stale: true, ..Session::default() };
        assert_eq!(codec(2).read(Some(&pair)), stale);
        assert_eq!(codec(1).read(Some("session=forged")), stale);
        assert_eq!(codec(1).read(Some("other=1")), Session::default());
    }

    fn user(id: i64, pw_hash: &str) -> User {
        User {
            id: UserId(id),
            username: "u".into(),
            email: "u@x".into(),
            pw_hash: pw_hash.into(),
            disabled: false,
        }
    }

    #[test]
    fn sessions_end_with_the_generation_the_password_or_the_user() {
        let alice = user(7, "$argon2id$salt-a");
        let mut session = Session::default();
        session.sign_in(&alice, 2);
        assert!(session.is_valid_for(&alice, 2));
        assert!(!session.is_valid_for(&alice, 3), "signed out everywhere");
        let new_password = user(7, "$argon2id$salt-b");
        assert!(!session.is_valid_for(&new_password, 2), "password changed");
        let restored_stranger = user(7, "$argon2id$salt-z");
        assert!(!session.is_valid_for(&restored_stranger, 2), "another user under id 7");
        let disabled = User { disabled: true, ..alice.clone() };
        assert!(!session.is_valid_for(&disabled, 2));
    }

    #[test]
    fn empty_sessions_remove_the_cookie_and_flashes_are_bounded() {
        assert!(codec(1).write(&Session::default()).contains("Max-Age=0"));
        let mut session = Session::default();
        (0..9).for_each(|i| session.flash(i.to_string()));
        assert_eq!(session.flashes, ["4", "5", "6", "7", "8"]);
    }
}
