//! [`Streams`]: the live timelines of one site, as the site holds them: the change feed,
//! the caps, the shutdown signal, and the entries rendered lately.

use super::Slots;
use crate::config::LiveConfig;
use crate::error::WebError;
use minitwit_core::feed::LiveFeed;
use minitwit_core::{MessageId, TimelineEntry};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// The live timelines of one site: the feed, the caps, the shutdown signal, and the
/// entries rendered lately.
pub(crate) struct Streams {
    pub(super) feed: Option<LiveFeed>,
    pub(super) config: LiveConfig,
    pub(super) slots: Arc<Slots>,
    closing: watch::Sender<bool>,
    rendered: Mutex<VecDeque<(MessageId, Arc<str>)>>,
}

/// Entries kept rendered: every stream sends the newest ones, so each is rendered once.
const RENDERED_KEPT: usize = 32;

impl Streams {
    /// Live timelines over `service`'s store, if it delivers changes and a runtime runs.
    pub(crate) fn new(service: &minitwit_core::MiniTwit, config: LiveConfig) -> Self {
        let feed = tokio::runtime::Handle::try_current()
            .ok()
            .and_then(|_| LiveFeed::start(Arc::clone(service.store()), config.limits));
        Self {
            feed,
            config,
            slots: Arc::new(Slots::new(config.max_streams, config.max_streams_per_address)),
            closing: watch::channel(false).0,
            rendered: Mutex::default(),
        }
    }

    /// An entry's event data, rendered once for every stream that sends it (an entry
    /// never changes): the entry exactly as the page renders it, as a JSON string (SSE
    /// would strip a space from every data line that starts with one).
    pub(crate) fn entry_data(
        &self,
        entry: &TimelineEntry,
        render: impl FnOnce(&TimelineEntry) -> Result<Arc<str>, WebError>,
    ) -> Result<Arc<str>, WebError> {
        let lock = || self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, data)) = lock().iter().find(|(id, _)| *id == entry.id) {
            return Ok(Arc::clone(data));
        }
        let html = render(entry)?;
        let data: Arc<str> = serde_json::Value::from(&*html).to_string().into();
        let mut rendered = lock();
        if rendered.len() >= RENDERED_KEPT {
            rendered.pop_front();
        }
        rendered.push_back((entry.id, Arc::clone(&data)));
        Ok(data)
    }

    /// Ends every stream at once with a retry hint, and refuses new ones (503).
    pub(crate) fn end_all(&self) {
        self.closing.send_replace(true);
    }

    /// A receiver that turns `true` when every stream must end.
    pub(super) fn closing_signal(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    pub(super) fn closing(&self) -> bool {
        *self.closing.borrow()
    }
}
