//! The log writer: lines are appended to a buffer and written by a writer thread in batches:
//! when a buffer passes [`FLUSH_AT`] bytes, and at least every [`FLUSH_EVERY`] otherwise. A
//! busy gateway thus pays neither a `write` system call nor a thread wake-up per line (the
//! request line is the hot one). Each serving thread appends to a buffer of its own
//! ([`crate::sharded`]: one lock and cache lines that no other serving thread writes), so the
//! lines of one thread keep their order while those of different threads are interleaved a
//! batch at a time, as in the files of servers that buffer per worker. Nothing is dropped: a
//! logger whose buffer holds [`MAX_PENDING`] bytes blocks until the writer has taken them. The
//! [`LogGuard`] flushes what is left when it is dropped at exit.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use crate::sharded::{shard_of_this_thread, SHARDS};

/// Pending bytes in one thread's buffer that wake the writer thread before its next tick.
pub const FLUSH_AT: usize = 32 * 1024;
/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes in one thread's buffer past which its loggers wait for the writer
/// (back-pressure, never loss); all buffers together hold at most `SHARDS` times this.
pub const MAX_PENDING: usize = 1024 * 1024;

/// One thread's lines not yet taken, alone on its cache lines.
#[repr(align(128))]
struct Lane(Mutex<Vec<u8>>);

impl Lane {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A logger that panicked mid-append leaves whole lines behind it: keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What loggers and the writer tell each other.
#[derive(Default)]
struct Control {
    /// A buffer passed `FLUSH_AT` or is full: write now.
    kicked: bool,
    closed: bool,
    /// Passes of the writer over the buffers, for loggers waiting for room.
    rounds: u64,
}

struct Shared {
    lanes: [Lane; SHARDS],
    control: Mutex<Control>,
    /// Signalled when a buffer passes `FLUSH_AT` or fills, or the guard closes the log.
    kick: Condvar,
    /// Signalled after each pass of the writer.
    taken: Condvar,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the writer before its next tick.
    fn kick(&self) {
        self.control().kicked = true;
        self.kick.notify_one();
    }

    /// Bytes waiting in every buffer.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.lanes.iter().map(|lane| lane.lock().len()).sum()
    }
}

/// The `MakeWriter` handed to the subscriber: each event's formatted line is appended to the
/// calling thread's buffer in one call.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl BatchWriter {
    /// A writer whose lines end up in `out`, written by a thread of its own.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> (BatchWriter, LogGuard) {
        let shared = Arc::new(Shared {
            lanes: std::array::from_fn(|_| Lane(Mutex::new(Vec::new()))),
            control: Mutex::default(),
            kick: Condvar::new(),
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
        let lane = &self.shared.lanes[shard_of_this_thread()];
        let mut pending = lane.lock();
        if pending.len() >= MAX_PENDING {
            drop(pending);
            self.wait_for_room(lane);
            pending = lane.lock();
        }
        let before = pending.len();
        pending.extend_from_slice(line);
        let crossed = before < FLUSH_AT && pending.len() >= FLUSH_AT;
        drop(pending);
        if crossed {
            self.shared.kick();
        }
    }

    /// Waits until the writer has taken `lane`'s bytes (or the log is closed). The buffer is
    /// checked under the control lock, which the writer takes after each pass: no pass is
    /// missed between the check and the wait.
    fn wait_for_room(&self, lane: &Lane) {
        let shared = &*self.shared;
        let mut control = shared.control();
        while !control.closed && lane.lock().len() >= MAX_PENDING {
            control.kicked = true;
            shared.kick.notify_one();
            let round = control.rounds;
            while control.rounds == round && !control.closed {
                control = shared
                    .taken
                    .wait(control)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

/// The writer thread: at each wake-up, takes every buffer and writes them in one go.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::with_capacity(FLUSH_AT * 2);
    // Each lane's buffer is swapped with an empty one that keeps its capacity.
    let mut spares: Vec<Vec<u8>> = (0..SHARDS).map(|_| Vec::new()).collect();
    loop {
        let closed = {
            let mut control = shared.control();
            if !control.kicked && !control.closed {
                control = shared
                    .kick
                    .wait_timeout(control, FLUSH_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            control.kicked = false;
            control.closed
        };
        for (lane, spare) in shared.lanes.iter().zip(spares.iter_mut()) {
            std::mem::swap(&mut *lane.lock(), spare);
            batch.extend_from_slice(spare);
            spare.clear();
        }
        {
            let mut control = shared.control();
            control.rounds += 1;
            shared.taken.notify_all();
        }
        if !batch.is_empty() {
            // Nowhere to report a failing stderr; the lines are gone either way.
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closed {
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
        self.shared.control().closed = true;
        self.shared.kick.notify_one();
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
        while writer.shared.pending() < MAX_PENDING {
            assert!(
                std::time::Instant::now() < deadline,
                "the buffer never filled"
            );
            std::thread::yield_now();
        }
        assert!(!logger.is_finished(), "the logger went on past the cap");
        assert!(writer.shared.pending() < MAX_PENDING + line.len());
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
