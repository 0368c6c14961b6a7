//! Login throttling per account name and per client address (governor's GCRA), so
//! password guessing is slow whether it targets one account or sprays many.

use crate::config::Throttle;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Keys kept before idle ones are dropped: bounds memory whatever names are tried.
const MAX_TRACKED_KEYS: usize = 100_000;
/// Account names longer than any valid username are throttled as one key.
const MAX_KEY_CHARS: usize = 80;

/// The login attempt limiters.
pub(crate) struct LoginThrottle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

fn quota(throttle: Throttle) -> Quota {
    let period = throttle.replenish_every.max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(throttle.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map_or(Quota::per_second(NonZeroU32::MAX), |q| q.allow_burst(burst))
}

/// Counts one attempt for `key`; `Err(wait)` when the limit is reached.
fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    clock: &DefaultClock,
) -> Result<(), Duration> {
    if limiter.len() > MAX_TRACKED_KEYS {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(clock.now()))
}

impl LoginThrottle {
    /// Limiters with these quotas.
    pub fn new(per_account: Throttle, per_address: Throttle) -> Self {
        Self {
            per_account: DefaultKeyedRateLimiter::keyed(quota(per_account)),
            per_address: DefaultKeyedRateLimiter::keyed(quota(per_address)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts a login attempt for `username` from `address`; `Err(wait)` (how long until
    /// the next attempt may succeed) when either limit is reached.
    pub fn check(&self, username: &str, address: Option<IpAddr>) -> Result<(), Duration> {
        if let Some(address) = address {
            check(&self.per_address, &address, &self.clock)?;
        }
        let account: String = username.chars().take(MAX_KEY_CHARS).collect();
        check(&self.per_account, &account, &self.clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_A_DAY: Throttle = Throttle { burst: 2, replenish_every: Duration::from_secs(43_200) };
    const LOTS: Throttle = Throttle { burst: 1000, replenish_every: Duration::from_millis(1) };

    #[test]
    fn limits_each_account_separately() {
        let throttle = LoginThrottle::new(TWO_A_DAY, LOTS);
        let ip = "127.0.0.1".parse().ok();
        assert!(throttle.check("alice", ip).is_ok());
        assert!(throttle.check("alice", ip).is_ok());
        assert!(throttle.check("alice", ip).is_err());
        assert!(throttle.check("bob", ip).is_ok());
    }

    #[test]
    fn limits_each_address_separately() {
        let throttle = LoginThrottle::new(LOTS, TWO_A_DAY);
        let (a, b) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        assert!(throttle.check("x", a).is_ok() && throttle.check("y", a).is_ok());
        assert!(throttle.check("z", a).is_err());
        assert!(throttle.check("z", b).is_ok());
    }
}
