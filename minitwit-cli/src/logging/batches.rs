//! The log's writer: each thread appends its formatted lines to a buffer of its own, and
//! one writer thread takes every buffer in turn and writes them out in batches.
//!
//! A line therefore costs a copy into its thread's buffer, under a lock that only the
//! writer thread ever contends for: no allocation, no channel, no wake of the writer per
//! line. The writer is woken only when lines arrive while none are pending; it then lets
//! more gather for [`GATHER`] before it takes them all, so under load it writes a few
//! dozen batches a second, and when idle it sleeps.
//!
//! The bound is on lines pending across all buffers: past it, new lines are dropped rather
//! than held without limit, so a slow or blocked output never holds a request up.
//! Each line takes a number as it is pushed, and the writer writes each batch in that
//! order, so lines come out in the order they were logged. Dropping the [`BatchGuard`] writes whatever is pending and stops the writer.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer, once woken, lets lines gather before it takes them.
const GATHER: Duration = Duration::from_millis(20);

/// Bytes the writer gathers before one write to its output.
const WRITE_BUFFER: usize = 64 * 1024;

/// Tells one writer's buffers apart in a thread's cache (tests make several writers).
static NEXT_WRITER: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's buffer, and the writer it belongs to.
    static SLOT: RefCell<Option<(usize, Arc<Slot>)>> = const { RefCell::new(None) };
}

/// The writer as the formatter sees it: hands out a [`LineWriter`] per line.
pub struct Batches {
    shared: Arc<Shared>,
}

/// Keeps the writer thread running; dropping it writes what is pending and stops it.
pub struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a writer thread writing to `output`, holding at most `limit` lines pending.
pub fn spawn<W: Write + Send + 'static>(output: W, limit: usize) -> (Batches, BatchGuard) {
    let shared = Arc::new(Shared {
        id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
        limit,
        pending: AtomicUsize::new(0),
        next_line: AtomicU64::new(0),
        slots: Mutex::new(Vec::new()),
        fallback: Arc::new(Slot::default()),
        stopping: AtomicBool::new(false),
        writer: OnceLock::new(),
    });
    let running = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("minitwit-log".into())
        .spawn(move || running.run(std::io::BufWriter::with_capacity(WRITE_BUFFER, output)));
    let thread = match thread {
        Ok(thread) => {
            let _ = shared.writer.set(thread.thread().clone());
            Some(thread)
        }
        // Without a thread the lines pile up to the bound and the rest are dropped: the
        // server still runs, unlogged, rather than not at all.
        Err(err) => {
            eprintln!("cannot start the log writer: {err}");
            None
        }
    };
    (Batches { shared: Arc::clone(&shared) }, BatchGuard { shared, thread })
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl<'a> MakeWriter<'a> for Batches {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

/// Appends what it is given, one formatted line per write, to this thread's buffer.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the threads writing lines and the writer thread share.
struct Shared {
    id: usize,
    limit: usize,
    /// Lines in the buffers, not yet taken by the writer.
    pending: AtomicUsize,
    /// The number of the next line: the order lines are written in.
    next_line: AtomicU64,
    /// Every thread's buffer.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// The buffer of lines written while a thread is being torn down.
    fallback: Arc<Slot>,
    stopping: AtomicBool,
    writer: OnceLock<Thread>,
}

/// One thread's buffer.
#[derive(Default)]
struct Slot(Mutex<Batch>);

/// Lines gathered and not yet taken.
#[derive(Default)]
struct Batch {
    /// The lines, one after the other.
    bytes: Vec<u8>,
    /// Each line's number and where it ends in `bytes`.
    ends: Vec<(u64, usize)>,
}

impl Batch {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A batch is only ever extended by whole lines: a poisoned lock is still good.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// Adds `line` to the calling thread's buffer, or drops it if the bound is reached.
    fn push(&self, line: &[u8]) {
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        if before >= self.limit {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let number = self.next_line.fetch_add(1, Ordering::Relaxed);
        let appended = SLOT.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut cell) => {
                if !matches!(&*cell, Some((owner, _)) if *owner == self.id) {
                    *cell = Some((self.id, self.register()));
                }
                cell.as_ref().map(|(_, slot)| slot.append(number, line)).is_some()
            }
            Err(_) => false,
        });
        if !matches!(appended, Ok(true)) {
            self.fallback.append(number, line);
        }
        if before == 0 {
            // The writer sleeps while nothing is pending: this is the line that wakes it.
            if let Some(writer) = self.writer.get() {
                writer.unpark();
            }
        }
    }

    /// A new buffer for the calling thread, known to the writer from now on.
    fn register(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot::default());
        self.slots().push(Arc::clone(&slot));
        slot
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Arc<Slot>>> {
        // Only ever holds complete entries: a poisoned lock is still good.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer thread: sleeps while nothing is pending, then gathers and writes.
    fn run(&self, mut output: impl Write) {
        let mut taken = Taken::default();
        loop {
            while self.pending.load(Ordering::Acquire) == 0 && !self.stopping() {
                std::thread::park();
            }
            if self.stopping() {
                self.write_pending(&mut output, &mut taken);
                return;
            }
            std::thread::park_timeout(GATHER);
            self.write_pending(&mut output, &mut taken);
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Takes every buffer's lines and writes them in their order; forgets the buffers of
    /// threads that ended once they are empty. A failed write loses its lines: there is
    /// nowhere else to report it.
    fn write_pending(&self, output: &mut impl Write, taken: &mut Taken) {
        let slots: Vec<Arc<Slot>> =
            self.slots().iter().chain(std::iter::once(&self.fallback)).cloned().collect();
        for slot in &slots {
            taken.take(slot);
        }
        drop(slots);
        let lines = taken.write(output);
        self.pending.fetch_sub(lines, Ordering::AcqRel);
        let _ = output.flush();
        // Held by the list alone: its thread has ended.
        self.slots().retain(|slot| Arc::strong_count(slot) > 1 || !slot.lock().ends.is_empty());
    }
}

impl Slot {
    fn append(&self, number: u64, line: &[u8]) {
        let mut batch = self.lock();
        batch.bytes.extend_from_slice(line);
        let end = batch.bytes.len();
        batch.ends.push((number, end));
    }
}

/// The writer's own: the batches taken in one round, and emptied ones to swap in next.
#[derive(Default)]
struct Taken {
    batches: Vec<Batch>,
    spares: Vec<Batch>,
    /// Every line taken: its number, its batch, where it starts and ends.
    order: Vec<(u64, usize, usize, usize)>,
}

impl Taken {
    /// Swaps `slot`'s batch, if it holds lines, for an empty one.
    fn take(&mut self, slot: &Slot) {
        let mut batch = slot.lock();
        if batch.ends.is_empty() {
            return;
        }
        let mut fresh = self.spares.pop().unwrap_or_default();
        std::mem::swap(&mut *batch, &mut fresh);
        self.batches.push(fresh);
    }

    /// Writes the lines taken in their order; returns how many were taken.
    fn write(&mut self, output: &mut impl Write) -> usize {
        self.order.clear();
        for (index, batch) in self.batches.iter().enumerate() {
            let starts = std::iter::once(0).chain(batch.ends.iter().map(|(_, end)| *end));
            for ((number, end), start) in batch.ends.iter().zip(starts) {
                self.order.push((*number, index, start, *end));
            }
        }
        self.order.sort_unstable_by_key(|(number, ..)| *number);
        for (_, index, start, end) in &self.order {
            let line = self.batches.get(*index).and_then(|batch| batch.bytes.get(*start..*end));
            let _ = output.write_all(line.unwrap_or_default());
        }
        for mut batch in self.batches.drain(..) {
            batch.clear();
            self.spares.push(batch);
        }
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// An output the test can read, or hold up until told to go on.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An output blocked on its first write until `go` is sent.
    struct Blocked {
        go: mpsc::Receiver<()>,
        sink: Sink,
    }

    impl Write for Blocked {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.go.recv();
            self.sink.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(thread: usize, n: usize) -> String {
        format!("{{\"thread\":{thread},\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(n % 97))
    }

    #[test]
    fn every_line_of_every_thread_is_written_whole_and_in_order() {
        let sink = Sink::default();
        let (batches, guard) = spawn(sink.clone(), 1_000_000);
        let batches = Arc::new(batches);
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let batches = Arc::clone(&batches);
                std::thread::spawn(move || {
                    for n in 0..5_000 {
                        batches.make_writer().write_all(line(thread, n).as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let written = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        for thread in 0..4 {
            let mine: Vec<&str> = written
                .lines()
                .filter(|l| l.starts_with(&format!("{{\"thread\":{thread},")))
                .collect();
            let expected: Vec<String> =
                (0..5_000).map(|n| line(thread, n).trim_end().to_owned()).collect();
            assert_eq!(mine, expected, "thread {thread}");
        }
        assert_eq!(written.lines().count(), 20_000);
    }

    #[test]
    fn lines_past_the_bound_are_dropped_while_the_output_is_blocked() {
        let sink = Sink::default();
        let (go, wait) = mpsc::channel();
        let (batches, guard) = spawn(Blocked { go: wait, sink: sink.clone() }, 100);
        // The first line is taken by the writer, which then blocks writing it out.
        batches.make_writer().write_all(b"first\n").unwrap();
        while batches.shared.pending.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        for n in 0..1_000 {
            batches.make_writer().write_all(format!("{n}\n").as_bytes()).unwrap();
        }
        assert_eq!(batches.shared.pending.load(Ordering::Acquire), 100);
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        drop(go);
        drop(guard);
        let written = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        let expected: Vec<String> =
            std::iter::once("first".to_owned()).chain((0..100).map(|n| n.to_string())).collect();
        assert_eq!(written.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn the_buffers_of_ended_threads_are_written_then_forgotten() {
        let sink = Sink::default();
        let (batches, guard) = spawn(sink.clone(), 1_000);
        let batches = Arc::new(batches);
        for thread in 0..10 {
            let batches = Arc::clone(&batches);
            std::thread::spawn(move || batches.make_writer().write_all(line(thread, 1).as_bytes()))
                .join()
                .unwrap()
                .unwrap();
        }
        while batches.shared.pending.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        batches.make_writer().write_all(b"last\n").unwrap();
        while batches.shared.pending.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        drop(guard);
        assert_eq!(batches.shared.slots().len(), 1, "only this thread's buffer is kept");
        let written = String::from_utf8(sink.written.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 11);
    }
}
