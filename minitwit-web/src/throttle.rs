//! Login and registration throttling, in fixed memory ([`RateTable`]s from the core).
//!
//! A login attempt counts against three limits:
//! - the account from this address: password guessing against one account is slow, and
//!   a guesser locks out only themselves, never the account's owner elsewhere;
//! - the address: spraying many accounts from one place is slow;
//! - the account from everywhere, a guard far above what one address may send, against
//!   guessing spread over many addresses.
//!
//! A registration (which costs a password hash) counts against its address.

use crate::config::WebConfig;
use minitwit_core::rate_limit::DEFAULT_CELLS;
use minitwit_core::rate_limit::RateTable;
use std::net::IpAddr;
use std::time::Duration;

/// Account names longer than any valid username are throttled as one key.
const MAX_KEY_CHARS: usize = 80;

/// The site's limiters.
pub(crate) struct SiteThrottle {
    account_from_address: RateTable,
    address: RateTable,
    account_guard: RateTable,
    registration: RateTable,
}

impl SiteThrottle {
    /// Limiters with `config`'s quotas.
    pub fn new(config: &WebConfig) -> Self {
        Self {
            account_from_address: RateTable::new(config.login_per_account, DEFAULT_CELLS),
            address: RateTable::new(config.login_per_address, DEFAULT_CELLS),
            account_guard: RateTable::new(config.login_account_guard, DEFAULT_CELLS),
            registration: RateTable::new(config.register_per_address, DEFAULT_CELLS),
        }
    }

    /// Counts a login attempt for `username` from `address`; `Err(wait)` (how long until
    /// the next attempt may succeed) when a limit is reached.
    pub fn login(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        let account: String = username.chars().take(MAX_KEY_CHARS).collect();
        if let Some(address) = address {
            self.address.check(&address)?;
        }
        self.account_from_address.check(&(&account, address))?;
        self.account_guard.check(&account)
    }

    /// Counts a registration from `address`; `Err(wait)` when its limit is reached.
    pub fn register(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        address.map_or(Ok(()), |address| self.registration.check(&address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::rate_limit::Throttle;

    const TWO_A_DAY: Throttle = Throttle { burst: 2, replenish_every: Duration::from_secs(43_200) };
    const LOTS: Throttle = Throttle { burst: 1000, replenish_every: Duration::from_millis(1) };

    fn throttle(per_account: Throttle, per_address: Throttle, guard: Throttle) -> SiteThrottle {
        let mut config = WebConfig::new(vec![1; 64]).unwrap();
        config.login_per_account = per_account;
        config.login_per_address = per_address;
        config.login_account_guard = guard;
        config.register_per_address = TWO_A_DAY;
        SiteThrottle::new(&config)
    }

    #[test]
    fn a_guesser_locks_out_only_themselves() {
        let throttle = throttle(TWO_A_DAY, LOTS, LOTS);
        let (attacker, owner) = ("10.0.0.66".parse().ok(), "10.0.0.1".parse().ok());
        assert!(throttle.login("alice", attacker).is_ok());
        assert!(throttle.login("alice", attacker).is_ok());
        assert!(throttle.login("alice", attacker).is_err());
        assert!(throttle.login("alice", owner).is_ok(), "the owner still signs in");
        assert!(throttle.login("bob", attacker).is_ok());
    }

    #[test]
    fn limits_each_address_separately() {
        let throttle = throttle(LOTS, TWO_A_DAY, LOTS);
        let (a, b) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        assert!(throttle.login("x", a).is_ok() && throttle.login("y", a).is_ok());
        assert!(throttle.login("z", a).is_err());
        assert!(throttle.login("z", b).is_ok());
    }

    #[test]
    fn the_guard_stops_guessing_spread_over_addresses() {
        let throttle = throttle(LOTS, LOTS, TWO_A_DAY);
        assert!(throttle.login("alice", "10.0.0.1".parse().ok()).is_ok());
        assert!(throttle.login("alice", "10.0.0.2".parse().ok()).is_ok());
        assert!(throttle.login("alice", "10.0.0.3".parse().ok()).is_err());
    }

    #[test]
    fn registrations_are_limited_per_address() {
        let throttle = throttle(LOTS, LOTS, LOTS);
        let (a, b) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        assert!(throttle.register(a).is_ok() && throttle.register(a).is_ok());
        assert!(throttle.register(a).is_err());
        assert!(throttle.register(b).is_ok());
    }
}
