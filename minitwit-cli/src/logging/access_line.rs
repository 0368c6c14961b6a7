//! The access log's JSON lines, written straight from the event's fields.
//!
//! A line is the one tracing-subscriber's JSON formatter writes (`timestamp`, `level`,
//! `fields`, `target`, in that order, the same escaping and number formats), built in one
//! buffer: the stock formatter first renders the timestamp into a string of its own, then
//! hands each field through a map visitor and an adaptor that checks every piece it
//! writes for UTF-8, which cost a request more than its routing did (BENCHMARKS.md).
//! Every other event, and an access event inside a span, goes to the formatter this one
//! wraps.

use minitwit_cli::serve::ACCESS_TARGET;
use serde::ser::{SerializeMap as _, Serializer as _};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The longest access line expected: the buffer starts this large.
const LINE_CAPACITY: usize = 320;

/// Formats access lines itself and every other event with `inner`.
pub struct AccessJson<F> {
    inner: F,
}

impl<F> AccessJson<F> {
    /// Access lines written here; the rest by `inner` (the stock JSON formatter).
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessJson<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let in_span = event.parent().is_some() || ctx.lookup_current().is_some();
        if event.metadata().target() != ACCESS_TARGET || in_span {
            return self.inner.format_event(ctx, writer, event);
        }
        let line = access_line(event)?;
        writer.write_str(&line)
    }
}

/// The whole line, newline included.
fn access_line(event: &Event<'_>) -> Result<String, fmt::Error> {
    let meta = event.metadata();
    let mut timestamp = String::with_capacity(32);
    SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
    let mut line = Vec::with_capacity(LINE_CAPACITY);
    let mut json = serde_json::Serializer::new(&mut line);
    let mut map = json.serialize_map(None).map_err(|_| fmt::Error)?;
    map.serialize_entry("timestamp", &timestamp).map_err(|_| fmt::Error)?;
    map.serialize_entry("level", meta.level().as_str()).map_err(|_| fmt::Error)?;
    map.serialize_key("fields").map_err(|_| fmt::Error)?;
    map.serialize_value(&Fields(event)).map_err(|_| fmt::Error)?;
    map.serialize_entry("target", meta.target()).map_err(|_| fmt::Error)?;
    map.end().map_err(|_| fmt::Error)?;
    line.push(b'\n');
    // serde_json writes only UTF-8.
    String::from_utf8(line).map_err(|_| fmt::Error)
}

/// An event's fields as one JSON object, in the order they were recorded.
struct Fields<'a, 'e>(&'a Event<'e>);

impl serde::Serialize for Fields<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut visitor = FieldVisitor { map: serializer.serialize_map(None)?, error: None };
        self.0.record(&mut visitor);
        match visitor.error {
            Some(error) => Err(error),
            None => visitor.map.end(),
        }
    }
}

/// Writes each field into the map, as tracing-serde does: strings and `Debug` values as
/// strings, numbers and booleans as themselves. The first failure stops it.
struct FieldVisitor<M: serde::ser::SerializeMap> {
    map: M,
    error: Option<M::Error>,
}

impl<M: serde::ser::SerializeMap> FieldVisitor<M> {
    fn entry<V: serde::Serialize + ?Sized>(&mut self, field: &Field, value: &V) {
        if self.error.is_some() {
            return;
        }
        if let Err(error) = self.map.serialize_entry(field.name(), value) {
            self.error = Some(error);
        }
    }
}

impl<M: serde::ser::SerializeMap> Visit for FieldVisitor<M> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, &format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Lines written, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The line `log` writes, with this module's formatter or the stock one, its
    /// timestamp removed.
    fn line(fast: bool, log: impl FnOnce()) -> String {
        let captured = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(captured.clone())
            .json()
            .with_current_span(true)
            .with_span_list(false);
        let subscriber = tracing_subscriber::registry();
        if fast {
            let layer = layer.map_event_format(AccessJson::new);
            tracing::subscriber::with_default(subscriber.with(layer), log);
        } else {
            tracing::subscriber::with_default(subscriber.with(layer), log);
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let timestamp = value["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z'), "{text}");
        text.replacen(timestamp, "", 1)
    }

    fn access_event(request_id: &str, latency_ms: f64, status: u64) {
        tracing::info!(
            target: ACCESS_TARGET,
            front = "api",
            route = "/msgs/{username}",
            method = "POST",
            request_id,
            status,
            latency_ms,
            "request"
        );
    }

    #[test]
    fn an_access_line_is_the_stock_formatters_line() {
        for (id, latency, status) in [
            ("4b5a4c71b67f25e30000000000000002", 0.160_478_999_999_999_98, 204),
            ("quote\"back\\slash\ttab\u{1}", 1.0, 503),
            ("x", 1e-7, 200),
            ("y", f64::NAN, 200),
        ] {
            let ours = line(true, || access_event(id, latency, status));
            let stock = line(false, || access_event(id, latency, status));
            assert_eq!(ours, stock);
        }
    }

    #[test]
    fn other_events_and_spans_keep_the_stock_formatter() {
        let other = || tracing::warn!(target: "minitwit::serve", error = %"boom", "failed");
        assert_eq!(line(true, other), line(false, other));
        let in_span = || {
            let span = tracing::info_span!("listener", addr = "127.0.0.1:1");
            let _entered = span.enter();
            access_event("z", 2.5, 200);
        };
        let ours = line(true, in_span);
        assert!(ours.contains("\"span\""), "the span is written: {ours}");
        assert_eq!(ours, line(false, in_span));
    }
}
