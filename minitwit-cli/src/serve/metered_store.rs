//! [`MeteredStore`]: a [`Store`] decorator that records every operation's latency in the
//! `minitwit_store_operation_duration_seconds` histogram, by backend, operation and
//! outcome. It adds no behaviour: every call goes straight to the wrapped store, as a
//! [`StoreLayer`] forwards it, and [`StoreLayer::around`] times it.

use super::metrics::{Handles, STORE_SECONDS};
use async_trait::async_trait;
use metrics::Histogram;
use minitwit_core::consistency::ReadToken;
use minitwit_core::layer::{Operation, StoreLayer};
use minitwit_core::store::StoreResult;
use minitwit_core::{Cursor, Store, Timeline, TimelineEntry};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Times every operation of the wrapped store.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    /// The histogram of each operation and outcome, shared with the readers' views.
    histograms: Arc<Handles<(&'static str, bool), Histogram>>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner, histograms: Arc::default() }
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let start = Instant::now();
        let result = call.await;
        let register = |&(operation, ok): &(&'static str, bool)| {
            metrics::histogram!(
                STORE_SECONDS,
                "backend" => self.inner.backend(),
                "operation" => operation,
                "outcome" => if ok { "ok" } else { "error" }
            )
        };
        let seconds = start.elapsed().as_secs_f64();
        self.histograms.with((operation, result.is_ok()), register, |h| h.record(seconds));
        result
    }
}

/// Times every forwarded call by its name, and each timeline read by its kind.
#[async_trait]
impl StoreLayer for MeteredStore {
    fn inner(&self) -> &dyn Store {
        &*self.inner
    }

    async fn around<T, F>(&self, operation: Operation, call: F) -> StoreResult<T>
    where
        T: Send,
        F: Future<Output = StoreResult<T>> + Send,
    {
        self.timed(operation.name, call).await
    }

    /// The wrapped store's view for this reader, timed as well.
    fn for_reader(&self, token: ReadToken) -> Option<Arc<dyn Store>> {
        let inner = self.inner.for_reader(token)?;
        Some(Arc::new(Self { inner, histograms: Arc::clone(&self.histograms) }))
    }

    async fn timeline(
        &self,
        timeline: Timeline,
        before: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<TimelineEntry>> {
        let operation = match timeline {
            Timeline::Public => "timeline_public",
            Timeline::User(_) => "timeline_user",
            Timeline::Home(_) => "timeline_home",
        };
        self.timed(operation, self.inner.timeline(timeline, before, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minitwit_core::testkit::MemoryStore;

    async fn fresh() -> (Arc<dyn Store>, ()) {
        (Arc::new(MeteredStore::new(Arc::new(MemoryStore::new()))), ())
    }

    // The decorator must keep the whole contract of the store it wraps.
    minitwit_core::conformance_tests!(fresh);
}
