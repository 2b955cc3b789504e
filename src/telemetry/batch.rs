//! The log writer: lines are appended to a shared buffer and written by a writer thread in
//! batches: when the buffer passes [`FLUSH_AT`] bytes, and at least every [`FLUSH_EVERY`]
//! otherwise. A busy gateway thus pays neither a `write` system call nor a thread wake-up per
//! line (the request line is the hot one). Nothing is dropped: a logger that finds
//! [`MAX_PENDING`] bytes waiting blocks until the writer has taken them. The [`LogGuard`]
//! flushes what is left when it is dropped at exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Pending bytes that wake the writer thread before its next tick.
pub const FLUSH_AT: usize = 32 * 1024;
/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes past which loggers wait for the writer (back-pressure, never loss).
pub const MAX_PENDING: usize = 4 * 1024 * 1024;

struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the buffer passes `FLUSH_AT` or the guard closes it.
    full: Condvar,
    /// Signalled when the writer has taken the buffer.
    taken: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A logger that panicked mid-append leaves whole lines behind it: keep going.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` handed to the subscriber: each event's formatted line is appended to the
/// shared buffer in one call.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl BatchWriter {
    /// A writer whose lines end up in `out`, written by a thread of its own.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> (BatchWriter, LogGuard) {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(FLUSH_AT * 2),
                closed: false,
            }),
            full: Condvar::new(),
            taken: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("hookgate-log".into())
                .spawn(move || write_batches(&shared, out))
                .expect("cannot start the log writer thread")
        };
        (
            BatchWriter {
                shared: shared.clone(),
            },
            LogGuard {
                shared,
                thread: Some(thread),
            },
        )
    }

    pub(super) fn append(&self, line: &[u8]) {
        let mut pending = self.shared.lock();
        while pending.bytes.len() >= MAX_PENDING && !pending.closed {
            self.shared.full.notify_one();
            pending = self
                .shared
                .taken
                .wait(pending)
                .unwrap_or_else(|e| e.into_inner());
        }
        let before = pending.bytes.len();
        pending.bytes.extend_from_slice(line);
        if before < FLUSH_AT && pending.bytes.len() >= FLUSH_AT {
            self.shared.full.notify_one();
        }
    }
}

/// The writer thread: takes the whole buffer at each wake-up and writes it in one go.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::with_capacity(FLUSH_AT * 2);
    loop {
        let closed = {
            let mut pending = shared.lock();
            if pending.bytes.len() < FLUSH_AT && !pending.closed {
                pending = shared
                    .full
                    .wait_timeout(pending, FLUSH_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut pending.bytes, &mut batch);
            pending.closed
        };
        shared.taken.notify_all();
        if !batch.is_empty() {
            // Nowhere to report a failing stderr; the lines are gone either way.
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closed {
            let rest = std::mem::take(&mut shared.lock().bytes);
            let _ = out.write_all(&rest);
            let _ = out.flush();
            return;
        }
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { batch: self }
    }
}

/// One event's writer (the subscriber writes the formatted line in one `write_all`).
pub struct LineWriter<'a> {
    batch: &'a BatchWriter,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.batch.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Flushes every line logged so far and stops the writer thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.full.notify_one();
        self.shared.taken.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that hands every write to the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn write_line(writer: &BatchWriter, line: &str) {
        writer.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::spawn(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        write_line(&writer, &format!("thread {t} line {i}\n"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 80_000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..20_000).collect::<Vec<_>>(), "thread {t}");
        }
    }

    /// An output whose first write waits until the test opens it.
    struct Gated {
        open: Option<std::sync::mpsc::Receiver<()>>,
        sink: Sink,
    }

    impl Write for Gated {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Some(open) = self.open.take() {
                open.recv().unwrap();
            }
            self.sink.write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_logger_waits_for_a_stuck_writer_past_max_pending_and_loses_nothing() {
        let (open, gate) = std::sync::mpsc::channel();
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::spawn(Gated {
            open: Some(gate),
            sink: sink.clone(),
        });
        let line = format!("{}\n", "x".repeat(1023));
        // Three times the cap: more than the writer's first batch and a full buffer together.
        let count = 3 * MAX_PENDING / line.len();
        let logger = {
            let (writer, line) = (writer.clone(), line.clone());
            std::thread::spawn(move || {
                for _ in 0..count {
                    write_line(&writer, &line);
                }
            })
        };
        // Bounded wait until the buffer is at the cap while the writer is stuck.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while writer.shared.lock().bytes.len() < MAX_PENDING {
            assert!(
                std::time::Instant::now() < deadline,
                "the buffer never filled"
            );
            std::thread::yield_now();
        }
        assert!(!logger.is_finished(), "the logger went on past the cap");
        assert!(writer.shared.lock().bytes.len() < MAX_PENDING + line.len());
        open.send(()).unwrap();
        logger.join().unwrap();
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().len(), count * line.len());
    }

    /// An output that passes each batch on to the test.
    struct Batches(std::sync::mpsc::Sender<Vec<u8>>);

    impl Write for Batches {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_quiet_logger_is_still_written_within_the_flush_interval() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (writer, _guard) = BatchWriter::spawn(Batches(tx));
        write_line(&writer, "one line\n");
        // Far longer than FLUSH_EVERY; no FLUSH_AT wake-up happens for one short line.
        let batch = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the line was never written");
        assert_eq!(batch, b"one line\n");
    }
}
