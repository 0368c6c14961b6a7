//! [`WebConfig`]: what the site needs besides the service — the session key, cookie and
//! proxy settings, login throttling quotas and the body size limit — with good defaults.

use minitwit_core::feed::LiveLimits;
use std::fmt;
use std::time::Duration;

/// The shortest session key accepted, in bytes: the cookie keys are derived from it
/// (HKDF-SHA256), which needs at least 256 bits of key material.
pub const MIN_SESSION_KEY_LEN: usize = 32;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The session key is shorter than [`MIN_SESSION_KEY_LEN`] bytes.
    #[error("the session key must be at least {MIN_SESSION_KEY_LEN} bytes long, got {0}")]
    SessionKeyTooShort(usize),
}

/// The secret from which the cookie encryption keys are derived. Never printed.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl SessionKey {
    /// The key bytes.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

pub use minitwit_core::rate_limit::Throttle;

/// What the site needs besides the service. Build it with [`WebConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
pub struct WebConfig {
    session_key: SessionKey,
    /// The site is served over HTTPS: cookies are marked `Secure` and every answer carries
    /// `Strict-Transport-Security`. Default: off.
    pub secure_cookies: bool,
    /// How long a sign-in lasts. Default: 30 days.
    pub session_max_age: Duration,
    /// Login attempts per account name from one client address. Default: 10 at once,
    /// then one every 6 seconds.
    pub login_per_account: Throttle,
    /// Login attempts per account name from all addresses together, a guard against
    /// guessing spread over many addresses; above what one address may send, so nobody
    /// locks out another's account alone. Default: 300 at once, then one a second.
    pub login_account_guard: Throttle,
    /// Registrations per client address (each costs a password hash). Default: 20 at
    /// once, then one every 30 seconds.
    pub register_per_address: Throttle,
    /// Login attempts per client address (IPv6 by /64). Default: 30 at once, then one
    /// every 2 seconds.
    pub login_per_address: Throttle,
    /// The largest form body accepted, in bytes; larger ones get 413. Default: 64 KiB.
    pub max_form_bytes: u64,
    /// Live timelines' limits (CONTRACT.md §3.6).
    pub live: LiveConfig,
}

impl WebConfig {
    /// A configuration with good defaults, signing and encrypting cookies with keys
    /// derived from `session_key` (at least [`MIN_SESSION_KEY_LEN`] bytes; the core's
    /// `MiniTwit::session_key()` gives 64 random bytes).
    pub fn new(session_key: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let key = session_key.into();
        if key.len() < MIN_SESSION_KEY_LEN {
            return Err(ConfigError::SessionKeyTooShort(key.len()));
        }
        Ok(Self {
            session_key: SessionKey(key),
            secure_cookies: false,
            session_max_age: Duration::from_secs(30 * 24 * 60 * 60),
            login_per_account: Throttle { burst: 10, replenish_every: Duration::from_secs(6) },
            login_per_address: Throttle { burst: 30, replenish_every: Duration::from_secs(2) },
            login_account_guard: Throttle { burst: 300, replenish_every: Duration::from_secs(1) },
            register_per_address: Throttle { burst: 20, replenish_every: Duration::from_secs(30) },
            max_form_bytes: 64 * 1024,
            live: LiveConfig::default(),
        })
    }

    /// The session key.
    pub fn session_key(&self) -> &SessionKey {
        &self.session_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_keys_and_hides_the_key() {
        assert_eq!(WebConfig::new(vec![1; 31]).unwrap_err(), ConfigError::SessionKeyTooShort(31));
        let config = WebConfig::new(vec![7; 64]).unwrap();
        assert!(!format!("{config:?}").contains("7, 7"));
    }
}

/// What live timelines allow. Build with [`Default`] and adjust the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Most streams open at once in this process; beyond, 503. Default: 512, half the
    /// listener's connections, so streams never take every connection.
    pub max_streams: usize,
    /// Most streams open at once from one client address; beyond, 429. Default: 16.
    pub max_streams_per_address: usize,
    /// A heartbeat comment is sent after this long without an event. Default: 15 s.
    pub heartbeat: Duration,
    /// A stream that sent no event for this long ends (the browser reconnects, with its
    /// current cookie). Default: 5 minutes.
    pub idle: Duration,
    /// How often a home stream checks that its session is still valid. Default: 30 s.
    pub session_check: Duration,
    /// The reconnection delay streams ask browsers for. Default: 2 s.
    pub retry: Duration,
    /// Events queued for one stream; a reader further behind is dropped. Default: 64.
    pub queue: usize,
    /// The shortest time between two writes to one stream: events that come sooner wait
    /// and go in the next write, together. An event after a quiet spell goes at once.
    /// Zero writes every event as it comes. Default: 100 ms.
    pub write_window: Duration,
    /// What a reader may have missed before it is told to reload instead.
    pub limits: LiveLimits,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_streams: 512,
            max_streams_per_address: 16,
            heartbeat: Duration::from_secs(15),
            idle: Duration::from_secs(300),
            session_check: Duration::from_secs(30),
            retry: Duration::from_secs(2),
            queue: 64,
            write_window: Duration::from_millis(100),
            limits: LiveLimits::default(),
        }
    }
}
