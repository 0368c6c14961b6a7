//! The sweep of expired idempotency receipts: every replica removes, now and then, a
//! bounded number of receipts older than the window (the store ignores them anyway), so
//! the store keeps about one window of them whatever the traffic.

use minitwit_core::MiniTwit;
use std::time::Duration;

/// How often a server sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Sweeps every `every` (the first time one period after start: a server starting writes
/// nothing), forever; a failed sweep is logged and tried again next time.
pub async fn sweep(service: MiniTwit, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        match service.forget_expired_receipts().await {
            Ok(0) => {}
            Ok(forgotten) => tracing::debug!(forgotten, "expired idempotency receipts removed"),
            Err(err) => tracing::warn!(error = %err, "sweeping idempotency receipts failed"),
        }
    }
}
