//! The access log's JSON lines, written straight from the event's fields.
//!
//! A line is the one tracing-subscriber's JSON formatter writes (`timestamp`, `level`,
//! `fields`, `target`, in that order, the same escaping and number formats), built in one
//! buffer that each thread keeps and reuses: the stock formatter first renders the
//! timestamp into a string of its own, then hands each field through a map visitor and an
//! adaptor that checks every piece it writes for UTF-8, which cost a request more than its
//! routing did (BENCHMARKS.md). The timestamp's date and time of day are rendered once a
//! second per thread ([`Clock`]); only its microseconds are written per line. Names and
//! strings with nothing to escape, nearly all of them, are copied as they are; serde_json
//! writes the others, and every number.
//! Every other event, and an access event inside a span, goes to the formatter this one
//! wraps.

use minitwit_cli::serve::ACCESS_TARGET;
use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The longest access line expected: the buffer starts this large.
const LINE_CAPACITY: usize = 320;

/// A timestamp's date and time of day, as the stock formatter writes them (RFC 3339, UTC).
const SECOND: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

thread_local! {
    /// This thread's line buffer and clock, reused from line to line.
    static LINE: RefCell<(Vec<u8>, Clock)> =
        RefCell::new((Vec::with_capacity(LINE_CAPACITY), Clock::default()));
}

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
        let reused = LINE.try_with(|cell| {
            let mut state = cell.try_borrow_mut().ok()?;
            let (line, clock) = &mut *state;
            Some(write_line(line, clock, event, &mut writer))
        });
        match reused {
            Ok(Some(written)) => written,
            // The buffer is held (only if formatting a line logged one: it never does) or
            // gone (the thread is ending): a buffer of its own.
            _ => write_line(&mut Vec::new(), &mut Clock::default(), event, &mut writer),
        }
    }
}

/// Builds the line in `line` (emptied first) and hands it to `writer`.
fn write_line(
    line: &mut Vec<u8>,
    clock: &mut Clock,
    event: &Event<'_>,
    writer: &mut Writer<'_>,
) -> fmt::Result {
    line.clear();
    write_access_line(line, clock.timestamp(SystemTime::now()), event)?;
    // Made of text and serde_json's output: always UTF-8.
    writer.write_str(std::str::from_utf8(line).map_err(|_| fmt::Error)?)
}

/// Writes the whole line, newline included, into `line`.
fn write_access_line(line: &mut Vec<u8>, timestamp: &str, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    line.extend_from_slice(b"{\"timestamp\":");
    push_str(line, timestamp)?;
    line.extend_from_slice(b",\"level\":");
    push_str(line, meta.level().as_str())?;
    line.extend_from_slice(b",\"fields\":{");
    let mut fields = FieldWriter { line, first: true, result: Ok(()) };
    event.record(&mut fields);
    fields.result?;
    line.extend_from_slice(b"},\"target\":");
    push_str(line, meta.target())?;
    line.extend_from_slice(b"}\n");
    Ok(())
}

/// Appends `text` as a JSON string. Text with nothing to escape (names, labels, ids:
/// nearly every access line) is copied as it is; any other is written by serde_json.
fn push_str(line: &mut Vec<u8>, text: &str) -> fmt::Result {
    // Every byte looked at, with no early exit, so that the compiler can check many at once.
    let escapes = text
        .bytes()
        .fold(false, |found, byte| found | (byte < 0x20) | (byte == b'"') | (byte == b'\\'));
    if escapes {
        return push_json(line, text);
    }
    line.push(b'"');
    line.extend_from_slice(text.as_bytes());
    line.push(b'"');
    Ok(())
}

/// Appends `value` as serde_json writes it.
fn push_json<V: serde::Serialize + ?Sized>(line: &mut Vec<u8>, value: &V) -> fmt::Result {
    serde_json::to_writer(line, value).map_err(|_| fmt::Error)
}

/// A timestamp's text, its date and time of day rendered once per second.
#[derive(Default)]
struct Clock {
    /// The second `text` begins with, in seconds since the epoch.
    second: Option<u64>,
    /// The length of that second's text, `YYYY-MM-DDTHH:MM:SS`.
    second_len: usize,
    /// The last timestamp: the second's text, then `.uuuuuuZ`.
    text: String,
}

impl Clock {
    /// `now` as the stock formatter writes it: RFC 3339 in UTC, to the microsecond.
    fn timestamp(&mut self, now: SystemTime) -> &str {
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.second != Some(since_epoch.as_secs()) {
            self.text = OffsetDateTime::from(now).format(SECOND).unwrap_or_default();
            self.second_len = self.text.len();
            self.second = Some(since_epoch.as_secs());
        }
        self.text.truncate(self.second_len);
        self.text.push('.');
        let micros = since_epoch.subsec_micros();
        for place in [100_000, 10_000, 1_000, 100, 10, 1] {
            self.text.push(char::from_digit(micros / place % 10, 10).unwrap_or('0'));
        }
        self.text.push('Z');
        &self.text
    }
}

/// Writes an event's fields as the members of one JSON object, in the order they were
/// recorded, as tracing-serde does: strings and `Debug` values as strings, numbers and
/// booleans as themselves. The first failure stops it.
struct FieldWriter<'a> {
    line: &'a mut Vec<u8>,
    first: bool,
    result: fmt::Result,
}

impl FieldWriter<'_> {
    /// Writes the member's name and colon; whether its value is to be written.
    fn name(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        if !std::mem::take(&mut self.first) {
            self.line.push(b',');
        }
        self.result = push_str(self.line, field.name());
        self.line.push(b':');
        self.result.is_ok()
    }

    fn json<V: serde::Serialize + ?Sized>(&mut self, field: &Field, value: &V) {
        if self.name(field) {
            self.result = push_json(self.line, value);
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.json(field, &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.json(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.json(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.json(field, &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.name(field) {
            self.result = push_str(self.line, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.json(field, &format_args!("{value:?}"));
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
    fn a_line_is_written_whole_while_the_threads_buffer_is_held() {
        let event = || access_event("held", 3.25, 200);
        let ours = LINE.with(|cell| {
            let _held = cell.borrow_mut();
            line(true, event)
        });
        assert_eq!(ours, line(false, event));
    }

    #[test]
    fn the_clock_writes_rfc_3339_to_the_microsecond_across_seconds() {
        let at = |seconds: u64, micros: u64| {
            UNIX_EPOCH + std::time::Duration::from_micros(seconds * 1_000_000 + micros)
        };
        let mut clock = Clock::default();
        let cases = [
            (at(0, 0), "1970-01-01T00:00:00.000000Z"),
            (at(1_796_620_708, 999_999), "2026-12-07T05:18:28.999999Z"),
            (at(1_796_620_709, 1), "2026-12-07T05:18:29.000001Z"),
            (at(1_796_620_709, 120_300), "2026-12-07T05:18:29.120300Z"),
            (at(1_709_164_799, 500_000), "2024-02-28T23:59:59.500000Z"),
            (at(1_709_164_800, 42), "2024-02-29T00:00:00.000042Z"),
            (at(1_796_620_708, 7), "2026-12-07T05:18:28.000007Z"),
        ];
        for (now, expected) in cases {
            assert_eq!(clock.timestamp(now), expected);
        }
    }

    #[test]
    fn the_clock_agrees_with_the_stock_timestamp() {
        use tracing_subscriber::fmt::time::FormatTime as _;
        let mut stock = String::new();
        let before = SystemTime::now();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut stock))
            .unwrap();
        let after = SystemTime::now();
        let mut clock = Clock::default();
        let ours = [clock.timestamp(before).to_owned(), clock.timestamp(after).to_owned()];
        assert!(ours[0] <= stock && stock <= ours[1], "{ours:?} against {stock}");
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
