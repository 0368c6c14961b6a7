//! The caps on open streams: per process and per client address, counted while each
//! stream's [`Slot`] lives (it goes with the response body, so a stream counts until its
//! connection lets go of it).

use super::STREAMS_OPEN;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Open streams, in all and by client address.
pub(crate) struct Slots {
    max: usize,
    per_address: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    all: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Which cap refused a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The process has its most streams open.
    Process,
    /// The client's address has its most streams open.
    Address,
}

/// One open stream's place; given back when dropped.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    address: Option<IpAddr>,
}

impl Slots {
    /// At most `max` streams, `per_address` of them from one address.
    pub(crate) fn new(max: usize, per_address: usize) -> Self {
        Self { max, per_address, open: Mutex::default() }
    }

    /// A slot for a stream from `address` (unknown: only the process cap applies).
    pub(crate) fn take(self: &Arc<Self>, address: Option<IpAddr>) -> Result<Slot, Refusal> {
        let mut open = self.lock();
        if open.all >= self.max {
            return Err(Refusal::Process);
        }
        if let Some(address) = address {
            let count = open.by_address.entry(address).or_insert(0);
            if *count >= self.per_address {
                return Err(Refusal::Address);
            }
            *count += 1;
        }
        open.all += 1;
        gauge(open.all);
        Ok(Slot { slots: Arc::clone(self), address })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Counts only: a poisoned lock still holds good numbers.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.all = open.all.saturating_sub(1);
        if let Some(address) = self.address
            && let Some(count) = open.by_address.get_mut(&address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&address);
            }
        }
        gauge(open.all);
    }
}

#[allow(clippy::cast_precision_loss)] // stream counts are far below 2^52
fn gauge(open: usize) {
    metrics::gauge!(STREAMS_OPEN).set(open as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_process_and_per_address_and_slots_come_back() {
        let slots = Arc::new(Slots::new(3, 2));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(Some(a)).unwrap();
        let _second = slots.take(Some(a)).unwrap();
        assert_eq!(slots.take(Some(a)).err(), Some(Refusal::Address));
        let _third = slots.take(Some(b)).unwrap();
        assert_eq!(slots.take(Some(b)).err(), Some(Refusal::Process));
        drop(first);
        assert!(slots.take(Some(a)).is_ok(), "a slot given back is free again");
    }
}
