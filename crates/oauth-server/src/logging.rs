//! Log output: stderr through a buffer flushed in batches.
//!
//! The server logs one line per request. Written straight to stderr, each line
//! is one `write(2)`, which the bench measured at about 4% of the server's CPU
//! on the cheapest routes. Here lines collect in a buffer that a background
//! thread writes out every [`FLUSH_EVERY`], so a busy server makes one system
//! call per batch. Warnings and errors are written at once, with whatever was
//! buffered before them, so an operator never waits for a problem report; the
//! [`Flush`] guard writes the rest when the server exits. A crash can lose at
//! most the last [`FLUSH_EVERY`] of request lines; never a warning or error.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a request line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full is written at once, whatever the time.
const FLUSH_AT: usize = 64 * 1024;

/// The shared buffer in front of `W` (stderr in the server).
#[derive(Debug)]
struct Shared<W> {
    buffer: Mutex<Vec<u8>>,
    out: Mutex<W>,
}

impl<W: Write> Shared<W> {
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        // A panic while holding the lock leaves only log bytes behind: go on.
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes out what is buffered. The output is locked before the buffer
    /// is swapped out, so batches leave in the order they were taken; the
    /// buffer's own lock is held only for the swap, so a request thread
    /// adding a line never waits for the system call.
    fn flush(&self) {
        let mut out = Self::lock(&self.out);
        let batch = std::mem::take(&mut *Self::lock(&self.buffer));
        if !batch.is_empty() {
            // Nowhere to report a failed log write: it is dropped.
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }
}

/// The [`MakeWriter`] for `tracing_subscriber::fmt`: buffered for INFO and
/// below, immediate for WARN and ERROR.
#[derive(Debug)]
pub(crate) struct Batched<W> {
    shared: Arc<Shared<W>>,
}

impl<W> Clone for Batched<W> {
    fn clone(&self) -> Self {
        Batched { shared: self.shared.clone() }
    }
}

/// Flushes the buffer when dropped; keep it until the server has stopped.
#[must_use = "dropping the guard at once flushes nothing later"]
#[derive(Debug)]
pub(crate) struct Flush<W: Write> {
    shared: Arc<Shared<W>>,
}

impl<W: Write> Drop for Flush<W> {
    fn drop(&mut self) {
        self.shared.flush();
    }
}

/// A buffered writer in front of `out`, its flushing thread (it ends once
/// the writer and the guard are gone), and the guard that flushes at exit.
pub(crate) fn batched<W: Write + Send + 'static>(out: W) -> io::Result<(Batched<W>, Flush<W>)> {
    batched_every(out, FLUSH_EVERY)
}

fn batched_every<W: Write + Send + 'static>(out: W, every: Duration) -> io::Result<(Batched<W>, Flush<W>)> {
    let shared = Arc::new(Shared { buffer: Mutex::new(Vec::with_capacity(FLUSH_AT)), out: Mutex::new(out) });
    let weak = Arc::downgrade(&shared);
    std::thread::Builder::new().name("log-flush".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            match weak.upgrade() {
                Some(shared) => shared.flush(),
                None => return,
            }
        }
    })?;
    Ok((Batched { shared: shared.clone() }, Flush { shared }))
}

/// One event's writer.
pub(crate) struct Line<W: Write> {
    shared: Arc<Shared<W>>,
    urgent: bool,
}

impl<W: Write> Write for Line<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buffer = Shared::<W>::lock(&self.shared.buffer);
            buffer.extend_from_slice(bytes);
            buffer.len() >= FLUSH_AT
        };
        if full || self.urgent {
            self.shared.flush();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + 'a> MakeWriter<'a> for Batched<W> {
    type Writer = Line<W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { shared: self.shared.clone(), urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line { shared: self.shared.clone(), urgent: *meta.level() <= Level::WARN }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    fn subscriber(writer: Batched<Sink>) -> impl tracing::Subscriber {
        tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish()
    }

    /// Longer than any test: only the code under test writes.
    const NEVER: Duration = Duration::from_secs(3600);

    #[test]
    fn info_lines_wait_for_the_flush_and_warnings_take_them_along() {
        let sink = Sink::default();
        let (writer, _flush) = batched_every(sink.clone(), NEVER).unwrap();
        tracing::subscriber::with_default(subscriber(writer), || {
            tracing::info!("first request");
            tracing::info!("second request");
            assert_eq!(text(&sink), "");
            tracing::warn!("store failing");
        });
        let out = text(&sink);
        let order: Vec<usize> =
            ["first request", "second request", "store failing"].iter().map(|m| out.find(m).unwrap()).collect();
        assert!(order.is_sorted(), "{out}");
    }

    #[test]
    fn the_background_thread_and_the_guard_write_buffered_lines() {
        let sink = Sink::default();
        let (writer, flush) = batched(sink.clone()).unwrap();
        tracing::subscriber::with_default(subscriber(writer.clone()), || tracing::info!("by the thread"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !text(&sink).contains("by the thread") {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::subscriber::with_default(subscriber(writer), || tracing::info!("by the guard"));
        drop(flush);
        assert!(text(&sink).contains("by the guard"));
    }

    #[test]
    fn a_full_buffer_is_written_at_once() {
        let sink = Sink::default();
        let (writer, _flush) = batched_every(sink.clone(), NEVER).unwrap();
        let line = "x".repeat(1024);
        tracing::subscriber::with_default(subscriber(writer), || {
            for _ in 0..FLUSH_AT / 1024 + 1 {
                tracing::info!("{line}");
            }
        });
        assert!(text(&sink).len() >= FLUSH_AT);
    }
}
