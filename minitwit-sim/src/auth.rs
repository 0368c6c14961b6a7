//! The simulator's credentials: configuration, and the check every protected endpoint
//! makes. The comparison is constant-time and the password never reaches a log line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use minitwit_core::rate_limit::Throttle;
use subtle::ConstantTimeEq as _;
use warp::http::HeaderValue;

/// What the API needs besides the service: the credentials the simulator must present with
/// HTTP Basic authentication, and the throttle on registrations without them.
#[derive(Clone)]
pub struct SimConfig {
    /// The simulator's user name (the course uses `simulator`).
    pub username: String,
    /// The simulator's password (the course uses `super_safe!`). Never printed.
    pub password: String,
    /// Registrations per client address from callers without the simulator's
    /// credentials (each costs a password hash; the simulator's own are trusted).
    /// Default: 20 at once, then one every 30 seconds.
    pub register_per_address: Throttle,
}

impl Default for SimConfig {
    /// The course's credentials, `simulator` / `super_safe!`, and the default throttle.
    fn default() -> Self {
        Self {
            username: "simulator".to_owned(),
            password: "super_safe!".to_owned(),
            register_per_address: Throttle {
                burst: 20,
                replenish_every: std::time::Duration::from_secs(30),
            },
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("register_per_address", &self.register_per_address)
            .finish()
    }
}

impl SimConfig {
    /// Whose idempotency keys a request's keys are (see `minitwit_core::idempotency`):
    /// the simulator's, with its credentials, else anonymous callers' (who can only
    /// register).
    pub fn key_scope(&self, header: Option<&HeaderValue>) -> String {
        if self.authorizes(header) {
            format!("api:{}", self.username)
        } else {
            "api:anonymous".to_owned()
        }
    }

    /// Whether an `Authorization` header carries exactly these credentials (scheme `Basic`,
    /// any case). The decoded `user:password` is compared in constant time.
    pub fn authorizes(&self, header: Option<&HeaderValue>) -> bool {
        let Some(presented) = header.and_then(|value| basic_credentials(value.as_bytes())) else {
            return false;
        };
        self.matches(&presented)
    }

    /// Whether `presented` is `user:password`, compared in place, piece by piece, in
    /// constant time for credentials of the right length (no copy of the expected pair).
    fn matches(&self, presented: &[u8]) -> bool {
        let (user, password) = (self.username.as_bytes(), self.password.as_bytes());
        if presented.len() != user.len() + 1 + password.len() {
            return false;
        }
        let (presented_user, rest) = presented.split_at(user.len());
        let (colon, presented_password) = rest.split_at(1);
        (presented_user.ct_eq(user) & colon.ct_eq(b":") & presented_password.ct_eq(password)).into()
    }
}

/// The decoded `user:password` bytes of a `Basic` authorization value, if it is one.
fn basic_credentials(value: &[u8]) -> Option<Vec<u8>> {
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    STANDARD.decode(rest.trim_ascii()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_test_support::simulator;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("test values are valid headers")
    }

    #[test]
    fn accepts_only_the_configured_credentials() {
        let config = SimConfig::default();
        let encoded = simulator::AUTHORIZATION.trim_start_matches("Basic ");
        assert!(config.authorizes(Some(&header(simulator::AUTHORIZATION))));
        assert!(config.authorizes(Some(&header(&format!("basic  {encoded} ")))));
        let bearer = format!("Bearer {encoded}");
        for bad in ["", "Basic", "Basic !!!", &bearer, "Basic eDp5"] {
            assert!(!config.authorizes(Some(&header(bad))), "{bad}");
        }
        assert!(!config.authorizes(None));
    }

    #[test]
    fn every_piece_of_the_pair_is_compared() {
        let config = SimConfig::default();
        let basic = |pair: &str| header(&format!("Basic {}", STANDARD.encode(pair)));
        assert!(config.authorizes(Some(&basic("simulator:super_safe!"))));
        // Each the expected pair's length, one piece wrong.
        for bad in ["simulatoR:super_safe!", "simulator;super_safe!", "simulator:super_safe?"] {
            assert!(!config.authorizes(Some(&basic(bad))), "{bad}");
        }
        for bad in ["simulator:super_safe", "simulator:super_safe!!", "simulator", ":"] {
            assert!(!config.authorizes(Some(&basic(bad))), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        assert!(!format!("{:?}", SimConfig::default()).contains(simulator::PASSWORD));
    }
}
