//! Rate limits for guessable or expensive actions (login attempts, registrations), shared
//! by both front ends.
//!
//! A [`RateTable`] is a fixed array of GCRA cells (governor's direct limiters), a key
//! picking its cell by a hash seeded randomly per process. Memory is fixed whatever keys
//! clients invent, and each attempt costs one hash and one atomic update: O(1), never a
//! scan. Two keys may share a cell, which only makes their limit stricter; with a secret
//! seed nobody can aim a key at someone else's cell.

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

/// Cells in a [`RateTable`] unless told otherwise.
pub const DEFAULT_CELLS: usize = 16_384;

/// A rate limit: `burst` attempts at once, then one more every `replenish_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// How many attempts may be made at once. Zero is treated as one.
    pub burst: u32,
    /// How long until one more attempt is allowed. Zero is treated as one nanosecond.
    pub replenish_every: Duration,
}

impl Throttle {
    fn quota(self) -> Quota {
        let period = self.replenish_every.max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period)
            .map_or(Quota::per_second(NonZeroU32::MAX), |quota| quota.allow_burst(burst))
    }
}

/// One limit applied per key, in fixed memory, allocated at the first attempt (a table
/// of [`DEFAULT_CELLS`] holds 1.2 MB, and a server has several that may never be used:
/// the simulator's own sign-ups pass its registration limit untouched).
pub struct RateTable {
    cells: OnceLock<Box<[DefaultDirectRateLimiter]>>,
    len: usize,
    quota: Quota,
    seed: RandomState,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allocated = self.cells.get().is_some();
        f.debug_struct("RateTable")
            .field("cells", &self.len)
            .field("allocated", &allocated)
            .finish()
    }
}

impl RateTable {
    /// A table of `cells` cells (at least one), each limited by `limit`.
    pub fn new(limit: Throttle, cells: usize) -> Self {
        let (quota, clock) = (limit.quota(), DefaultClock::default());
        Self { cells: OnceLock::new(), len: cells.max(1), quota, seed: RandomState::new(), clock }
    }

    /// Counts one attempt for `key`; `Err(wait)` (until the next attempt may pass) when
    /// its limit is reached.
    pub fn check(&self, key: &impl Hash) -> Result<(), Duration> {
        let cell = &self.cells()[self.cell_of(key)];
        cell.check().map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// The cells, allocated on first use.
    fn cells(&self) -> &[DefaultDirectRateLimiter] {
        self.cells.get_or_init(|| {
            let cell =
                || DefaultDirectRateLimiter::direct_with_clock(self.quota, self.clock.clone());
            (0..self.len).map(|_| cell()).collect()
        })
    }

    fn cell_of(&self, key: &impl Hash) -> usize {
        let hash = self.seed.hash_one(key);
        // The table is far smaller than u64::MAX, so the remainder fits a usize.
        usize::try_from(hash % self.len as u64).unwrap_or(0)
    }
}

/// The address a request is throttled by: an IPv4-mapped IPv6 address (a dual-stack
/// listener's IPv4 clients) as the IPv4 address it is, any other IPv6 address cut to its
/// /64, which one client usually holds whole.
///
/// Which address a request comes from (the connection's peer, or what a trusted proxy
/// says) is the server's to decide, from HTTP; it puts the result in each request's
/// extensions, and the front ends' throttles read it from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The client at `ip`, grouped.
    pub fn new(ip: IpAddr) -> Self {
        Self(client_key(ip))
    }

    /// The grouped address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

/// `ip` grouped as [`ClientAddress`] says.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: Throttle = Throttle { burst: 2, replenish_every: Duration::from_secs(43_200) };

    #[test]
    fn each_key_has_its_own_limit() {
        let table = RateTable::new(TWO, DEFAULT_CELLS);
        assert!(table.check(&"alice").is_ok() && table.check(&"alice").is_ok());
        let wait = table.check(&"alice").unwrap_err();
        assert!(wait > Duration::from_secs(40_000), "{wait:?}");
        assert!(table.check(&"bob").is_ok());
    }

    #[test]
    fn memory_is_fixed_whatever_the_keys_and_taken_at_the_first_attempt() {
        let table = RateTable::new(TWO, 8);
        assert!(table.cells.get().is_none(), "nothing allocated before an attempt");
        for key in 0..10_000u32 {
            let _ = table.check(&key);
        }
        assert_eq!(table.cells().len(), 8);
        assert!((0..100u32).all(|key| table.check(&key).is_err()), "every cell is spent");
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4_and_ipv6_goes_by_64() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(client_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
        let other: IpAddr = "::ffff:10.1.2.4".parse().unwrap();
        assert_ne!(client_key(mapped), client_key(other), "two IPv4 clients, two buckets");
        let v6: IpAddr = "2001:db8::1:2:3:4".parse().unwrap();
        assert_eq!(client_key(v6), "2001:db8::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn client_addresses_are_grouped() {
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(ClientAddress::new(mapped).ip(), "10.0.0.9".parse::<IpAddr>().unwrap());
    }
}
